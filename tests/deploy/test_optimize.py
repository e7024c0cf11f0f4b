"""optimize_for_inference: same outputs, on the backbone and whole models."""
import pytest
import torch
from mmdet.testing import demo_mm_inputs

from mmconvmlp import ConvMLP
from mmconvmlp.analysis.measure import max_rel_error
from mmconvmlp.deploy import optimize_for_inference
from mmconvmlp.models.blocks import fold_layer_norm
from mmconvmlp.ops import FusedWinogradConv2d, OneDNNLinear, WinogradConv2d


def test_fold_layer_norm_is_exact():
    torch.manual_seed(0)
    norm, linear = torch.nn.LayerNorm(16), torch.nn.Linear(16, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(4, 5, 16)
    expected = linear(norm(x))
    plain = fold_layer_norm(norm, linear)
    assert not plain.elementwise_affine
    torch.testing.assert_close(linear(plain(x)), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize('channels_last,winograd,trained_winograd', [
    (True, True, False), (False, True, False), (True, False, False),
    (True, True, True), (True, False, True)])
def test_backbone_same_outputs_fp32(model_pair, channels_last, winograd,
                                    trained_winograd):
    """Also for a backbone built with the opt-in training Winograd convs."""
    model, _ = model_pair('s', out_indices=(0, 1, 2, 3, 4),
                          winograd=trained_winograd)
    fast = optimize_for_inference(model, channels_last=channels_last,
                                  winograd=winograd)
    # odd size, large enough for the conv stage's Winograd path (64 tiles)
    x = torch.randn(1, 3, 161, 197)
    with torch.no_grad():
        refs, outs = model(x), fast(x)
    assert [o.shape for o in outs] == [r.shape for r in refs]
    assert max_rel_error(outs, refs) < 1e-4
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert all(o.is_contiguous(memory_format=layout) for o in outs)
    assert all(r.is_contiguous() for r in refs)
    # the original model is untouched
    assert model.tokenizer.block[1].__class__.__name__ == 'BatchNorm2d'


@pytest.mark.parametrize('activation', ['gelu', 'none'])
def test_onednn_linear_matches_linear(activation):
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 48)
    x = torch.randn(2, 5, 7, 32)
    with torch.no_grad():
        expected = linear(x)
        if activation == 'gelu':
            expected = torch.nn.functional.gelu(expected)
        out = OneDNNLinear(linear, activation)(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_backbone_convs_become_winograd_with_relu(model_pair):
    """The tokenizer's two stride-1 convs and the conv stage's 3x3 convs run
    as Winograd convs with their ReLU fused; the strided ones stay;
    winograd=False computes every conv directly."""
    model, _ = model_pair('s')
    fast = optimize_for_inference(model)
    winograd = [m for m in fast.modules() if isinstance(m, FusedWinogradConv2d)]
    assert len(winograd) == 2 + 2  # ConvMLP-S has 2 conv-stage blocks
    assert all(m.relu for m in winograd)
    names = [type(m).__name__ for m in fast.tokenizer.block]
    assert names == ['Conv2d', 'ReLU', 'FusedWinogradConv2d',  # stride 2
                     'FusedWinogradConv2d']
    assert fast.tokenizer.block[-1].max_pool
    assert all(block[-1].proj_weight is not None
               for block in fast.conv_stages.conv_blocks)
    plain = optimize_for_inference(model, winograd=False)
    assert not any(isinstance(m, (FusedWinogradConv2d, WinogradConv2d))
                   for m in plain.modules())
    assert [type(m).__name__ for m in plain.tokenizer.block] == [
        'Conv2d', 'ReLU'] * 3 + ['MaxPool2d']


def test_backbone_bf16_close(model_pair, recwarn):
    model, _ = model_pair('s')
    fast = optimize_for_inference(model, bf16=True)
    # a CPU without native bfloat16 is told that bf16 is slower there
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert native != any('no native bfloat16' in str(w.message)
                         for w in recwarn)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        refs, outs = model(x), fast(x)
    assert all(o.dtype == torch.float32 for o in outs)
    assert max_rel_error(outs, refs) < 5e-2


def test_compile_path_same_outputs():
    """The torch.compile path (the one a GPU run takes) on a tiny arch."""
    torch.manual_seed(0)
    arch = dict(blocks=[1, 1], dims=[16, 16], mlp_ratios=[1, 1], channels=8,
                n_conv_blocks=1)
    model = ConvMLP(arch=arch).eval()
    fast = optimize_for_inference(model, compile=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        refs, outs = model(x), fast(x)
    assert max_rel_error(outs, refs) < 1e-4


def test_refuses_models_without_convmlp():
    with pytest.raises(TypeError, match='contains no ConvMLP'):
        optimize_for_inference(torch.nn.Conv2d(3, 3, 1))


def _build(config, **test_cfg):
    import os.path as osp

    from mmengine.config import Config

    from mmconvmlp.registry import build_model
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..',
                                   'configs', config))
    cfg.model.test_cfg.update(test_cfg)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.backbone.init_cfg = None
    model.init_weights()
    return model.eval()


def test_retinanet_same_detections():
    # random weights score low: keep every box, so there is much to compare
    model = _build('detection/retinanet_convmlp_s.py', score_thr=0.)
    fast = optimize_for_inference(model)
    # P3 has 80 tiles: the head's convs take the Winograd path there
    packed = demo_mm_inputs(1, image_shapes=(3, 256, 320), num_items=[1])
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        raw_ref = model.bbox_head(model.extract_feat(data['inputs']))
        raw = fast.bbox_head(fast.extract_feat(data['inputs']))
        ref = model.test_step(packed)[0].pred_instances
        out = fast.test_step(packed)[0].pred_instances
    for outs, refs in zip(raw, raw_ref):  # class scores, box deltas
        assert max_rel_error(outs, refs) < 1e-4
    # 4 + 4 stacked convs and the two output convs of the head
    assert sum(isinstance(m, FusedWinogradConv2d)
               for m in fast.bbox_head.modules()) == 10
    assert len(out.scores) == len(ref.scores) == 100
    torch.testing.assert_close(out.scores, ref.scores, rtol=1e-4, atol=1e-6)
    # Near-equal scores of an untrained head may swap places: compare the
    # detections as sets, each box to its closest same-label box.
    for box, label in zip(out.bboxes, out.labels):
        same = ref.bboxes[ref.labels == label]
        gap = (same - box).abs().max(dim=1).values.min()
        assert gap <= 1e-4 * box.abs().max() + 1e-3


def test_mask_rcnn_same_detections_and_masks(spread_model, config_path,
                                             assert_same_detections):
    """RoIAlign reads NCHW whatever the layout: it must get NCHW maps."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    cfg = Config.fromfile(config_path('detection/mask_rcnn_convmlp_s.py'))
    cfg.model.backbone.init_cfg = None
    model = revert_sync_batchnorm(spread_model(cfg))
    fast = optimize_for_inference(model)
    packed = demo_mm_inputs(1, image_shapes=(3, 192, 256), num_items=[1])
    with torch.no_grad():
        ref = model.test_step(packed)[0].pred_instances
        out = fast.test_step(packed)[0].pred_instances
    assert_same_detections(out, ref)


def test_semantic_fpn_same_masks():
    from mmengine.model import revert_sync_batchnorm
    from mmseg.structures import SegDataSample
    model = revert_sync_batchnorm(_build(
        'segmentation/semantic_fpn_convmlp_s.py'))
    fast = optimize_for_inference(model)
    image = torch.randint(0, 256, (3, 120, 150), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(
        img_shape=(120, 150), ori_shape=(120, 150), pad_shape=(120, 150)))
    data = dict(inputs=[image], data_samples=[sample])
    with torch.no_grad():
        ref = model.test_step(data)[0]
        out = fast.test_step(data)[0]
    logits_ref, logits = ref.seg_logits.data, out.seg_logits.data
    assert max_rel_error([logits], [logits_ref]) < 1e-4
    agree = (out.pred_sem_seg.data == ref.pred_sem_seg.data).float().mean()
    assert agree > 0.999


def test_switch_to_deploy_twice_changes_nothing(model_pair):
    model, _ = model_pair('s')
    model.switch_to_deploy()
    x = torch.randn(1, 3, 161, 197)
    with torch.no_grad():
        once = model(x)
        layers = [type(m) for m in model.modules()]
        model.switch_to_deploy()
        assert [type(m) for m in model.modules()] == layers
        assert len(model._forward_pre_hooks) == 1
        for a, b in zip(once, model(x)):
            assert torch.equal(a, b)


def test_fused_mlp_off_keeps_plain_linears(model_pair):
    model, _ = model_pair('s')
    fast = optimize_for_inference(model, fused_mlp=False)
    assert not any(isinstance(m, OneDNNLinear) for m in fast.modules())
    assert fast.inference_transforms == dict(
        winograd=True, channels_last=True, fused_mlp=False, bf16=False,
        compile=False)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert max_rel_error(fast(x), model(x)) < 1e-4


def test_probe_leaves_out_the_transform_that_does_not_pay(model_pair,
                                                          monkeypatch):
    """The probe times each transform on and off (both variants run) and
    leaves out only the one whose absence is more than the margin faster."""
    from mmconvmlp.deploy import probe
    calls = []

    def fake_latencies(fns, **kwargs):
        outs = {name: fn() for name, fn in fns.items()}
        assert all(len(o) == 4 for o in outs.values())  # feature maps
        calls.append(kwargs)
        # winograd off: 10% faster (left out); the others: 1% (kept)
        return dict(on=0.1, off=0.09 if len(calls) == 1 else 0.099)

    monkeypatch.setattr(probe, 'measure_latencies', fake_latencies)
    model, _ = model_pair('s')
    fast = optimize_for_inference(model, probe=(64, 96))
    assert len(calls) == 3
    chosen = fast.inference_transforms
    assert (chosen['winograd'], chosen['channels_last'],
            chosen['fused_mlp']) == (False, True, True)
    assert list(chosen['probe_ms']) == ['winograd', 'channels_last',
                                        'fused_mlp']
    assert chosen['probe_ms']['winograd'] == dict(on_ms=100., off_ms=90.)
    assert not any(isinstance(m, FusedWinogradConv2d) for m in fast.modules())
    assert any(isinstance(m, OneDNNLinear) for m in fast.modules())
    # a transform switched off by the caller is not probed
    calls.clear()
    fast = optimize_for_inference(model, winograd=False, fused_mlp=False,
                                  probe=(64, 96))
    assert len(calls) == 1
    assert list(fast.inference_transforms['probe_ms']) == ['channels_last']


def test_probe_times_a_detectors_features():
    """On a whole detector the probe runs backbone and neck; the result
    computes the detector's outputs."""
    model = _build('detection/retinanet_convmlp_s.py')
    fast = optimize_for_inference(model, probe=(64, 64))
    timings = fast.inference_transforms['probe_ms']
    assert set(timings) == {'winograd', 'channels_last', 'fused_mlp'}
    assert all(t['on_ms'] > 0 and t['off_ms'] > 0 for t in timings.values())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max_rel_error(fast._forward(x)[0], model._forward(x)[0]) < 1e-4
