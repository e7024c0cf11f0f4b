"""Shared fixtures: small, deterministic models, inputs and data."""
from pathlib import Path

import pytest
import torch

import mmconvmlp  # noqa: F401  (registers the backbone)
from mmconvmlp import ConvMLP
from mmconvmlp.analysis.weights import spread_weights
from mmconvmlp.datasets import make_builtin_dataset
from mmconvmlp.engine.stack import fix_config_lookup
from mmconvmlp.reference import ReferenceConvMLP

REPO = Path(__file__).resolve().parents[1]

# As mmconvmlp's tools do before reading a config: on the OneDL fork, let
# mmengine find `mmseg::` configs (a no-op on upstream OpenMMLab).
fix_config_lookup()


@pytest.fixture
def model_pair():
    """Build (ConvMLP, ReferenceConvMLP) of one arch with identical weights."""

    def build(arch='s', **kwargs):
        torch.manual_seed(0)
        model = ConvMLP(arch=arch, **kwargs)
        model.init_weights()
        spread_weights(model)
        ref = ReferenceConvMLP(arch)
        ref.load_state_dict(model.state_dict())
        return model.eval(), ref.eval()

    return build


@pytest.fixture(scope='session')
def builtin_workspace(tmp_path_factory):
    """A directory whose data/builtin holds a tiny built-in dataset, so the
    *_builtin configs (data_root='data/builtin/') run from it unchanged."""
    root = tmp_path_factory.mktemp('workspace')
    make_builtin_dataset(str(root / 'data' / 'builtin'), num_train=8,
                         num_val=4, size=128)
    return root


@pytest.fixture(scope='session')
def config_path():
    """Absolute path of a config under configs/."""
    return lambda rel: str(REPO / 'configs' / rel)


@pytest.fixture(scope='session')
def spread_model():
    """``spread_model(cfg)``: the config's detector or segmentor with
    random weights whose outputs spread (see below), in eval mode."""
    from mmconvmlp.registry import build_model

    def build(cfg):
        """Initial weights, BN statistics randomised and the heads' conv
        weights scaled up, so that scores spread and detections exist (the
        RoI head's fully connected layers keep their init: scaled, its
        softmax saturates, and equal scores leave the order to rounding)."""
        torch.manual_seed(0)
        model = build_model(cfg)
        model.init_weights()
        # 0.03: scores spread without saturating at 1.0, where equal
        # scores would leave NMS's choice between boxes to rounding
        return spread_weights(model, heads_std=0.03).eval()

    return build


def _assert_same_detections(pred, ref):
    """Each reference detection has one predicted twin: same label, score
    and box within 1e-4 (relative; boxes to the image's scale) and, if
    there are masks, >= 99.9% of the mask's pixels equal. Twins are paired
    in score order, so detections whose scores differ by rounding may swap
    places; a detection whose score ties the lowest (the top-k cut-off)
    may be another box of that score. ``pred`` and ``ref``: InstanceData
    or dicts of tensors/arrays."""
    def get(d, key):
        value = d[key]
        return value if isinstance(value, torch.Tensor) else torch.as_tensor(
            value)
    labels, scores, boxes = (get(ref, k) for k in ('labels', 'scores',
                                                   'bboxes'))
    p_labels, p_scores, p_boxes = (get(pred, k) for k in ('labels', 'scores',
                                                          'bboxes'))
    assert len(labels) > 0, 'the test needs detections to compare'
    assert len(p_labels) == len(labels)
    scale = float(boxes.abs().max())
    lowest = float(scores.min())
    free = torch.ones(len(p_labels), dtype=torch.bool)
    for i in range(len(labels)):
        tolerance = 1e-4 * scores[i] + 1e-6
        close = (free & (p_labels == labels[i])
                 & ((p_scores - scores[i]).abs() <= tolerance)
                 & ((p_boxes - boxes[i]).abs().amax(1) <= 1e-4 * scale))
        if not close.any() and abs(float(scores[i]) - lowest) <= tolerance:
            continue  # at the top-k cut-off: rounding may let another in
        assert close.any(), (f'no twin for detection {i}: label '
                             f'{int(labels[i])}, score {float(scores[i]):.6f}'
                             f', box {boxes[i].tolist()}')
        j = int(close.nonzero()[0])
        free[j] = False
        if 'masks' in ref and isinstance(ref['masks'], torch.Tensor):
            equal = (pred['masks'][j] == ref['masks'][i]).float().mean()
            assert equal >= 0.999


@pytest.fixture(scope='session')
def assert_same_detections():
    """The check that two sets of detections are the same (see above)."""
    return _assert_same_detections


@pytest.fixture
def restore_mmengine_io():
    """Restore mmengine's checkpoint loaders and file backends after a test
    that switches on :func:`mmconvmlp.engine.install_checkpoint_io`."""
    from mmengine.fileio import backends as file_backends
    from mmengine.runner.checkpoint import CheckpointLoader
    def tables():  # registering may replace a table: look them up each time
        return (CheckpointLoader._schemes, file_backends.backends,
                file_backends.prefix_to_backends)

    saved = [dict(table) for table in tables()]
    yield
    for table, content in zip(tables(), saved):
        table.clear()
        table.update(content)


#: What ``make test-onedl`` runs on the OneDL stack: registry and configs
#: (their ``mmdet::`` / ``mmseg::`` bases), the inert import, checkpoint I/O
#: and exact resume, a train / resume / test step per task on the built-in
#: data (with the stock inference APIs), CPU multi-process training, export
#: parity and the hostile-input tests.
ONEDL_SUBSET = (
    'tests/test_inert_import.py', 'tests/test_registry.py', 'tests/configs/',
    'tests/test_checkpoint.py', 'tests/test_images.py',
    'tests/engine/test_hooks.py', 'tests/engine/test_checkpoint_io.py',
    'tests/engine/test_stack.py',
    'tests/deploy/test_metadata.py', 'tests/deploy/test_runtime.py',
    'tests/analysis/test_seg_benchmark.py',
    'tests/tools/test_detection_tools.py::test_train_resume_test_demo',
    'tests/tools/test_segmentation_tools.py::test_train_resume_test',
    'tests/tools/test_fault_tolerance.py',
    'tests/tools/test_deployment_tools.py::test_crafted_onnx_runs_no_code',
)


def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`ONEDL_SUBSET` ``onedl``."""
    for item in items:
        if item.nodeid.startswith(ONEDL_SUBSET):
            item.add_marker(pytest.mark.onedl)
