"""Gatys et al. 2016 ("Image Style Transfer Using Convolutional Neural Networks"): optimise the
pixels of one image against the perceptual losses. Slow, but the quality reference the
feed-forward networks are measured against; it uses the training loss, not a copy of it."""

from __future__ import annotations

import torch
from tqdm import tqdm

from fast_style.images import fit_longest, resize, to_pil, to_tensor
from fast_style.losses import PerceptualLoss


def optimize_image(
    loss_fn: PerceptualLoss,
    content: torch.Tensor,
    steps: int = 300,
    method: str = "lbfgs",
    lr: float | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """content: (1, 3, H, W) in [0, 1], also the starting image. `steps` counts loss
    evaluations, for L-BFGS as for Adam. Returns the image and its final losses."""
    image = content.detach().clone().requires_grad_(True)
    bar = tqdm(total=steps, disable=not progress, desc=f"optimising ({method})", unit="step")
    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        nonlocal last
        optimizer.zero_grad()
        last = loss_fn(image, content)
        last["total"].backward()
        bar.update(1)
        bar.set_postfix(loss=f"{last['total'].item():.4g}")
        return last["total"]

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


class GatysStylizer:
    """The `stylize --optimize` counterpart of Stylizer: same `name` and `stylize_images`."""

    def __init__(self, loss_fn: PerceptualLoss, name: str, steps: int, method: str, device: torch.device) -> None:
        self.loss_fn, self.name, self.steps, self.method, self.device = loss_fn.to(device), name, steps, method, device

    def stylize_images(self, images: list, size: int | None = None) -> list:
        out = []
        for image in images:
            x = to_tensor(image.convert("RGB"))[None].to(self.device)
            h, w = x.shape[-2:]
            y, _ = optimize_image(self.loss_fn, fit_longest(x, size), self.steps, self.method)
            out.append(to_pil(resize(y, h, w)[0] if y.shape[-2:] != (h, w) else y[0]))
        return out
