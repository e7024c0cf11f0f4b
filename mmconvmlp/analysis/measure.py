"""Timing, memory and error: what every benchmark measures.

Every figure is measured on the machine it runs on: latency as the median
of repeated runs after warm-up (CUDA events on a GPU), several paths timed
in turns; peak memory as the growth of the process's peak resident memory
over a call on the CPU (each measurement in its own process, see
:func:`run_isolated`), the peak of live tensor memory from the profiler's
allocation events, or the CUDA allocator's peak on a GPU; and a path's
error against a reference (:func:`max_rel_error`).
"""
import multiprocessing
import statistics
import time

import torch


def max_rel_error(outs, refs):
    """The largest ``max|out - ref| / max|ref|`` over pairs of tensors (or
    of one pair), computed in float64."""
    if isinstance(outs, torch.Tensor):
        outs, refs = [outs], [refs]
    return max(((a.double() - b.double()).abs().max() /
                b.double().abs().max()).item() for a, b in zip(outs, refs))


def measure_latency(fn, repeats=5, warmup=1, device='cpu'):
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup``."""
    return statistics.median(measure_times(fn, repeats, warmup, device))


def measure_times(fn, repeats=5, warmup=1, device='cpu'):
    """Seconds of each of ``repeats`` runs of ``fn()`` after ``warmup``
    (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.startswith('cuda'):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            fn()
            times.append(time.perf_counter() - begin)
    return times


def measure_latencies(fns, repeats=5, warmup=1, device='cpu'):
    """Median seconds of each of ``fns`` (a dict of callables), timed in
    turns: every round runs each once, so that a change in the machine's
    load during the measurement hits all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(measure_latency(fn, repeats=1, warmup=0,
                                               device=device))
    return {name: statistics.median(t) for name, t in times.items()}


def measure_peak_tensor_memory(fn):
    """Peak MiB of tensor memory ``fn()`` allocates on the CPU, counted from
    the allocation and free events of PyTorch's profiler: live activations
    and gradients, without what the C allocator keeps around (which
    :func:`measure_peak_memory` sees)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == '[memory]'
                     and e.device_type() == DeviceType.CPU),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak / 2**20


def _status_mib(field):
    """A memory field of /proc/self/status (Linux), in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def measure_peak_memory(fn, device='cpu'):
    """Peak memory ``fn()`` adds, in MiB.

    On a GPU: the allocator's peak over the call. On the CPU: the process's
    peak resident memory during the call (the kernel's VmHWM, reset just
    before) over its resident memory before. Memory that an earlier call
    freed but the allocator kept can hide part of the growth, so measure
    in a fresh process (:func:`run_isolated`).
    """
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    _reset_peak_rss()
    before = _status_mib('VmRSS')
    fn()
    return _status_mib('VmHWM') - before


def _child(queue, fn, args):
    try:
        queue.put(('ok', fn(*args)))
    except BaseException as err:  # report, whatever it was
        queue.put(('error', f'{type(err).__name__}: {err}'))


def run_isolated(fn, *args):
    """Run ``fn(*args)`` in a fresh process and return its result.

    Each measurement gets a process of its own, so that peak-RSS figures
    belong to it alone. ``fn`` must be importable (a module-level function).
    """
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != 'ok':
        raise RuntimeError(f'{fn.__name__}{args} failed: {value}')
    return value
