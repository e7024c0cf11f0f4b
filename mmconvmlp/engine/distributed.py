"""Multi-process training on the CPU (gloo), which stock mmengine lacks.

mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` and
defaults to NCCL, and its Runner wraps the model in DDP with ``device_ids``;
all three fail on a machine without GPUs. :func:`setup_cpu_distributed`
starts the process group on gloo first (so mmengine skips its own start) and
selects :class:`CPUDistributedDataParallel`, which turns the model's
``SyncBN`` layers into :class:`SyncBatchNorm`: it all-reduces batch
statistics over gloo on CPU processes and is torch's own on GPUs. Nothing
here happens on import: mmconvmlp's tools call :func:`setup_cpu_distributed`
for ``--launcher pytorch``.
"""
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch.nn.modules.batchnorm import _BatchNorm
from mmengine.model import MMDistributedDataParallel

from ..registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for models on the CPU: ``device_ids`` (which
    the Runner always passes) are dropped, as DDP requires there, and the
    model's ``torch.nn.SyncBatchNorm`` layers (``norm_cfg=dict(type='SyncBN')``)
    become :class:`SyncBatchNorm`, which synchronises over gloo."""

    def __init__(self, module, device_ids=None, **kwargs):
        for layer in module.modules():
            if (isinstance(layer, torch.nn.SyncBatchNorm)
                    and not isinstance(layer, SyncBatchNorm)):
                # torch's or mmengine's class: the same parameters and
                # buffers; only forward differs.
                layer.__class__ = SyncBatchNorm
        super().__init__(module=module, device_ids=None, **kwargs)

    def _passing_sync_batchnorm_handle(self, module):
        """DDP refuses every SyncBatchNorm on the CPU; ours synchronises
        over gloo (the constructor converted torch's)."""


def setup_cpu_distributed(cfg):
    """Prepare ``cfg`` for a torchrun launch on a machine without GPUs.

    Does nothing unless ``cfg.launcher == 'pytorch'`` and CUDA is absent.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available():
        return cfg
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.env_cfg = dict(cfg.get('env_cfg', {}), dist_cfg=dict(backend='gloo'))
    cfg.model_wrapper_cfg = dict(
        type='mmconvmlp.CPUDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def teardown_distributed():
    """Leave the process group cleanly once all processes are done.

    A gloo group still open at interpreter exit can abort the process
    ("terminate called without an active exception") after a run that
    succeeded; mmengine never destroys the group itself.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class SyncBatchNorm(torch.nn.SyncBatchNorm):
    """``torch.nn.SyncBatchNorm`` that also synchronises CPU processes.

    On a GPU, or outside distributed training, it is torch's layer. In
    distributed training on the CPU it sums each channel's count, sum and
    sum of squares over all processes with a differentiable all-reduce, so
    that forward and backward see the statistics of the global batch.
    """

    def forward(self, x):
        """Normalise ``x`` (N, C, ...) with global batch statistics."""
        if x.device.type != 'cpu':
            return super().forward(x)
        if (not self.training or not dist.is_initialized()
                or dist.get_world_size() < 2):
            # one CPU process: plain BN (torch's SyncBatchNorm refuses
            # CPU tensors whenever a process group exists)
            return _BatchNorm.forward(self, x)
        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        channels = x.shape[1]
        count = x.new_full((1, ), x.numel() / channels)
        stats = dist_fn.all_reduce(
            torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels:2 * channels] / total - mean * mean).clamp(min=0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (self.momentum if self.momentum is not None else
                            1. / self.num_batches_tracked.item())
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * total / (total - 1), momentum)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

