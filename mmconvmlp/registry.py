"""The ``mmconvmlp`` registry scope.

``MODELS`` is a child of mmengine's root model registry, so
``type='mmconvmlp.ConvMLP'`` builds from any OpenMMLab scope (mmdet, mmseg,
...). :func:`register_into_downstream` also adds the backbone to the mmdet and
mmseg registries that are installed, so that plain ``type='ConvMLP'`` builds
in those scopes.
"""
import importlib

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmconvmlp',
                  locations=['mmconvmlp.models'])

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
