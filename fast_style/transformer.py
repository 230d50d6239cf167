"""The image transformation network of Johnson et al. 2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution" (arXiv:1603.08155), with instance
normalisation (Ulyanov et al. 2016, arXiv:1607.08022) in place of batch norm."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

# The settings live with the other defaults, torch-free: Hydra's for `train`.
from fast_style.config import TransformerConfig

MULTIPLE = 4  # two stride-2 convs: sizes must divide by 4 on the way through
MIN_SIDE = 8  # the 9x9 reflection pads need at least 8 pixels (reflect pad < side)


def _padding(side: int, multiple: int = MULTIPLE, min_side: int = MIN_SIDE) -> int:
    """Pixels to add to a side. sym_max, not max, and no branch on the size: an exported graph
    (ONNX) keeps H and W free. TorchScript knows only max."""
    if torch.jit.is_scripting():
        return max(min_side - side, (-side) % multiple)
    return torch.sym_max(min_side - side, (-side) % multiple)


class ConvLayer(nn.Sequential):
    """Reflection padding instead of zero padding: no dark frame at the borders."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride))


class ConvNormReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            ConvLayer(c_in, c_out, kernel, stride),
            nn.InstanceNorm2d(c_out, affine=True),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut (He et al. 2016), as in Johnson's net."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class UpsampleConv(nn.Sequential):
    """Nearest-neighbour upsampling then a conv, instead of a transposed conv, which
    leaves checkerboard artefacts (Odena et al. 2016, https://distill.pub/2016/deconv-checkerboard/)."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvLayer(c_in, c_out, kernel),
            nn.InstanceNorm2d(c_out, affine=True),
            nn.ReLU(inplace=True),
        )


# For phase a (0, 1) of a 2x nearest upsampling, tap t (0-2) of a 3x3 kernel reads the source
# pixel at offset (a + t - 1) // 2, which is a - 1 or a: PHASES[a, r, t] = 1 where it reads offset a - 1 + r.
PHASES = torch.tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], dtype=torch.float32)


class UpsampledConv(nn.Module):
    """A 3x3 ConvLayer on the 2x nearest upsampling of x (and the instance norm + ReLU of an
    UpsampleConv), computed on x itself, for inference. Each output pixel reads only 2x2 source
    pixels, so the four output phases are 2x2 convs of x (its taps that read one pixel summed):
    2.25x fewer multiply-adds and no upsampled tensor. Exact (the reflection pad of the upsampled
    tensor is the replicate pad of x). docs/speed.md has what it gains."""

    def __init__(self, layer: ConvLayer, norm: nn.InstanceNorm2d | None = None) -> None:
        super().__init__()
        conv = layer[1]
        if conv.kernel_size != (3, 3):
            raise ValueError(f"UpsampledConv is made for 3x3 convs, not {conv.kernel_size}")
        self.out_channels = conv.out_channels
        phases = PHASES.to(conv.weight.device)  # a network already on the GPU (the first CUDA run failed here)
        weight = torch.einsum("art,bsu,oitu->aboirs", phases, phases, conv.weight.detach().float())  # (2, 2, O, I, 2, 2)
        self.conv = nn.Conv2d(conv.in_channels, 4 * conv.out_channels, 2, device=conv.weight.device)
        with torch.no_grad():
            self.conv.weight.copy_(weight.reshape(self.conv.weight.shape))  # channel (2a + b) * O + o
            self.conv.bias.copy_(conv.bias.repeat(4))
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), o = x.shape[-2:], self.out_channels
        # Channels last, so that each phase's slice and the interleaving below move whole pixels.
        y = self.conv(F.pad(x, (1, 1, 1, 1), mode="replicate")).permute(0, 2, 3, 1)  # (B, h+1, w+1, 4 O)
        rows = [torch.stack([y[:, a:a + h, b:b + w, (2 * a + b) * o:(2 * a + b + 1) * o] for b in (0, 1)], 3)
                for a in (0, 1)]
        y = torch.stack(rows, 2).reshape(y.shape[0], 2 * h, 2 * w, o).permute(0, 3, 1, 2)  # pixel (2i + a, 2j + b)
        return y if self.norm is None else F.relu(self.norm(y))


class SpaceToDepthConv(nn.Module):
    """A stride-1 ConvLayer with few output channels (Johnson's 9x9 conv out, 32 to 3), for
    inference on CPUs, computed on the 2x2 space-to-depth of its padded input: a (k+1)/2 conv from
    4x the channels to 4x the outputs (one per phase), whose pixels are then put back. 1.23x the
    multiply-adds, but oneDNN's kernels fill their vector lanes with 12 outputs where 3 left most
    of them empty: on an AVX2 Zen 3 at 480p, 255 -> 133 ms in eager fp32 (docs/speed.md). Exact
    up to rounding; the input's sides must be even (the network pads them to a multiple of 4)."""

    def __init__(self, layer: ConvLayer) -> None:
        super().__init__()
        conv = layer[1]
        if not isinstance(conv, nn.Conv2d) or conv.kernel_size[0] % 2 == 0 or len(set(conv.kernel_size)) > 1 \
                or conv.stride != (1, 1) or conv.bias is None:
            raise ValueError(f"SpaceToDepthConv is made for odd square stride-1 convs, not {conv}")
        k = conv.kernel_size[0]
        self.pad, taps = k // 2, (k + 1) // 2
        # Output phase a (0, 1) with tap t of the new kernel reads input phase r at the old tap
        # d = 2 t + r - a: SELECT[a, r, t, d] = 1 there (the taps outside 0..k-1 read nothing).
        a, r, t, d = torch.meshgrid(*(torch.arange(n) for n in (2, 2, taps, k)), indexing="ij")
        select = (d == 2 * t + r - a).float().to(conv.weight.device)
        weight = torch.einsum("artd,bsue,ocde->oabcrstu", select, select, conv.weight.detach().float())
        self.conv = nn.Conv2d(4 * conv.in_channels, 4 * conv.out_channels, taps, device=conv.weight.device)
        with torch.no_grad():  # channel 4 o + 2 a + b out, 4 c + 2 r + s in: pixel_(un)shuffle's order
            self.conv.weight.copy_(weight.reshape(self.conv.weight.shape))
        self.conv.bias = nn.Parameter(conv.bias.detach().float().repeat_interleave(4))  # typed: not Optional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="reflect")  # (B, C, H + 2p, W + 2p)
        return F.pixel_shuffle(self.conv(F.pixel_unshuffle(x, 2)), 2)  # (B, 4C, ...) -> (B, O, H, W)


def for_inference(net: TransformerNet, space_to_depth: bool = False) -> TransformerNet:
    """A copy of `net` whose upsample + conv layers are each one `UpsampledConv`, and, with
    `space_to_depth` (CPUs, where it was measured), whose 9x9 conv out is a `SpaceToDepthConv`."""
    net = copy.deepcopy(net)
    layers, decoder = [], list(net.decoder)
    while decoder:
        layer = decoder.pop(0)
        if isinstance(layer, UpsampleConv):  # upsample, conv, norm, ReLU
            layer = UpsampledConv(layer[1], layer[2])
        elif isinstance(layer, nn.Upsample):  # the realtime networks' last layer: upsample, conv
            layer = UpsampledConv(decoder.pop(0))
        elif space_to_depth and isinstance(layer, ConvLayer) and layer[1].kernel_size == (9, 9):
            layer = SpaceToDepthConv(layer)
        layers.append(layer)
    net.decoder = nn.Sequential(*layers)
    return net


LAYOUTS = ("johnson", "realtime", "realtime8")


class TransformerNet(nn.Module):
    """Maps a (B, 3, H, W) RGB batch in [0, 1] to a stylized batch of the same size.

    The output is not clamped, so that training gets gradients everywhere;
    callers that need displayable pixels clamp to [0, 1]."""

    def __init__(self, config: TransformerConfig | None = None) -> None:
        super().__init__()
        self.config = config or TransformerConfig()
        self.output_scale = self.config.output_scale
        c = self.config.channels
        if self.config.layout not in LAYOUTS:
            raise ValueError(f"unknown network layout {self.config.layout!r} (known: {', '.join(LAYOUTS)})")
        self.multiple, self.min_side = MULTIPLE, MIN_SIDE
        # What a tile needs around it (fast_style.tiling): more than the receptive radius, measured
        # as the input pixels one output pixel's gradient reaches (johnson 55, realtime 40,
        # realtime8 80), and a multiple of self.multiple so that tiles keep the strided grid.
        self.tile_margin = 64
        self.widest: float = c  # channels of the largest activation per input pixel (here c at full size): memory
        if self.config.layout.startswith("realtime"):
            # Johnson's full-resolution layers (a 9x9 conv in, a 3x3 and a 9x9 conv out) cost more
            # than the residual blocks at a quarter of the size. Here the first conv already has
            # stride 2 and the last makes 3 channels from c: at 480p, 5.4 GMAC a frame against the
            # small Johnson net's 13.6; realtime8 3.4 with four blocks, 2.0 with one (shipped; 1.4 as
            # the engine runs it, its upsamplings at the lower size; docs/realtime.md has the
            # candidates measured).
            widths = [c, 3 * c] if self.config.layout == "realtime" else [c, 2 * c, 4 * c]
            pairs = list(zip(widths, widths[1:]))
            self.multiple = 2 ** len(widths)
            self.min_side = max(MIN_SIDE, 2 * self.multiple)  # a 3x3 reflection pad at the smallest size
            self.tile_margin = 64 if self.multiple == 4 else 96
            self.widest = c / 4  # c at half size
            self.encoder = nn.Sequential(
                ConvNormReLU(3, c, 5, stride=2), *[ConvNormReLU(a, b, 3, stride=2) for a, b in pairs]
            )
            self.residuals = nn.Sequential(*[ResidualBlock(widths[-1]) for _ in range(self.config.res_blocks)])
            self.decoder = nn.Sequential(
                *[UpsampleConv(b, a, 3) for a, b in reversed(pairs)],
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvLayer(c, 3, 3),
            )
            return
        self.encoder = nn.Sequential(
            ConvNormReLU(3, c, 9),
            ConvNormReLU(c, 2 * c, 3, stride=2),
            ConvNormReLU(2 * c, 4 * c, 3, stride=2),
        )
        self.residuals = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(self.config.res_blocks)])
        self.decoder = nn.Sequential(
            UpsampleConv(4 * c, 2 * c, 3),
            UpsampleConv(2 * c, c, 3),
            ConvLayer(c, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # Pad (replicating the edge) up to a size the strided convs divide exactly,
        # then crop: any H x W comes back H x W, odd sizes included.
        pad = [_padding(side, self.multiple, self.min_side) for side in (w, h)]
        x = F.pad(x, (0, pad[0], 0, pad[1]), mode="replicate")
        y = self.decoder(self.residuals(self.encoder(x))) * self.output_scale
        return y[..., :h, :w]
