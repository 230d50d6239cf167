"""Gatys et al. 2016 ("Image Style Transfer Using Convolutional Neural Networks"): optimise the
pixels of one image against the perceptual losses. Slow, but the quality reference the
feed-forward networks are measured against; it uses the training loss, not a copy of it."""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from fast_style.config import GatysConfig
from fast_style.hardware import PLANNED_SHARE, memory_short
from fast_style.losses import PerceptualLoss

# Peak memory of optimising one picture on a CPU, measured at 0.19 to 3 megapixels (Zen 4, fp32):
# 1.1 GB besides 3.2 GB a megapixel (VGG-16's activations and their gradients), and L-BFGS's
# history of 50 steps another 1.7 GB a megapixel once full (2.10 GB at 0.19 MP after 60 steps).
BYTES_BESIDES, BYTES_PER_MEGAPIXEL, LBFGS_HISTORY_PER_MEGAPIXEL, LBFGS_HISTORY = 1.1e9, 3.2e9, 1.7e9, 50


def check_memory(height: int, width: int, steps: int, method: str) -> None:
    """A 12-megapixel photo took 24 GB, all there was, and the kernel killed the run without a
    line after 100 s; it would have taken some 60 GB. The line names the --size that fits."""
    history = LBFGS_HISTORY_PER_MEGAPIXEL * min(steps, LBFGS_HISTORY) / LBFGS_HISTORY if method == "lbfgs" else 0.0
    per_megapixel, megapixels = BYTES_PER_MEGAPIXEL + history, height * width / 1e6
    need = BYTES_BESIDES + per_megapixel * megapixels
    if (free := memory_short(need)) is not None:
        side = int(max(height, width) * math.sqrt(max(PLANNED_SHARE * free - BYTES_BESIDES, 0) / per_megapixel / megapixels))
        raise ValueError(f"{width}x{height} takes about {need / 1e9:.0f} GB to optimise at {per_megapixel / 1e9:.1f} GB a "
                         f"megapixel, measured; {free / 1e9:.1f} GB is free: --size {side} fits")


def optimize_image(
    loss_fn: PerceptualLoss,
    content: torch.Tensor,
    steps: int = GatysConfig.steps,
    method: str = GatysConfig.method,
    lr: float | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """content: (1, 3, H, W) in [0, 1], also the starting image. `steps` counts loss
    evaluations, for L-BFGS as for Adam. Returns the image and its final losses."""
    if content.device.type == "cpu":  # a GPU says out of memory itself
        check_memory(content.shape[-2], content.shape[-1], steps, method)
    image = content.detach().clone().requires_grad_(True)
    bar = tqdm(total=steps, disable=None if progress else True, desc=f"optimising ({method})", unit="step")
    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        nonlocal last
        optimizer.zero_grad()
        last = loss_fn(image, content)
        last["total"].backward()
        bar.update(1)
        bar.set_postfix(loss=f"{last['total'].item():.4g}")
        return last["total"]

    optimizer: torch.optim.Optimizer
    if method == "lbfgs":
        optimizer = torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=steps, max_eval=steps, history_size=50,
                                      tolerance_grad=0, tolerance_change=0, line_search_fn="strong_wolfe")
        optimizer.step(closure)
    elif method == "adam":
        optimizer = torch.optim.Adam([image], lr=lr or 0.02)
        for _ in range(steps):
            optimizer.step(closure)
            with torch.no_grad():
                image.clamp_(0, 1)
    else:
        raise ValueError(f"unknown method {method!r} (lbfgs or adam)")
    bar.close()
    result = image.detach().clamp(0, 1)
    with torch.no_grad():
        final = loss_fn(result, content)
    return result, {k: v.item() for k, v in final.items()}


class GatysEngine:
    """The optimiser where a Stylizer expects its engine (fast_style.engine.Engine): tensors in,
    tensors out, so `stylize --optimize` gets the same size, strength and colour handling. Each
    image of a batch is optimised on its own; images only (a video would take hours a second)."""

    precision, compiles, gallery, input_format = "fp32", False, None, torch.contiguous_format

    def __init__(self, loss_fn: PerceptualLoss, steps: int = GatysConfig.steps, method: str = GatysConfig.method,
                 device: torch.device | None = None, progress: bool = True) -> None:
        self.device = device or torch.device("cpu")
        self.loss_fn, self.steps, self.method, self.progress = loss_fn.to(self.device), steps, method, progress

    def __call__(self, x: torch.Tensor, style: None = None) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 3, H, W) in [0, 1], on self.device. One painting: no style choice."""
        x = x.to(self.device, torch.float32)
        return torch.cat([optimize_image(self.loss_fn, xi[None], self.steps, self.method, progress=self.progress)[0]
                          for xi in x])
