"""The straightforward implementation of ConvMLP, the yardstick.

A plain eager PyTorch transcription of the architecture in the paper notes and
of the official ``DetConvMLP.forward``: separate BatchNorm layers, explicit
permutes, no fusion, no mmcv. Its module names are the official ones, so its
state dict and :class:`mmconvmlp.ConvMLP`'s are interchangeable. The tests
check the backbone against it number for number, and the benchmarks time it.
"""
import torch
from torch import nn


def _drop_path(x, rate, training):
    if rate == 0. or not training:
        return x
    keep = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1)).bernoulli_(
        1 - rate)
    return x * keep / (1 - rate)


def _unit(cin, cout, k, stride):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class _Tokenizer(nn.Module):

    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(*_unit(3, dim // 2, 3, 2),
                                   *_unit(dim // 2, dim // 2, 3, 1),
                                   *_unit(dim // 2, dim, 3, 1),
                                   nn.MaxPool2d(3, 2, 1))

    def forward(self, x):
        return self.block(x)


class _ConvStage(nn.Module):

    def __init__(self, n, dim, hidden, out):
        super().__init__()
        self.conv_blocks = nn.ModuleList(
            nn.Sequential(*_unit(dim, hidden, 1, 1), *_unit(hidden, hidden, 3, 1),
                          *_unit(hidden, dim, 1, 1)) for _ in range(n))
        self.downsample = nn.Conv2d(dim, out, 3, 2, 1)

    def forward(self, x):
        for block in self.conv_blocks:
            x = x + block(x)
        return self.downsample(x)


class _Mlp(nn.Module):

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = (nn.Linear(dim, hidden), nn.GELU(),
                                        nn.Linear(hidden, dim))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):

    def __init__(self, dim, hidden, rate):
        super().__init__()
        self.rate = rate
        self.norm1 = nn.LayerNorm(dim)
        self.channel_mlp1 = _Mlp(dim, hidden)
        self.norm2 = nn.LayerNorm(dim)
        self.connect = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim, bias=False)
        self.connect_norm = nn.LayerNorm(dim)
        self.channel_mlp2 = _Mlp(dim, hidden)

    def forward(self, x):
        x = x + _drop_path(self.channel_mlp1(self.norm1(x)), self.rate,
                           self.training)
        x = self.connect(self.connect_norm(x).permute(0, 3, 1, 2)).permute(
            0, 2, 3, 1)
        return x + _drop_path(self.channel_mlp2(self.norm2(x)), self.rate,
                              self.training)


class _Downsample(nn.Module):

    def __init__(self, dim, out):
        super().__init__()
        self.downsample = nn.Conv2d(dim, out, 3, 2, 1)

    def forward(self, x):
        return self.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class _Stage(nn.Module):

    def __init__(self, n, dims, ratio, downsample):
        super().__init__()
        rates = torch.linspace(0, 0.1, n).tolist()
        self.blocks = nn.ModuleList(
            _Block(dims[0], int(dims[0] * ratio), r) for r in rates)
        self.downsample_mlp = (_Downsample(dims[0], dims[1])
                               if downsample else nn.Identity())

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.downsample_mlp(x)


class ReferenceConvMLP(nn.Module):
    """The official ConvMLP, as in the paper notes, for checks and timing.

    ``forward`` returns what the official ``DetConvMLP.forward`` returns (the
    tokenizer, conv-stage, first and last Conv-MLP stage maps, NCHW);
    ``classify`` runs the ImageNet classifier when built with ``num_classes``.
    """

    settings = {
        's': ([2, 4, 2], [128, 256, 512], [2, 2, 2], 64, 2),
        'm': ([3, 6, 3], [128, 256, 512], [3, 3, 3], 64, 3),
        'l': ([4, 8, 3], [192, 384, 768], [3, 3, 3], 96, 3),
    }

    def __init__(self, arch='s', num_classes=None):
        super().__init__()
        blocks, dims, ratios, channels, n_conv = self.settings[arch]
        self.tokenizer = _Tokenizer(channels)
        self.conv_stages = _ConvStage(n_conv, channels, dims[0], dims[0])
        self.stages = nn.ModuleList(
            _Stage(blocks[i], dims[i:i + 2], ratios[i], i + 1 < len(blocks))
            for i in range(len(blocks)))
        if num_classes is not None:
            self.norm = nn.LayerNorm(dims[-1])
            self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        """The official detection/segmentation feature maps."""
        outs = []
        x = self.tokenizer(x)
        outs.append(x)
        x = self.conv_stages(x)
        outs.append(x)
        x = x.permute(0, 2, 3, 1)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i != 1:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def classify(self, x):
        """ImageNet logits (needs ``num_classes``)."""
        x = self.conv_stages(self.tokenizer(x)).permute(0, 2, 3, 1)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.norm(x.flatten(1, 2)).mean(dim=1))
