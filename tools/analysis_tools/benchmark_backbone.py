"""Benchmark ConvMLP inference and training paths side by side, in one run.

    python tools/analysis_tools/benchmark_backbone.py [--archs s m l]
        [--sizes 224x224 800x1216] [--repeats 5] [--compile] [--end-to-end]

For each arch and size it times, on the same weights and input: the
straightforward implementation (mmconvmlp.reference: the paper's code as
plain eager PyTorch), our default module (the same direct convolutions),
the opt-in ``winograd=True`` module, ``optimize_for_inference`` in
float32 (with and without Winograd convolutions) and in bf16, and mmdet's
ResNet-50; it prints latency (median after warm-up, the paths timed in
turns; CUDA events on a GPU), achieved GFLOP/s (2 x the multiply-adds of
mmengine's counter, per second: Winograd paths do fewer), each path's
speed-up over the straightforward one and its max relative error against
it. Then the training step (forward + backward, 512x512,
batch 2) of the default module and the ``winograd=True`` one, and peak
memory with and
without ``with_cp`` (on the CPU both of live tensors and of the process);
with ``--end-to-end``, RetinaNet and Semantic FPN predict steps at 800x1216,
stock against optimized.
"""
import argparse

import torch

from mmconvmlp.benchmarking import (markdown_table, max_rel_error,
                                    measure_latencies, measure_peak_memory,
                                    measure_peak_tensor_memory, run_isolated)
from mmconvmlp.complexity import count


def _models(arch, device, winograd=False):
    """Our ConvMLP (with the opt-in Winograd convs if ``winograd``) and the
    reference with identical, non-trivial weights."""
    from mmconvmlp import ConvMLP
    from mmconvmlp.reference import ReferenceConvMLP
    torch.manual_seed(0)
    model = ConvMLP(arch=arch, winograd=winograd)
    model.init_weights()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    ref = ReferenceConvMLP(arch)
    ref.load_state_dict(model.state_dict())
    return model.to(device).eval(), ref.to(device).eval()


def _resnet50(device):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(dict(type='ResNet', depth=50,
                              out_indices=(0, 1, 2, 3))).to(device)
    model.eval()  # mmdet's ResNet.train() returns None, so no chaining
    return model


def inference_rows(arch, height, width, device, repeats, compile):
    """Latency, GFLOP/s, speed-up and error of each inference path."""
    from mmconvmlp.deploy import optimize_for_inference
    model, ref = _models(arch, device)
    winograd = _models(arch, device, winograd=True)[0]
    x = torch.randn(1, 3, height, width, device=device)
    macs, _ = count(model, (x, ))
    paths = {
        'straightforward (reference)': ref,
        'default module': model,
        'winograd=True module': winograd,
        'optimized fp32, direct convs': optimize_for_inference(
            model, winograd=False),
        'optimized fp32': optimize_for_inference(model),
        'optimized bf16': optimize_for_inference(model, bf16=True),
    }
    if compile:
        paths['optimized fp32 + compile'] = optimize_for_inference(
            model, compile=True)
        paths['optimized bf16 + compile'] = optimize_for_inference(
            model, bf16=True, compile=True)
    r50 = _resnet50(device)
    r50_macs, _ = count(r50, (x, ))
    with torch.no_grad():
        expected = ref(x)
        errors = {name: max_rel_error(net(x), expected)
                  for name, net in paths.items()}
        paths['mmdet ResNet-50'] = r50
        latencies = measure_latencies(
            {name: (lambda net=net: net(x)) for name, net in paths.items()},
            repeats=repeats, warmup=2, device=device)
    base = latencies['straightforward (reference)']
    return [dict(arch=arch, size=f'{height}x{width}', path=name,
                 latency=latency * 1e3, speedup=base / latency,
                 gflops=2 * (r50_macs if name not in errors else macs) /
                 latency / 1e9, error=errors.get(name))
            for name, latency in latencies.items()]


def train_step_times(arch, device, repeats, height=512, width=512, batch=2):
    """Seconds of one forward + backward of the default module (direct
    convolutions, as the reference) and of the opt-in ``winograd=True``
    module on a ``batch`` of random images, timed in turns."""
    model = _models(arch, device)[0]
    winograd = _models(arch, device, winograd=True)[0]
    x = torch.randn(batch, 3, height, width, device=device)

    def step(net):
        net.zero_grad(set_to_none=True)
        sum(o.float().mean() for o in net(x)).backward()

    return measure_latencies(
        {'default': lambda: step(model.train()),
         'winograd': lambda: step(winograd.train())},
        repeats=repeats, warmup=1, device=device)


def train_peak_memory(arch, with_cp, device, height=512, width=512, batch=2,
                      tensors=False):
    """Peak MiB of one forward + backward, with or without with_cp: the
    process's (run it in a fresh process on the CPU: see
    mmconvmlp.benchmarking) or, with ``tensors``, of live tensors."""
    from mmconvmlp import ConvMLP
    torch.manual_seed(0)
    net = ConvMLP(arch=arch, with_cp=with_cp).to(device).train()
    x = torch.randn(batch, 3, height, width, device=device)

    def step():
        sum(o.mean() for o in net(x.requires_grad_())).backward()

    if tensors:
        return measure_peak_tensor_memory(step)
    return measure_peak_memory(step, device)


def end_to_end_rows(device, repeats, height=800, width=1216):
    """Predict-step latency of whole RetinaNet / Semantic FPN (ConvMLP-S),
    stock eager against optimize_for_inference, and their agreement."""
    import os.path as osp

    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.model import revert_sync_batchnorm

    from mmconvmlp.deploy import optimize_for_inference
    from mmconvmlp.registry import build_model
    root = osp.join(osp.dirname(__file__), '..', '..', 'configs')
    rows = []
    for name, config in (('RetinaNet-ConvMLP-S',
                          'detection/retinanet_convmlp_s.py'),
                         ('Semantic FPN-ConvMLP-S',
                          'segmentation/semantic_fpn_convmlp_s.py')):
        cfg = Config.fromfile(osp.join(root, config))
        cfg.model.backbone.init_cfg = None
        if cfg.default_scope == 'mmdet':  # random weights score low
            cfg.model.test_cfg.score_thr = 0.
        torch.manual_seed(0)
        model = revert_sync_batchnorm(build_model(cfg))
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')  # init_weights logs every parameter
        model.init_weights()
        logger.setLevel(level)
        model = model.to(device).eval()
        fast = optimize_for_inference(model)
        data = _predict_batch(cfg.default_scope, height, width)
        with torch.no_grad():
            times = measure_latencies(
                {'stock': lambda: model.test_step(data),
                 'optimized': lambda: fast.test_step(data)},
                repeats=repeats, warmup=1, device=device)
            stock, opt = times['stock'], times['optimized']
            agreement = _agreement(cfg.default_scope, model.test_step(data)[0],
                                   fast.test_step(data)[0])
        rows.append(dict(model=name, size=f'{height}x{width}',
                         stock=stock * 1e3, optimized=opt * 1e3,
                         speedup=stock / opt, agreement=agreement))
    return rows


def _predict_batch(scope, height, width):
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), scale_factor=(1., 1.))
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=meta)
    else:
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=dict(meta, img_id=0))
    return dict(inputs=[image], data_samples=[sample])


def _agreement(scope, ref, out):
    """How far the optimized model's prediction is from the stock one's, as
    text. Detection: the largest relative difference of scores and of boxes,
    each box compared with the closest box of its label (near-equal scores
    may swap places); segmentation: the share of pixels with the same
    label."""
    if scope == 'mmseg':
        same = (out.pred_sem_seg.data == ref.pred_sem_seg.data).float()
        return f'{100 * same.mean().item():.4f}% of pixels equal'
    a, b = out.pred_instances, ref.pred_instances
    if len(a.scores) != len(b.scores):
        return f'{len(a.scores)} boxes instead of {len(b.scores)}'
    worst = max_rel_error([a.scores], [b.scores]) if len(a.scores) else 0.
    scale = b.bboxes.abs().max()
    for box, label in zip(a.bboxes, a.labels):
        same = b.bboxes[b.labels == label]
        if len(same) == 0:
            return f'a box of label {label.item()} only when optimized'
        gap = (same - box).abs().max(dim=1).values.min() / scale
        worst = max(worst, gap.item())
    return f'{len(a.scores)} boxes, max rel. diff {worst:.1e}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=['s', 'm', 'l'])
    parser.add_argument('--sizes', nargs='+', default=['224x224', '800x1216'])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile of the optimized model')
    parser.add_argument('--end-to-end', action='store_true',
                        help='also time whole RetinaNet / Semantic FPN')
    parser.add_argument('--train-arch', default='s')
    parser.add_argument('--train-size', default='512x512',
                        help='HxW of the training-step measurements')
    parser.add_argument('--e2e-size', default='800x1216',
                        help='HxW of the end-to-end predict measurements')
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    import mmconvmlp  # noqa: F401
    device = args.device
    where = (torch.cuda.get_device_name() if device == 'cuda' else
             f'CPU {torch.backends.cpu.get_cpu_capability()}')
    header = (f'{where}, {torch.get_num_threads()} threads, torch '
              f'{torch.__version__}, batch 1, median of {args.repeats}')
    print(f'# ConvMLP backbone benchmark ({header})\n')

    rows = []
    for arch in args.archs:
        for size in args.sizes:
            height, width = map(int, size.lower().split('x'))
            rows += inference_rows(arch, height, width, device, args.repeats,
                                   args.compile)
    print(markdown_table(rows, [
        ('arch', 'arch', '{}'), ('size', 'H×W', '{}'), ('path', 'path', '{}'),
        ('latency', 'latency (ms)', '{:.1f}'),
        ('gflops', 'GFLOP/s', '{:.0f}'),
        ('speedup', 'vs straightforward', '{:.2f}×'),
        ('error', 'max rel. error vs straightforward', '{:.1e}')]))

    th, tw = map(int, args.train_size.lower().split('x'))
    steps = train_step_times(args.train_arch, device, args.repeats, th, tw)
    rows = [dict(what='fwd+bwd, default module (direct convs)',
                 value=steps['default'] * 1e3),
            dict(what='fwd+bwd, winograd=True module',
                 value=steps['winograd'] * 1e3,
                 ratio=steps['default'] / steps['winograd'])]
    if device == 'cpu':
        memory = {
            'live tensors': lambda cp: train_peak_memory(
                args.train_arch, cp, device, th, tw, tensors=True),
            'process (RSS growth)': lambda cp: run_isolated(
                train_peak_memory, args.train_arch, cp, device, th, tw)}
    else:
        memory = {'CUDA allocator': lambda cp: train_peak_memory(
            args.train_arch, cp, device, th, tw)}
    for kind, measure in memory.items():
        plain, cp = measure(False), measure(True)
        rows += [dict(what=f'peak memory, {kind}, without with_cp (MiB)',
                      value=plain),
                 dict(what=f'peak memory, {kind}, with with_cp (MiB)',
                      value=cp, ratio=cp / plain)]
    print(f'\n## Training step, ConvMLP-{args.train_arch.upper()}, '
          f'{th}×{tw}, batch 2 (ratios: speed-up, memory fraction)\n')
    print(markdown_table(rows, [('what', 'measure', '{}'),
                                ('value', 'ms / MiB', '{:.0f}'),
                                ('ratio', 'ratio', '{:.2f}')]))

    if args.end_to_end:
        print('\n## Predict step of whole models, stock eager vs '
              'optimize_for_inference (fp32; random weights, RetinaNet '
              'keeps every box: score_thr 0)\n')
        eh, ew = map(int, args.e2e_size.lower().split('x'))
        print(markdown_table(end_to_end_rows(device, args.repeats, eh, ew), [
            ('model', 'model', '{}'), ('size', 'H×W', '{}'),
            ('stock', 'stock (ms)', '{:.0f}'),
            ('optimized', 'optimized (ms)', '{:.0f}'),
            ('speedup', 'speed-up', '{:.2f}×'),
            ('agreement', 'optimized vs stock prediction', '{}')]))


if __name__ == '__main__':
    main()
