"""Temporal stability, measured: stylize a clip whose motion is known exactly and compare each
stylized frame with the previous one moved by that motion.

The clip pans a window across a still photo by whole pixels, so the warp is an exact shift and
any difference between S(t+1) and the shifted S(t) over the pixels both frames see is flicker
the network made, not motion."""

from __future__ import annotations

from collections.abc import Callable

import torch


def pan_clip(photo: torch.Tensor, frames: int, size: tuple[int, int], step: tuple[int, int] = (2, 3)) -> torch.Tensor:
    """(3, H, W) photo -> (frames, 3, h, w): a window of `size` moving `step` = (dy, dx) pixels a frame."""
    h, w = size
    dy, dx = step
    if h + dy * (frames - 1) > photo.shape[-2] or w + dx * (frames - 1) > photo.shape[-1]:
        raise ValueError(f"a {h}x{w} window moving {step} for {frames} frames leaves the {tuple(photo.shape[-2:])} photo")
    return torch.stack([photo[:, t * dy : t * dy + h, t * dx : t * dx + w] for t in range(frames)])


def flicker(stylize: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor, step: tuple[int, int] = (2, 3)) -> float:
    """Mean |S(t+1) - warp(S(t))| over the pixels both frames see, in [0, 1] units; 0 for a
    perfectly stable network. `stylize` maps (B, 3, h, w) to (B, 3, h, w)."""
    dy, dx = step
    out = torch.cat([stylize(clip[i : i + 4]) for i in range(0, len(clip), 4)])  # (T, 3, h, w)
    # Frame t+1 at (y, x) shows what frame t showed at (y + dy, x + dx).
    later, earlier = out[1:, :, : out.shape[-2] - dy, : out.shape[-1] - dx], out[:-1, :, dy:, dx:]
    return (later - earlier).abs().mean().item()
