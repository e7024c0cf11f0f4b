"""ConvMLP (Li et al., arXiv 2109.04454) as a dense-prediction backbone."""
import copy
import warnings

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, trunc_normal_init
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint import load_backbone_weights
from ..registry import MODELS
from .blocks import ConvMLPStage, ConvStage, ConvTokenizer

_ARCH_KEYS = ('blocks', 'dims', 'mlp_ratios', 'channels', 'n_conv_blocks')


def _to_channels_last(module, args):
    """Forward pre-hook: hand the backbone a channels-last image batch."""
    return (args[0].contiguous(memory_format=torch.channels_last),
            *args[1:])


@MODELS.register_module()
class ConvMLP(BaseModule):
    """ConvMLP backbone for detection and segmentation.

    The network is a convolutional tokenizer (stride 4), a convolutional
    stage (stride 8) and Conv-MLP stages; all but the last stage end with a
    stride-2 downsampling, and a stage's output is taken after it. The maps
    it can return, by index:

    ====  ======================  ===========  ======  =====  =====
    idx   map                     channels     stride  s      l
    ====  ======================  ===========  ======  =====  =====
    0     tokenizer               channels     4       64     96
    1     conv stage              dims[0]      8       128    192
    2     Conv-MLP stage 0        dims[1]      16      256    384
    3     Conv-MLP stage 1        dims[2]      32      512    768
    4     Conv-MLP stage 2        dims[2]      32      512    768
    ====  ======================  ===========  ======  =====  =====

    The default ``out_indices`` keep the last map at each stride,
    ``(0, 1, 2, 4)`` for the three official sizes: the four maps that the
    official detection and segmentation code feeds to FPN.

    Args:
        arch (str | dict): ``'s'``, ``'m'``, ``'l'`` (or ``'small'``,
            ``'medium'``, ``'large'``), or a dict with the keys ``blocks``,
            ``dims``, ``mlp_ratios`` (one entry per Conv-MLP stage),
            ``channels`` (tokenizer width) and ``n_conv_blocks``.
        in_channels (int): Channels of the input image. Default: 3.
        out_indices (Sequence[int] | None): Maps to return (see the table).
        frozen_stages (int): Freeze (no gradients, BN in eval mode) the maps
            up to this index; -1 freezes nothing. Default: -1.
        norm_cfg (dict): Norm layer of the convolutional parts (tokenizer and
            conv stage); ``dict(type='SyncBN')`` for multi-GPU training.
            Default: ``dict(type='BN')``.
        norm_eval (bool): Keep BN layers in eval mode during training
            (frozen running statistics). Default: False, as the paper trained.
        drop_path_rate (float): Stochastic depth rate; within each Conv-MLP
            stage it rises linearly from 0 to this value, the official
            schedule. Default: 0.1.
        with_cp (bool): Use activation checkpointing in the tokenizer, the
            conv stage and the Conv-MLP stages: same results, less memory,
            slower.
        winograd (bool): Opt-in: compute the 3x3 stride-1 convolutions of
            the tokenizer and the conv stage with the compiled Winograd
            F(4x4, 3x3) op on the CPU in float32, forward and backward. Equal
            to direct convolution up to float rounding (relative ~1e-5), not
            bit for bit; whether it is faster depends on the machine (see
            ``docs/benchmarks.md``). Where the op cannot run (GPU, autocast,
            op not built, a CPU without the instructions it was compiled
            for) the convolutions stay direct. Default: False, which makes
            the backbone bit-identical to the official code
            (:mod:`mmconvmlp.reference`). The parameters are the same either
            way.
        pretrained (str | None): Deprecated, as in mmdet's and mmseg's
            backbones: a checkpoint becomes ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)``. mmseg's model bases pass it down from
            ``model.pretrained``. Default: None.
        init_cfg (dict | list[dict] | None): ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` loads weights from a local file, an
            address or an official short name (``'convmlp_s_imagenet'``, ...;
            see :mod:`mmconvmlp.checkpoint`). ``None`` uses the official
            random initialisation.
    """

    arch_zoo = {
        **dict.fromkeys(['s', 'small'], dict(
            blocks=[2, 4, 2], dims=[128, 256, 512], mlp_ratios=[2, 2, 2],
            channels=64, n_conv_blocks=2)),
        **dict.fromkeys(['m', 'medium'], dict(
            blocks=[3, 6, 3], dims=[128, 256, 512], mlp_ratios=[3, 3, 3],
            channels=64, n_conv_blocks=3)),
        **dict.fromkeys(['l', 'large'], dict(
            blocks=[4, 8, 3], dims=[192, 384, 768], mlp_ratios=[3, 3, 3],
            channels=96, n_conv_blocks=3)),
    }

    #: Memory format of the returned maps: NCHW-contiguous;
    #: :meth:`switch_to_deploy` may switch it to channels-last, the layout
    #: its convolutions then produce, to save the copies.
    out_memory_format = torch.contiguous_format

    def __init__(self,
                 arch='s',
                 in_channels=3,
                 out_indices=None,
                 frozen_stages=-1,
                 norm_cfg=dict(type='BN', requires_grad=True),
                 norm_eval=False,
                 drop_path_rate=0.1,
                 with_cp=False,
                 winograd=False,
                 pretrained=None,
                 init_cfg=None):
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError(
                    'ConvMLP: set either init_cfg or pretrained (deprecated), '
                    f'not both; got pretrained={pretrained!r} and '
                    f'init_cfg={init_cfg!r}')
            if not isinstance(pretrained, str):
                raise TypeError('ConvMLP: pretrained must be a checkpoint '
                                f'(str) or None, got {type(pretrained)}')
            warnings.warn(
                'ConvMLP: pretrained is deprecated, use init_cfg=dict('
                f"type='Pretrained', checkpoint={pretrained!r}) instead",
                DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        blocks, dims, mlp_ratios, channels, n_conv_blocks = (
            self.arch_settings[k] for k in _ARCH_KEYS)
        self.in_channels = in_channels
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        self.tokenizer = ConvTokenizer(in_channels, channels, norm_cfg,
                                       with_cp=with_cp, winograd=winograd)
        self.conv_stages = ConvStage(n_conv_blocks, channels, dims[0],
                                     dims[0], norm_cfg, with_cp=with_cp,
                                     winograd=winograd)
        self.stages = nn.ModuleList()
        for i, num_blocks in enumerate(blocks):
            rates = torch.linspace(0, drop_path_rate, num_blocks).tolist()
            self.stages.append(ConvMLPStage(
                dims[i], dims[i + 1] if i + 1 < len(blocks) else None,
                mlp_ratios[i], rates, with_cp=with_cp))

        #: channels and stride of every map, indexed as in the table above
        self.map_channels = [channels, dims[0]] + [
            dims[min(i + 1, len(blocks) - 1)] for i in range(len(blocks))]
        self.map_strides = [4, 8] + [
            2 ** (4 + min(i, len(blocks) - 2)) for i in range(len(blocks))]
        self.num_maps = len(self.map_channels)
        self.out_indices = self._parse_out_indices(out_indices)
        #: channels of the returned maps, in order (what FPN's in_channels is)
        self.out_channels = [self.map_channels[i] for i in self.out_indices]

        if not -1 <= frozen_stages < self.num_maps:
            raise ValueError(
                f'frozen_stages must be in [-1, {self.num_maps - 1}], got '
                f'{frozen_stages}')
        self.frozen_stages = frozen_stages
        self._freeze_stages()

    def _parse_arch(self, arch):
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise KeyError(
                    f'unknown ConvMLP arch {arch!r}; choose one of '
                    f'{sorted(self.arch_zoo)} or pass a dict with keys '
                    f'{list(_ARCH_KEYS)}')
            return copy.deepcopy(self.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or dict, got {type(arch)}')
        missing = [k for k in _ARCH_KEYS if k not in arch]
        extra = [k for k in arch if k not in _ARCH_KEYS]
        if missing or extra:
            raise ValueError(
                f'custom ConvMLP arch needs exactly the keys '
                f'{list(_ARCH_KEYS)}; missing {missing}, unknown {extra}')
        lengths = {k: len(arch[k]) for k in ('blocks', 'dims', 'mlp_ratios')}
        if len(set(lengths.values())) != 1 or lengths['blocks'] < 2:
            raise ValueError(
                'custom ConvMLP arch: blocks, dims and mlp_ratios need one '
                f'entry per Conv-MLP stage (at least 2), got lengths {lengths}')
        return copy.deepcopy(arch)

    def _parse_out_indices(self, out_indices):
        if out_indices is None:
            last_at_stride = {s: i for i, s in enumerate(self.map_strides)}
            return tuple(sorted(last_at_stride.values()))
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out_indices = tuple(i if i >= 0 else self.num_maps + i
                            for i in out_indices)
        bad = [i for i in out_indices if not 0 <= i < self.num_maps]
        if bad or not out_indices or len(set(out_indices)) != len(
                out_indices):
            raise ValueError(
                f'out_indices must be distinct map indices in [0, '
                f'{self.num_maps - 1}] (0: tokenizer, 1: conv stage, 2-'
                f'{self.num_maps - 1}: Conv-MLP stages), got {out_indices}')
        return tuple(sorted(out_indices))

    def _units(self):
        """The modules that produce maps 0, 1, 2, ..., in order."""
        return [self.tokenizer, self.conv_stages, *self.stages]

    def _freeze_stages(self):
        for unit in self._units()[:self.frozen_stages + 1]:
            unit.eval()
            for param in unit.parameters():
                param.requires_grad = False

    def init_weights(self):
        """Load ``init_cfg``'s pretrained weights, or initialise as upstream."""
        if (isinstance(self.init_cfg, dict)
                and self.init_cfg.get('type') == 'Pretrained'):
            load_backbone_weights(
                self, self.init_cfg['checkpoint'],
                prefix=self.init_cfg.get('prefix'),
                logger=MMLogger.get_current_instance())
            self._is_init = True
            return
        if self.init_cfg is not None:
            super().init_weights()
            return
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=.02, bias=0.)
            elif isinstance(m, nn.LayerNorm):
                constant_init(m, 1., bias=0.)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out',
                                        nonlinearity='relu')
            elif isinstance(m, _BatchNorm):
                constant_init(m, 1., bias=0.)
        self._is_init = True

    def _check_input(self, x):
        if (not isinstance(x, torch.Tensor) or x.dim() != 4
                or x.shape[1] != self.in_channels or x.shape[2] < 1
                or x.shape[3] < 1):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
            raise ValueError(
                f'ConvMLP expects an image batch of shape (N, '
                f'{self.in_channels}, H, W) with H, W >= 1, got {shape}')

    def forward(self, x):
        """Return the maps chosen by ``out_indices`` as NCHW tensors."""
        self._check_input(x)
        outs = []
        for i, unit in enumerate(self._units()[:self.out_indices[-1] + 1]):
            if i == 2:  # the Conv-MLP stages work channel-last
                x = x.permute(0, 2, 3, 1)
            x = unit(x)
            if i in self.out_indices:
                x_nchw = x if i < 2 else x.permute(0, 3, 1, 2)
                outs.append(x_nchw.contiguous(
                    memory_format=self.out_memory_format))
        return tuple(outs)

    def switch_to_deploy(self, winograd=True, channels_last=True,
                         fused_mlp=True):
        """Make this backbone inference-only and faster; each block applies
        its own transforms (see :mod:`mmconvmlp.models.blocks`): BN and
        LayerNorm affines folded; with ``fused_mlp`` the MLPs' bias and GELU
        applied inside oneDNN's GEMMs; with ``winograd`` the 3x3 stride-1
        convs as Winograd convs with their ReLU fused in. With
        ``channels_last`` it takes and returns channels-last maps (same
        values, no layout copies). Outputs match the eager model's to float
        rounding (the tests check 1e-4 relative)."""
        self.eval()
        self.tokenizer.switch_to_deploy(winograd)
        self.conv_stages.switch_to_deploy(winograd)
        for stage in self.stages:
            stage.switch_to_deploy(fused_mlp)
        if channels_last and self.out_memory_format != torch.channels_last:
            self.to(memory_format=torch.channels_last)
            self.register_forward_pre_hook(_to_channels_last)
            self.out_memory_format = torch.channels_last

    def train(self, mode=True):
        """Set train mode, keeping frozen maps and (if norm_eval) BN in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
