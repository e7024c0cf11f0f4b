"""The ``mmconvmlp`` registry scope.

Each registry here is a child of mmengine's root registry of its kind, so
``type='mmconvmlp.X'`` builds from any OpenMMLab scope (mmdet, mmseg, ...),
and the module that defines ``X`` is imported only when it is first looked
up. :func:`register_into_downstream` also adds the backbone to the mmdet and
mmseg model registries that are installed, so that plain ``type='ConvMLP'``
builds in those scopes.
"""
import importlib

try:
    import mmengine  # noqa: F401
except ImportError as err:
    raise ImportError(
        'mmconvmlp needs mmengine, from upstream OpenMMLab (pip install '
        "'mmconvmlp[det]' or '[seg]') or from the OneDL fork (pip install "
        "'mmconvmlp[onedl]', or onedl-mmengine)") from err
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmconvmlp',
                  locations=['mmconvmlp.models', 'mmconvmlp.deploy.runtime'])
#: :class:`~mmconvmlp.engine.ExactResumeHook`,
#: :class:`~mmconvmlp.engine.RandomStateHook` and
#: :class:`~mmconvmlp.deploy.optimize_hook.OptimizeForInferenceHook`
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmconvmlp',
                 locations=['mmconvmlp.engine.hooks',
                            'mmconvmlp.deploy.optimize_hook'])
#: :class:`~mmconvmlp.engine.CPUDistributedDataParallel`
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS,
                          scope='mmconvmlp',
                          locations=['mmconvmlp.engine.distributed'])

#: The downstream packages whose model registry receives our backbones.
DOWNSTREAM_SCOPES = ('mmdet', 'mmseg')


def register_into_downstream(module_cls):
    """Register ``module_cls`` in each installed downstream model registry.

    Returns the scopes it was registered in.
    """
    scopes = []
    for scope in DOWNSTREAM_SCOPES:
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except ImportError:
            continue
        registry.register_module(module=module_cls, force=True)
        scopes.append(scope)
    return scopes


def build_model(cfg):
    """Build ``cfg.model`` in the registry of ``cfg.default_scope`` (mmdet
    or mmseg), which also becomes the default scope."""
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    registry = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    return registry.build(cfg.model)
