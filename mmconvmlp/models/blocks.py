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

Inference: each block owns its inference transforms, in a
``switch_to_deploy()`` method (as mmpretrain's re-parameterisable blocks):
folding its norms into the layers next to them, fusing ReLUs and projections
into Winograd convolutions, fusing its MLPs' bias and GELU into the GEMMs.
Afterwards the block is inference-only (its state dict changes).
"""
import torch
import torch.nn as nn
import torch.utils.checkpoint
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch.nn.modules.batchnorm import _BatchNorm

from ..ops import FusedWinogradConv2d, OneDNNLinear, WinogradConv2d


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


def fold_batch_norm(conv, norm):
    """A plain ``nn.Conv2d`` computing ``norm(conv(x))`` of a BN in eval
    mode (running statistics), or None if ``norm`` is no BatchNorm."""
    if not isinstance(norm, _BatchNorm):
        return None
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                      conv.stride, conv.padding, conv.dilation, conv.groups,
                      bias=True).to(conv.weight.device)
    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(
            norm.running_mean)
        fused.bias.copy_((bias - norm.running_mean) * scale + norm.bias)
    return fused


def fold_layer_norm(norm, linear):
    """Fold ``norm``'s affine transform into ``linear`` (which follows it).

    Returns the affine-free LayerNorm to use in place of ``norm``;
    ``linear`` is changed in place so that
    ``linear(new_norm(x)) == old_linear(norm(x))``.
    """
    if not norm.elementwise_affine:
        return norm
    with torch.no_grad():
        bias = linear.weight @ norm.bias
        linear.weight.mul_(norm.weight[None, :])
        if linear.bias is None:
            linear.bias = nn.Parameter(bias)
        else:
            linear.bias.add_(bias)
    return nn.LayerNorm(norm.normalized_shape, eps=norm.eps,
                        elementwise_affine=False)


def deploy_conv_unit(conv, norm, relu, winograd, projection=None,
                     max_pool=None):
    """The inference layers that replace one ``[conv, norm, ReLU]`` unit
    (and, if given, the next unit ``projection`` = ``[1x1 conv, norm,
    ReLU]`` or the ``max_pool`` that follows it).

    The BN is folded into the conv. With ``winograd``, where the op supports
    the conv, the conv becomes a :class:`~mmconvmlp.ops.FusedWinogradConv2d`
    with the ReLU fused in, and with it the projection or the max pool where
    the op can fuse them. Units with another norm stay as they are.
    """
    folded = fold_batch_norm(conv, norm)
    rest_proj = deploy_conv_unit(*projection, False) if projection else []
    rest_pool = [max_pool] if max_pool is not None else []
    if folded is None:
        return [conv, norm, relu] + rest_proj + rest_pool
    if not (winograd and FusedWinogradConv2d.supports(folded)):
        return [folded, relu] + rest_proj + rest_pool
    proj = fold_batch_norm(*projection[:2]) if projection else None
    if proj is not None and FusedWinogradConv2d.supports_projection(
            folded, proj):
        return [FusedWinogradConv2d(folded, relu=True, projection=proj)]
    if max_pool is not None and FusedWinogradConv2d.supports_max_pool(
            max_pool):
        return [FusedWinogradConv2d(folded, relu=True, max_pool=True)]
    return [FusedWinogradConv2d(folded, relu=True)] + rest_proj + rest_pool


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
        self.deploy = False

    def forward(self, x):
        """NCHW image -> NCHW map at stride 4.

        With ``with_cp`` (when autograd records) each conv unit (the last
        with the max pool) is checkpointed on its own, so the backward pass
        recomputes one full-resolution unit at a time.
        """
        if self.deploy or not (self.with_cp and torch.is_grad_enabled()):
            return self.block(x)
        for segment in (slice(0, 3), slice(3, 6), slice(6, 10)):
            x = run_block(self.block[segment], x, True)
        return x

    def switch_to_deploy(self, winograd=True):
        """Fold the BNs into the convs; with ``winograd``, run the stride-1
        convs as Winograd convs with their ReLU (and, for the last, the max
        pool) fused in. Inference only afterwards; a second call does
        nothing."""
        if self.deploy:
            return
        units = [list(self.block[i:i + 3]) for i in (0, 3, 6)]
        layers = []
        for i, unit in enumerate(units):
            layers += deploy_conv_unit(
                *unit, winograd, max_pool=self.block[9] if i == 2 else None)
        self.block = nn.Sequential(*layers)
        self.deploy = True


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
        self.deploy = False

    def forward(self, x):
        """NCHW map -> NCHW map at half the resolution."""
        for block in self.conv_blocks:
            x = x + run_block(block, x, self.with_cp)
        return self.downsample(x)

    def switch_to_deploy(self, winograd=True):
        """Fold the BNs into the convs; with ``winograd``, run each block's
        3x3 conv as a Winograd conv with its ReLU and the following 1x1
        conv + ReLU fused in. Inference only afterwards; a second call does
        nothing."""
        if self.deploy:
            return
        self.deploy = True
        for i, block in enumerate(self.conv_blocks):
            first, middle, last = (list(block[j:j + 3]) for j in (0, 3, 6))
            self.conv_blocks[i] = nn.Sequential(
                *deploy_conv_unit(*first, False),
                *deploy_conv_unit(*middle, winograd, projection=last))


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

    def switch_to_deploy(self):
        """Apply the biases and the GELU inside oneDNN's GEMMs
        (:class:`~mmconvmlp.ops.OneDNNLinear`)."""
        if type(self.act) is nn.GELU and self.act.approximate == 'none':
            self.fc1, self.act = OneDNNLinear(self.fc1, 'gelu'), nn.Identity()
            self.fc2 = OneDNNLinear(self.fc2)


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

    def switch_to_deploy(self, fused_mlp=True):
        """Fold the affine part of the LayerNorms before the MLPs into their
        first linear layers and, with ``fused_mlp``, fuse the MLPs (see
        :meth:`ChannelMLP.switch_to_deploy`)."""
        self.norm1 = fold_layer_norm(self.norm1, self.channel_mlp1.fc1)
        self.norm2 = fold_layer_norm(self.norm2, self.channel_mlp2.fc1)
        if fused_mlp:
            self.channel_mlp1.switch_to_deploy()
            self.channel_mlp2.switch_to_deploy()


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

    def switch_to_deploy(self, fused_mlp=True):
        """Switch every block (see :meth:`ConvMLPBlock.switch_to_deploy`)."""
        for block in self.blocks:
            block.switch_to_deploy(fused_mlp)
