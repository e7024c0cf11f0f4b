"""The ConvMLP backbone's inference and training paths side by side: the
logic behind ``tools/analysis_tools/benchmark_backbone.py``.

For each arch and size it times, on the same weights and input: the
straightforward implementation (mmconvmlp.reference: the paper's code as
plain eager PyTorch), our default module (the same direct convolutions),
the opt-in ``winograd=True`` module, ``optimize_for_inference`` in
float32 (with and without Winograd convolutions, and with the transforms a
probe at that size finds paying here) and in bf16, the backbone
exported to ONNX (at that size) in ONNX Runtime and OpenVINO where
installed, and mmdet's ResNet-50; it prints latency (median after warm-up,
the paths timed in turns; CUDA events on a GPU), achieved GFLOP/s (2 x the
multiply-adds of mmengine's counter, per second: Winograd paths do fewer),
each path's speed-up over the straightforward one and its max relative
error against it, and then the fastest path per arch and size. Then the
training step (forward + backward, 512x512, batch 2) of the default module
and the ``winograd=True`` one, and peak memory with and without ``with_cp``
(on the CPU both of live tensors and of the process); with
``end_to_end``, the whole-model predict benchmark
(:mod:`.predict_benchmark`).
"""
import os.path as osp

import torch

from .complexity import count
from .measure import (max_rel_error, measure_latencies, measure_peak_memory,
                      measure_peak_tensor_memory, run_isolated)
from .tables import markdown_table
from .weights import spread_weights


def _models(arch, device, winograd=False):
    """Our ConvMLP (with the opt-in Winograd convs if ``winograd``) and the
    reference with identical, non-trivial weights."""
    from ..models import ConvMLP
    from ..reference import ReferenceConvMLP
    torch.manual_seed(0)
    model = ConvMLP(arch=arch, winograd=winograd)
    model.init_weights()
    spread_weights(model)
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
    from ..deploy import optimize_for_inference
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
        'optimized fp32, probed': optimize_for_inference(
            model, probe=(height, width)),
        'optimized bf16': optimize_for_inference(model, bf16=True),
    }
    if compile:
        paths['optimized fp32 + compile'] = optimize_for_inference(
            model, compile=True)
        paths['optimized bf16 + compile'] = optimize_for_inference(
            model, bf16=True, compile=True)
    if device == 'cpu':
        paths.update(_runtime_paths(model, height, width))
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


def _runtime_paths(model, height, width):
    """The backbone exported at ``height`` x ``width``, in each installed
    runtime, as callables on a tensor."""
    import tempfile

    from ..deploy import build_backend
    from ..deploy.onnx_export import export_backbone
    from .predict_benchmark import installed_backends
    backends = installed_backends()
    if not backends:
        return {}
    onnx_file = osp.join(tempfile.mkdtemp(prefix='mmconvmlp-bench-'),
                         'backbone.onnx')
    export_backbone(model, onnx_file, shape=(height, width))
    names = {'onnxruntime': 'ONNX Runtime', 'openvino': 'OpenVINO'}
    paths = {}
    for backend in backends:
        run = build_backend(onnx_file, backend)
        paths[names[backend]] = (
            lambda x, run=run: [torch.from_numpy(a) for a in run(x.numpy())])
    return paths


#: Paths that are not ways to run our model (the fastest-path table skips
#: them).
_NOT_OURS = ('straightforward (reference)', 'mmdet ResNet-50')


def fastest_rows(rows):
    """Per arch and size, the fastest path and how much faster than eager
    (the default module) and than ``optimize_for_inference`` fp32."""
    out = []
    for key in dict.fromkeys((r['arch'], r['size']) for r in rows):
        group = {r['path']: r['latency'] for r in rows
                 if (r['arch'], r['size']) == key}
        ours = {p: t for p, t in group.items() if p not in _NOT_OURS}
        best = min(ours, key=ours.get)
        out.append(dict(arch=key[0], size=key[1], path=best,
                        latency=ours[best],
                        vs_default=group['default module'] / ours[best],
                        opt=group['optimized fp32'] / ours[best]))
    return out


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
    mmconvmlp.analysis.measure) or, with ``tensors``, of live tensors."""
    from ..models import ConvMLP
    torch.manual_seed(0)
    net = ConvMLP(arch=arch, with_cp=with_cp).to(device).train()
    x = torch.randn(batch, 3, height, width, device=device)

    def step():
        sum(o.mean() for o in net(x.requires_grad_())).backward()

    if tensors:
        return measure_peak_tensor_memory(step)
    return measure_peak_memory(step, device)


def print_backbone_benchmark(archs=('s', 'm', 'l'),
                             sizes=('224x224', '512x512', '800x1216'),
                             repeats=5, compile=False, train_arch='s',
                             train_size='512x512', end_to_end=False,
                             e2e_size=None, device='cpu'):
    """Measure and print every table of ``benchmark_backbone.py`` (see the
    module docstring; sizes as ``'HxW'``)."""
    where = (torch.cuda.get_device_name() if device == 'cuda' else
             f'CPU {torch.backends.cpu.get_cpu_capability()}')
    header = (f'{where}, {torch.get_num_threads()} threads, torch '
              f'{torch.__version__}, batch 1, median of {repeats}')
    print(f'# ConvMLP backbone benchmark ({header})\n')

    rows = []
    for arch in archs:
        for size in sizes:
            height, width = map(int, size.lower().split('x'))
            rows += inference_rows(arch, height, width, device, repeats,
                                   compile)
    print(markdown_table(rows, [
        ('arch', 'arch', '{}'), ('size', 'H×W', '{}'), ('path', 'path', '{}'),
        ('latency', 'latency (ms)', '{:.1f}'),
        ('gflops', 'GFLOP/s', '{:.0f}'),
        ('speedup', 'vs straightforward', '{:.2f}×'),
        ('error', 'max rel. error vs straightforward', '{:.1e}')]))
    print('\n## Fastest path per arch and size\n')
    print(markdown_table(fastest_rows(rows), [
        ('arch', 'arch', '{}'), ('size', 'H×W', '{}'),
        ('path', 'fastest path', '{}'), ('latency', 'latency (ms)', '{:.1f}'),
        ('vs_default', 'vs default module', '{:.2f}×'),
        ('opt', 'vs optimized fp32', '{:.2f}×')]))

    th, tw = map(int, train_size.lower().split('x'))
    steps = train_step_times(train_arch, device, repeats, th, tw)
    rows = [dict(what='fwd+bwd, default module (direct convs)',
                 value=steps['default'] * 1e3),
            dict(what='fwd+bwd, winograd=True module',
                 value=steps['winograd'] * 1e3,
                 ratio=steps['default'] / steps['winograd'])]
    if device == 'cpu':
        memory = {
            'live tensors': lambda cp: train_peak_memory(
                train_arch, cp, device, th, tw, tensors=True),
            'process (RSS growth)': lambda cp: run_isolated(
                train_peak_memory, train_arch, cp, device, th, tw)}
    else:
        memory = {'CUDA allocator': lambda cp: train_peak_memory(
            train_arch, cp, device, th, tw)}
    for kind, measure in memory.items():
        plain, cp = measure(False), measure(True)
        rows += [dict(what=f'peak memory, {kind}, without with_cp (MiB)',
                      value=plain),
                 dict(what=f'peak memory, {kind}, with with_cp (MiB)',
                      value=cp, ratio=cp / plain)]
    print(f'\n## Training step, ConvMLP-{train_arch.upper()}, '
          f'{th}×{tw}, batch 2 (ratios: speed-up, memory fraction)\n')
    print(markdown_table(rows, [('what', 'measure', '{}'),
                                ('value', 'ms / MiB', '{:.0f}'),
                                ('ratio', 'ratio', '{:.2f}')]))

    if end_to_end:
        from .predict_benchmark import print_predict_benchmark
        size = (tuple(map(int, e2e_size.lower().split('x')))
                if e2e_size else None)
        print_predict_benchmark(size, repeats)
