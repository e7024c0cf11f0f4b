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
    queue.put((rank, out.detach(), part.grad, bn.weight.grad,
               bn.running_mean.clone(), bn.running_var.clone()))
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
    results = sorted(queue.get(timeout=120) for _ in procs)
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
