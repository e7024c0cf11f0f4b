"""The building blocks of ConvMLP.

Attribute names and ``nn.Sequential`` positions follow the official code
(SHI-Labs/Convolutional-MLPs), so that the official checkpoints load without
renaming a key.

Layout: the tokenizer and the conv stage work on NCHW tensors; the Conv-MLP
stages work on channel-last NHWC tensors, because their channel MLPs are
``nn.Linear`` layers over the last dimension. The only places that switch
between the two layouts are :meth:`ConvMLPBlock.forward` and
:meth:`ConvDownsample.forward` (around their convolutions) and
:meth:`mmconvmlp.models.ConvMLP.forward` (into the first Conv-MLP stage and out
of each returned map).
"""
import torch
import torch.utils.checkpoint
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath

from ..ops import WinogradConv2d


def run_block(block, x, with_cp):
    """Run ``block(x)``, under activation checkpointing when ``with_cp`` and
    autograd records (same values and gradients, less memory)."""
    if with_cp and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
    return block(x)


def _conv_norm_relu(in_channels, out_channels, kernel_size, stride, norm_cfg,
                    winograd=False):
    """Return ``[conv, norm, ReLU]``: one bias-free conv unit of the official
    code; with ``winograd`` a 3x3 stride-1 conv is a :class:`WinogradConv2d`
    (the same parameters)."""
    if winograd and kernel_size == 3 and stride == 1:
        conv = WinogradConv2d(in_channels, out_channels, bias=False)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                         stride=stride, padding=kernel_size // 2, bias=False)
    return [conv, build_norm_layer(norm_cfg, out_channels)[1],
            nn.ReLU(inplace=True)]


class ConvTokenizer(nn.Module):
    """Three 3x3 conv units and a max pool: the stride-4 stem of ConvMLP.

    Args:
        in_channels (int): Channels of the input image.
        embed_dims (int): Output channels (``channels`` in the arch table).
        norm_cfg (dict): Norm layer config for the conv units.
        with_cp (bool): Checkpoint the block to save activation memory.
        winograd (bool): Run the stride-1 convs as :class:`WinogradConv2d`.
    """

    def __init__(self, in_channels, embed_dims, norm_cfg, with_cp=False,
                 winograd=False):
        super().__init__()
        self.with_cp = with_cp
        hidden = embed_dims // 2
        self.block = nn.Sequential(
            *_conv_norm_relu(in_channels, hidden, 3, 2, norm_cfg),
            *_conv_norm_relu(hidden, hidden, 3, 1, norm_cfg, winograd),
            *_conv_norm_relu(hidden, embed_dims, 3, 1, norm_cfg, winograd),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def forward(self, x):
        """NCHW image -> NCHW map at stride 4.

        With ``with_cp`` each conv unit (the last with the max pool) is
        checkpointed on its own, so the backward pass recomputes one
        full-resolution unit at a time.
        """
        for segment in (slice(0, 3), slice(3, 6), slice(6, 10)):
            x = run_block(self.block[segment], x, self.with_cp)
        return x


class ConvStage(nn.Module):
    """Residual 1x1-3x3-1x1 conv blocks followed by a stride-2 3x3 conv.

    Args:
        num_blocks (int): Number of residual conv blocks.
        in_channels (int): Channels of the input (and of each block).
        hidden_dims (int): Channels inside each block.
        out_channels (int): Channels after the downsampling conv.
        norm_cfg (dict): Norm layer config for the conv units.
        with_cp (bool): Checkpoint each block to save activation memory.
        winograd (bool): Run the 3x3 convs of the blocks as
            :class:`WinogradConv2d`.
    """

    def __init__(self, num_blocks, in_channels, hidden_dims, out_channels,
                 norm_cfg, with_cp=False, winograd=False):
        super().__init__()
        self.with_cp = with_cp
        self.conv_blocks = nn.ModuleList(
            nn.Sequential(
                *_conv_norm_relu(in_channels, hidden_dims, 1, 1, norm_cfg),
                *_conv_norm_relu(hidden_dims, hidden_dims, 3, 1, norm_cfg,
                                 winograd),
                *_conv_norm_relu(hidden_dims, in_channels, 1, 1, norm_cfg))
            for _ in range(num_blocks))
        self.downsample = nn.Conv2d(
            in_channels, out_channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        """NCHW map -> NCHW map at half the resolution."""
        for block in self.conv_blocks:
            x = x + run_block(block, x, self.with_cp)
        return self.downsample(x)


class ChannelMLP(nn.Module):
    """Two linear layers with a GELU between them, over the last dimension."""

    def __init__(self, embed_dims, hidden_dims):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x):
        """NHWC -> NHWC."""
        return self.fc2(self.act(self.fc1(x)))


class ConvMLPBlock(nn.Module):
    """Channel MLP, depthwise 3x3 conv, channel MLP (``ConvMLPStage`` upstream).

    Both MLPs are pre-norm residual branches with stochastic depth; the
    depthwise conv, normalised by ``connect_norm``, replaces the features
    without a residual connection, exactly as in the official code.

    Args:
        embed_dims (int): Channels.
        hidden_dims (int): Hidden width of both channel MLPs.
        drop_path_rate (float): Stochastic depth rate of both MLP branches.
    """

    def __init__(self, embed_dims, hidden_dims, drop_path_rate=0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.channel_mlp1 = ChannelMLP(embed_dims, hidden_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.connect = nn.Conv2d(embed_dims, embed_dims, kernel_size=3,
                                 padding=1, groups=embed_dims, bias=False)
        self.connect_norm = nn.LayerNorm(embed_dims)
        self.channel_mlp2 = ChannelMLP(embed_dims, hidden_dims)
        self.drop_path = (DropPath(drop_path_rate)
                          if drop_path_rate > 0 else nn.Identity())

    def forward(self, x):
        """NHWC -> NHWC. The depthwise conv sees a channel-last NCHW view."""
        x = x + self.drop_path(self.channel_mlp1(self.norm1(x)))
        x = self.connect(self.connect_norm(x).permute(0, 3, 1, 2))
        x = x.permute(0, 2, 3, 1)
        return x + self.drop_path(self.channel_mlp2(self.norm2(x)))


class ConvDownsample(nn.Module):
    """Stride-2 3x3 conv between Conv-MLP stages, on NHWC tensors."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.downsample = nn.Conv2d(
            in_channels, out_channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        """NHWC -> NHWC at half the resolution."""
        return self.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ConvMLPStage(nn.Module):
    """Conv-MLP blocks followed, except in the last stage, by a downsampling.

    ``BasicStage`` upstream. Its output (and so the feature map the backbone
    returns for it) is taken after the downsampling, as the official
    detection and segmentation code does.

    Args:
        embed_dims (int): Channels of the blocks.
        out_channels (int | None): Channels after downsampling; ``None`` for
            the last stage, which keeps its resolution.
        mlp_ratio (float): Hidden width of the channel MLPs over ``embed_dims``.
        drop_path_rates (Sequence[float]): The stochastic depth rate of each
            :class:`ConvMLPBlock`, one per block.
        with_cp (bool): Checkpoint each block to save activation memory.
    """

    def __init__(self, embed_dims, out_channels, mlp_ratio, drop_path_rates,
                 with_cp=False):
        super().__init__()
        self.with_cp = with_cp
        self.blocks = nn.ModuleList(
            ConvMLPBlock(embed_dims, int(embed_dims * mlp_ratio), rate)
            for rate in drop_path_rates)
        self.downsample_mlp = (ConvDownsample(embed_dims, out_channels)
                               if out_channels is not None else nn.Identity())

    def forward(self, x):
        """NHWC -> NHWC."""
        for block in self.blocks:
            x = run_block(block, x, self.with_cp)
        return self.downsample_mlp(x)
