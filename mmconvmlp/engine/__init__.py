"""What the stock OpenMMLab stack lacks on today's PyTorch: safe and atomic
checkpoint I/O, exact resume, and multi-process training on the CPU.

All of it is opt-in; importing :mod:`mmconvmlp` switches none of it on.
mmconvmlp's tools switch it on; with stock mmdet / mmseg tools, add
``custom_hooks = [dict(type='mmconvmlp.ExactResumeHook')]`` to the config.
"""
from .checkpoint_io import (AtomicLocalBackend, install_checkpoint_io,
                            load_local_checkpoint)
from .distributed import (CPUDistributedDataParallel, SyncBatchNorm,
                          setup_cpu_distributed)
from .hooks import ExactResumeHook, RandomStateHook

__all__ = [
    'AtomicLocalBackend', 'CPUDistributedDataParallel', 'ExactResumeHook',
    'RandomStateHook', 'SyncBatchNorm', 'install_checkpoint_io',
    'load_local_checkpoint', 'setup_cpu_distributed'
]
