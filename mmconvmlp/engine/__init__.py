"""What the stock OpenMMLab stack lacks on today's PyTorch."""
from .checkpoint_io import (AtomicLocalBackend, install_checkpoint_io,
                            load_local_checkpoint)

__all__ = ['AtomicLocalBackend', 'install_checkpoint_io', 'load_local_checkpoint']
