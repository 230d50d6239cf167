"""Temporal stability, measured: stylize a clip whose motion is known exactly and compare each
stylized frame with the previous one moved by that motion.

A pan moves a window across a still photo by whole pixels, so the warp is an exact shift. A zoom
magnifies the photo's centre by `rate` a frame; its frames and its warp are bilinear resamplings,
which blur a little, so a zoom clip has a small floor even for a network without any flicker
(0.005 for the identity on the content photos). Either way, what is left of
|S(t+1) - warp(S(t))| over the pixels both frames see is flicker the network made, not motion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Align = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Clip:
    frames: torch.Tensor  # (T, 3, h, w)
    align: Align  # stylized (T, 3, h, w) -> (S(t+1), warp(S(t))), both (T-1, 3, h', w')
    motion: str  # for reports


def pan_clip(photo: torch.Tensor, frames: int, size: tuple[int, int], step: tuple[int, int] = (2, 3)) -> Clip:
    """(3, H, W) photo -> a window of `size` moving `step` = (dy, dx) pixels a frame."""
    h, w = size
    dy, dx = step
    if h + dy * (frames - 1) > photo.shape[-2] or w + dx * (frames - 1) > photo.shape[-1]:
        raise ValueError(f"a {h}x{w} window moving {step} for {frames} frames leaves the {tuple(photo.shape[-2:])} photo")
    clip = torch.stack([photo[:, t * dy : t * dy + h, t * dx : t * dx + w] for t in range(frames)])

    def align(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Frame t+1 at (y, x) shows what frame t showed at (y + dy, x + dx).
        return out[1:, :, : h - dy, : w - dx], out[:-1, :, dy:, dx:]

    return Clip(clip, align, f"pan {dy} down, {dx} right a frame")


def centre_grid(h: int, w: int, scale: float) -> torch.Tensor:
    """(1, h, w, 2) sampling grid that magnifies the centre by `scale` (align_corners=True units):
    the zoom clips here, and the stability term's zoomed copy in training."""
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
    return (grid / scale)[None]


def zoom_clip(photo: torch.Tensor, frames: int, size: tuple[int, int], rate: float = 1.02) -> Clip:
    """(3, H, W) photo -> the centre `size` window, magnified by `rate` more each frame."""
    h, w = size
    top, left = (photo.shape[-2] - h) // 2, (photo.shape[-1] - w) // 2
    if top < 0 or left < 0:
        raise ValueError(f"a {h}x{w} window leaves the {tuple(photo.shape[-2:])} photo")
    window = photo[None, :, top : top + h, left : left + w]
    clip = torch.cat([F.grid_sample(window, centre_grid(h, w, rate**t), align_corners=True) for t in range(frames)])

    def align(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Frame t+1 at p shows what frame t showed at centre + (p - centre) / rate: inside frame t.
        grid = centre_grid(h, w, rate).to(out.device).expand(len(out) - 1, -1, -1, -1)
        return out[1:], F.grid_sample(out[:-1], grid, align_corners=True)

    return Clip(clip, align, f"zoom x{rate} a frame")


def flicker(stylize: Callable[[torch.Tensor], torch.Tensor], clip: Clip) -> float:
    """Mean |S(t+1) - warp(S(t))| over the pixels both frames see, in [0, 1] units; 0 for a
    perfectly stable network on a pan. `stylize` maps (B, 3, h, w) to (B, 3, h, w)."""
    out = torch.cat([stylize(clip.frames[i : i + 4]) for i in range(0, len(clip.frames), 4)])  # (T, 3, h, w)
    later, earlier = clip.align(out)
    return (later - earlier).abs().mean().item()
