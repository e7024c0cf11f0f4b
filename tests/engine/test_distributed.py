"""SyncBatchNorm across CPU processes: it must equal BN on the whole batch."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmconvmlp.engine import SyncBatchNorm


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, port, x, weight, queue):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    torch.manual_seed(0)
    bn = SyncBatchNorm(x.shape[1]).train()
    part = x.chunk(2)[rank].clone().requires_grad_()
    out = bn(part)
    (out * weight.chunk(2)[rank]).sum().backward()
    # numpy copies travel by value: a tensor would be shared through a file
    # descriptor that vanishes if this process exits before it is read
    queue.put((rank, *(t.detach().numpy().copy() for t in (
        out, part.grad, bn.weight.grad, bn.running_mean, bn.running_var))))
    dist.barrier()
    dist.destroy_process_group()


def test_sync_bn_equals_global_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 6) * 2 + 1
    weight = torch.randn(4, 3, 5, 6)
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, x, weight, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    results = sorted((queue.get(timeout=120) for _ in procs),
                     key=lambda r: r[0])
    results = [(r[0], *map(torch.from_numpy, r[1:])) for r in results]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    bn = torch.nn.BatchNorm2d(3).train()
    full = x.clone().requires_grad_()
    expected = bn(full)
    (expected * weight).sum().backward()
    out = torch.cat([r[1] for r in results])
    grad = torch.cat([r[2] for r in results])
    torch.testing.assert_close(out, expected.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad, full.grad, rtol=1e-4, atol=1e-5)
    # each process's weight gradient is its share; DDP sums them
    torch.testing.assert_close(results[0][3] + results[1][3], bn.weight.grad,
                               rtol=1e-4, atol=1e-5)
    for r in results:
        torch.testing.assert_close(r[4], bn.running_mean)
        torch.testing.assert_close(r[5], bn.running_var)


def test_outside_distributed_it_is_plain_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4)
    sync, plain = SyncBatchNorm(3).train(), torch.nn.BatchNorm2d(3).train()
    torch.testing.assert_close(sync(x), plain(x))


def test_cpu_ddp_wrapper_makes_sync_bn_work_on_cpu(tmp_path):
    """The wrapper the tools use for CPU processes turns torch's SyncBN
    (what norm_cfg=dict(type='SyncBN') builds) into ours; the registries
    are left alone."""
    from mmengine.registry import MODELS

    from mmconvmlp.engine import CPUDistributedDataParallel
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                    MODELS.build(dict(type='SyncBN',
                                                      num_features=4)))
        assert isinstance(model[1], torch.nn.SyncBatchNorm)
        wrapped = CPUDistributedDataParallel(model)
        assert type(wrapped.module[1]) is SyncBatchNorm
        out = wrapped(torch.randn(2, 3, 8, 8))
        assert out.shape == (2, 4, 6, 6)
    finally:
        dist.destroy_process_group()
