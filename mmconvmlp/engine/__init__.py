"""What the stock OpenMMLab stack lacks on today's PyTorch: safe and atomic
checkpoint I/O, exact resume, and multi-process training on the CPU."""
from .checkpoint_io import (AtomicLocalBackend, install_checkpoint_io,
                            load_local_checkpoint)
from .distributed import (CPUDistributedDataParallel, SyncBatchNorm,
                          register_sync_bn, setup_cpu_distributed)
from .hooks import RandomStateHook

__all__ = [
    'AtomicLocalBackend', 'CPUDistributedDataParallel', 'RandomStateHook',
    'SyncBatchNorm', 'install_checkpoint_io', 'load_local_checkpoint',
    'register_sync_bn', 'setup_cpu_distributed'
]
