"""Stylize images too large for one pass, in tiles, without seams.

Instance norm makes every output pixel depend on statistics of the whole image, so tiles
normalised on their own come out in different colours. Here the statistics of each norm layer
are taken once, from the image scaled down to fit one pass, and every tile is normalised with
them. With fixed statistics the network is a plain conv net: a tile cut at a multiple of 4 with
a margin wider than the receptive field (about 54 px) gives exactly the pixels a single pass
with those statistics would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

MARGIN = 64  # > receptive radius of TransformerNet, and a multiple of 4


@contextmanager
def fixed_norm_stats(net: nn.Module, reference: torch.Tensor) -> Iterator[None]:
    """Inside the block, every InstanceNorm2d of `net` uses the per-channel mean and
    variance it saw on `reference` (1, 3, h, w)."""
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        x = inputs[0].float()
        stats[module] = (x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True))

    handles = [m.register_forward_hook(record) for m in norms]
    try:
        net(reference)
    finally:
        for h in handles:
            h.remove()

    def normalise_with(m: nn.InstanceNorm2d):  # noqa: ANN202
        mean, var = stats[m]
        scale = m.weight.view(1, -1, 1, 1) / torch.sqrt(var + m.eps)
        shift = m.bias.view(1, -1, 1, 1) - mean * scale
        return lambda x: x * scale.to(x.dtype) + shift.to(x.dtype)

    for m in norms:
        m.forward = normalise_with(m)
    try:
        yield
    finally:
        for m in norms:
            del m.forward


def stylize_tiled(net: nn.Module, x: torch.Tensor, tile: int = 1024, reference_side: int = 1024) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, H, W) in tiles of `tile` pixels (a multiple of 4) plus margins."""
    h, w = x.shape[-2:]
    scale = min(1.0, reference_side / max(h, w))
    reference = F.interpolate(x, scale_factor=scale, mode="area") if scale < 1 else x
    out = torch.empty_like(x)
    with fixed_norm_stats(net, reference):
        for top in range(0, h, tile):
            for left in range(0, w, tile):
                t0, l0 = max(0, top - MARGIN), max(0, left - MARGIN)
                t1, l1 = min(h, top + tile + MARGIN), min(w, left + tile + MARGIN)
                y = net(x[..., t0:t1, l0:l1])
                out[..., top : top + tile, left : left + tile] = y[..., top - t0 : top - t0 + tile, left - l0 : left - l0 + tile]
    return out
