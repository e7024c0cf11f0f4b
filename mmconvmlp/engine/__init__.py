"""What the stock OpenMMLab stack lacks on today's PyTorch."""
from .checkpoint_io import install_checkpoint_loader, load_local_checkpoint

__all__ = ['install_checkpoint_loader', 'load_local_checkpoint']
