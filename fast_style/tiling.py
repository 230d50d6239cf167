"""Stylize images too large for one pass, in tiles, without seams.

Instance norm makes every output pixel depend on statistics of the whole image, so tiles
normalised on their own come out in different colours. Here the statistics of each norm layer
are taken once, from references (the image scaled down to the largest size one pass takes, and
to half that), and every tile is normalised with them. With fixed statistics the network is a
plain conv net: a tile cut at a multiple of the network's stride with a margin wider than its
receptive field (`TransformerNet.tile_margin`) gives exactly the pixels a single pass with those
statistics would.

The reference is as large as a single pass may be, so the look is continuous at the threshold:
an image just above it gets nearly its own statistics. Far above it, a scaled copy has less fine
detail than the image, and its statistics differ more (a 12-megapixel photo came out darker);
statistics taken again at half the pixels show the trend, which is carried on to the image's own
size (docs/design.md has the measurements).
The statistics are passed explicitly, to a private copy of the network whose norms are fixed
affine maps; the shared network is never changed, so other threads can use it meanwhile."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from fast_style.transformer import TransformerNet

TILE = 1024  # a multiple of every layout's stride (4 or 8)

NormStats = list[tuple[torch.Tensor, torch.Tensor]]  # per InstanceNorm2d, in module order: (mean, var), (1, C, 1, 1)


class FixedNorm(nn.Module):
    """An InstanceNorm2d with given statistics: x * scale + shift, per channel."""

    scale: torch.Tensor  # buffers: (1, C, 1, 1)
    shift: torch.Tensor

    def __init__(self, norm: nn.InstanceNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
        super().__init__()
        scale = norm.weight.view(1, -1, 1, 1) / torch.sqrt(var + norm.eps)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", norm.bias.view(1, -1, 1, 1) - mean * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def _norms(net: nn.Module) -> list[tuple[str, nn.InstanceNorm2d]]:
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)]


def norm_statistics(net: nn.Module, reference: torch.Tensor) -> NormStats:
    """The mean and variance every InstanceNorm2d of `net` sees on `reference` (1, 3, h, w).
    Hooks go on a copy, so the shared network is never touched."""
    probe = copy.deepcopy(net)
    stats: NormStats = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        x = inputs[0].float()
        stats.append((x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)))

    for _, m in _norms(probe):
        m.register_forward_hook(record)
    probe(reference)
    return stats


def with_fixed_norms(net: nn.Module, stats: NormStats) -> nn.Module:
    """A copy of `net` whose instance norms use `stats` instead of their input's own."""
    fixed = copy.deepcopy(net)
    norms = _norms(fixed)
    if len(norms) != len(stats):
        raise ValueError(f"{len(stats)} statistics for {len(norms)} norm layers")
    for (name, norm), (mean, var) in zip(norms, stats):
        fixed.set_submodule(name, FixedNorm(norm, mean, var))
    return fixed


def reference_image(x: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """(1, 3, H, W) scaled down (area average) to at most `max_pixels`, the largest single pass."""
    h, w = x.shape[-2:]
    scale = min(1.0, math.sqrt(max_pixels / (h * w)))
    if scale == 1.0:
        return x
    return F.interpolate(x, size=(max(1, int(h * scale)), max(1, int(w * scale))), mode="bicubic", antialias=True).clamp(0, 1)


def reference_statistics(net: nn.Module, x: torch.Tensor, max_pixels: int) -> NormStats:
    """The statistics of (1, 3, H, W) `x` as the largest single pass sees them, carried on to its own
    size: means linearly and variances geometrically in the logarithm of the area, from copies at
    `max_pixels` and half that. With 4 shipped networks and 4 photos at 6.8 and 12 megapixels, the
    tiles came 1.45-4.5x closer to a single pass at full size than with the copy at `max_pixels`
    alone (docs/design.md#tiles)."""
    large = reference_image(x, max_pixels)
    stats = norm_statistics(net, large)
    area, large_area = x.shape[-2] * x.shape[-1], large.shape[-2] * large.shape[-1]
    if area <= large_area or max_pixels < 256 * 256:  # from copies of 140x140 (borders weigh more) it was worse
        return stats
    small = reference_image(x, max_pixels // 2)
    steps = math.log(area / large_area) / math.log(large_area / (small.shape[-2] * small.shape[-1]))
    carried = []
    for (small_mean, small_var), (mean, var) in zip(norm_statistics(net, small), stats):
        log_var, small_log_var = var.clamp(min=1e-12).log(), small_var.clamp(min=1e-12).log()
        carried.append((mean + steps * (mean - small_mean), (log_var + steps * (log_var - small_log_var)).exp()))
    return carried


def stylize_tiled(net: TransformerNet, x: torch.Tensor, max_pixels: int, tile: int = TILE,
                  stats: NormStats | None = None) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, H, W) in tiles of `tile` pixels (a multiple of the net's stride) plus
    margins, normalised with `stats` (default: reference_statistics)."""
    h, w = x.shape[-2:]
    margin = net.tile_margin
    fixed = with_fixed_norms(net, stats if stats is not None else reference_statistics(net, x, max_pixels))
    out = torch.empty_like(x)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(0, top - margin), max(0, left - margin)
            t1, l1 = min(h, top + tile + margin), min(w, left + tile + margin)
            y = fixed(x[..., t0:t1, l0:l1])
            out[..., top : top + tile, left : left + tile] = y[..., top - t0 : top - t0 + tile, left - l0 : left - l0 + tile]
    return out
