"""Which of ``optimize_for_inference``'s transforms pay on this machine.

Whether a transform is faster depends on the CPU (AVX2 or AVX-512, VNNI,
cache sizes), the thread count and the input size: on the AVX-512 machines
of ``docs/benchmarks.md`` every transform pays, on an AVX2 one the plain
Winograd module beat the full set for ConvMLP-M and -L.
:func:`probe_transforms` decides by measuring: it times the model's
feature extractor (backbone and neck) with each transform left out against
the current choice, in turns, and leaves out a transform only where that is
faster by more than a margin.
"""
import torch

from ..analysis.measure import measure_latencies

#: The transforms :func:`~mmconvmlp.deploy.optimize_for_inference` can leave
#: out, in the order the probe tries them.
TRANSFORMS = ('winograd', 'channels_last', 'fused_mlp')


def feature_extractor(model):
    """What the probe times: a detector's or segmentor's ``extract_feat``
    (backbone and neck), or the model itself (a backbone)."""
    return getattr(model, 'extract_feat', model)


def _in_channels(model):
    from ..models import ConvMLP
    return next(m for m in model.modules()
                if isinstance(m, ConvMLP)).in_channels


def probe_transforms(model, shape, build, settings, repeats=3, margin=0.02):
    """Choose which of ``settings``' transforms to apply to ``model``.

    Greedy: start from ``settings`` (transform -> bool); for each transform
    of :data:`TRANSFORMS` that is on, build the model with it off and time
    both on one random ``shape`` image (``repeats`` runs each, in turns,
    after a warm-up); turn it off if that is more than ``margin`` faster.

    Args:
        model (nn.Module): the model to optimise (not changed).
        shape (tuple[int, int]): H, W of the probe image; the sizes the
            model will see.
        build (callable): ``build(**settings)`` returns the optimised model.
        settings (dict): the transforms asked for; those off stay off.
        repeats (int): timed runs per variant and comparison.
        margin (float): how much faster (relative) leaving a transform out
            must be.

    Returns:
        tuple[nn.Module, dict, dict]: the model built with the chosen
        settings, those settings and, per transform probed, the median
        milliseconds with it on and off.
    """
    device = next(model.parameters()).device
    x = torch.randn(1, _in_channels(model), *shape, device=device)
    chosen = dict(settings)
    current = build(**chosen)
    timings = {}
    for name in TRANSFORMS:
        if not chosen.get(name):
            continue
        trial = build(**dict(chosen, **{name: False}))
        with torch.no_grad():
            times = measure_latencies(
                {'on': lambda: feature_extractor(current)(x),
                 'off': lambda: feature_extractor(trial)(x)},
                repeats=repeats, warmup=1, device=device.type)
        timings[name] = dict(on_ms=times['on'] * 1e3,
                             off_ms=times['off'] * 1e3)
        if times['off'] < times['on'] * (1 - margin):
            chosen[name], current = False, trial
    return current, chosen, timings
