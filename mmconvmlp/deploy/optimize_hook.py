"""Running the test loop with an optimised model.

``tools/test.py --optimize SETTINGS.json`` adds
:class:`OptimizeForInferenceHook` to the config (visible in the config the
runner logs): after the checkpoint is loaded, the model under test becomes
``optimize_for_inference(model, **settings)``. ``SETTINGS.json`` is the
``winner.json`` that ``tools/deployment/tune.py`` writes for a PyTorch path,
or a plain JSON object of the settings; it is read as data.
"""
import inspect
import json

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import HOOKS
from .optimize import optimize_for_inference

#: The settings a file may give: optimize_for_inference's keyword arguments.
SETTINGS = tuple(inspect.signature(optimize_for_inference).parameters)[1:]


def check_settings(settings, source='settings'):
    """Refuse settings that are not :func:`optimize_for_inference`'s
    keyword arguments, naming them and ``source``. Returns ``settings``."""
    if not isinstance(settings, dict):
        raise TypeError(f'{source}: expected a JSON object of '
                        f'optimize_for_inference settings, got '
                        f'{type(settings).__name__}')
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise KeyError(f'{source}: unknown optimize_for_inference settings '
                       f'{unknown}; known: {list(SETTINGS)}')
    return settings


def read_settings(path):
    """The :func:`optimize_for_inference` settings in a JSON file: tune's
    ``winner.json`` (its ``optimize_for_inference`` entry) or a plain
    object."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'--optimize {path}: cannot read a JSON object: '
                         f'{err}') from None
    if isinstance(data, dict) and 'optimize_for_inference' in data:
        data = data['optimize_for_inference'] or {}
    settings = check_settings(data, f'--optimize {path}')
    if isinstance(settings.get('probe'), list):
        settings['probe'] = tuple(settings['probe'])
    return settings


@HOOKS.register_module()
class OptimizeForInferenceHook(Hook):
    """Test ``optimize_for_inference(model, **settings)`` instead of the
    model (the checkpoint loaded first).

    Args:
        **settings: keyword arguments of
            :func:`~mmconvmlp.deploy.optimize_for_inference`.
    """

    def __init__(self, **settings):
        self.settings = check_settings(settings, 'OptimizeForInferenceHook')

    def before_test(self, runner):
        """Swap the loaded model for its optimised copy."""
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        fast = optimize_for_inference(inner, **self.settings)
        if is_model_wrapper(model):
            model.module = fast
        else:
            runner.model = fast
        runner.logger.info(f'testing optimize_for_inference(model, '
                           f'{fast.inference_transforms})')
