"""A network that downsamples by N paints its strokes on an N-pixel grid fixed to the frame. When
the camera pans by a distance that is not a multiple of N, the scene lands on another phase of
that grid and the strokes jump: the flicker of small, fast networks is mostly this aliasing
(docs/realtime.md). Moving the grid with the scene removes it: estimate each frame's global
translation (phase correlation, Kuglin & Hines 1975), keep the sum, and pad the frame so the
scene keeps one phase of the grid. The pad is N pixels in all (offset before, the rest after),
so every frame has one shape and compiled and int8 networks are made once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

MIN_PEAK = 0.05  # a correlation peak below this is no translation (a cut, a zoom, noise): the grid stays
CROP = 256  # motion is measured on the middle CROP x CROP of the luma, at full resolution
REFRESH = 1 / 8  # the reference frame is renewed once the scene has moved this share of CROP from it


def _luma(frame: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(3, H, W) float [0, 1] or (H, W, 3) uint8 -> the middle CROP x CROP (at most) of its luma."""
    if isinstance(frame, np.ndarray):
        h, w = frame.shape[:2]
        top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        x = torch.from_numpy(np.array(frame[top : top + CROP, left : left + CROP])).permute(2, 0, 1).float()  # a copy: frames may be read-only
    else:
        h, w = frame.shape[-2:]
        top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        x = frame.detach()[:, top : top + CROP, left : left + CROP].float().cpu()
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]  # (h, w)


def _vertex(left: torch.Tensor, mid: torch.Tensor, right: torch.Tensor) -> float:
    """Where a parabola through three equally spaced values peaks, relative to the middle one."""
    curve = float(left - 2 * mid + right)
    return max(-0.5, min(0.5, float(left - right) / (2 * curve))) if curve < 0 else 0.0


def translation(reference: torch.Tensor, spectrum: torch.Tensor, shape: tuple[int, int]) -> tuple[float, float] | None:
    """Two frames' windowed spectra -> (dy, dx): what the reference showed at (y + dy, x + dx) the
    other shows at (y, x); None without a clear peak."""
    cross = reference * spectrum.conj()
    surface = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-12), s=shape)  # (h, w), peaks at the shift
    peak = int(surface.argmax())
    if surface.view(-1)[peak] < MIN_PEAK:
        return None
    h, w = shape
    py, px = divmod(peak, w)
    # Sub-pixel: a parabola through the peak and its neighbours along each axis.
    dy = py + _vertex(surface[(py - 1) % h, px], surface[py, px], surface[(py + 1) % h, px])
    dx = px + _vertex(surface[py, (px - 1) % w], surface[py, px], surface[py, (px + 1) % w])
    return (dy - h if dy > h / 2 else dy), (dx - w if dx > w / 2 else dx)


class GridLock:
    """`lock(frame)` for each frame of a stream in order -> the scene's motion since the first
    frame, (y, x) in the frame's pixels, for `Stylizer.stylize_tensor(..., motion=)`. Each frame
    is measured against a reference frame rather than the previous one, so that the error of
    each measure (a fraction of a pixel) does not add up over a slow pan."""

    def __init__(self) -> None:
        self.y = self.x = 0.0
        self._window: torch.Tensor | None = None
        self._reference: tuple[torch.Tensor, float, float] | None = None  # spectrum, and the motion there

    def __call__(self, frame: torch.Tensor | np.ndarray) -> tuple[float, float]:
        luma = _luma(frame)
        if self._window is None or self._window.shape != luma.shape:
            h, w = luma.shape
            self._window = torch.hann_window(h, periodic=False)[:, None] * torch.hann_window(w, periodic=False)[None]
            self._reference = None
        spectrum = torch.fft.rfft2((luma - luma.mean()) * self._window)
        moved = None if self._reference is None else translation(self._reference[0], spectrum, luma.shape)
        if moved is None:  # the first frame, a cut: the grid stays where it is
            self._reference = spectrum, self.y, self.x
            return self.y, self.x
        _, y0, x0 = self._reference
        self.y, self.x = y0 + moved[0], x0 + moved[1]
        if max(abs(moved[0]), abs(moved[1])) > REFRESH * min(luma.shape):
            self._reference = spectrum, self.y, self.x
        return self.y, self.x


def locked(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, motion: Sequence[tuple[float, float]],
           multiple: int) -> torch.Tensor:
    """(B, 3, H, W) -> run over each frame padded so that its scene keeps one phase of the
    network's `multiple`-pixel grid, cropped back to (B, 3, H, W). `motion`: one (y, x) a frame,
    in x's pixels."""
    h, w = x.shape[-2:]
    offsets = [(round(y) % multiple, round(x_) % multiple) for y, x_ in motion]
    if len(set(offsets)) == 1:  # a frame at a time, as streams run on CPUs: no copies but the pad
        (oy, ox), = set(offsets)
        return run(F.pad(x, (ox, multiple - ox, oy, multiple - oy), mode="replicate"))[..., oy : oy + h, ox : ox + w]
    padded = torch.cat([F.pad(xi[None], (ox, multiple - ox, oy, multiple - oy), mode="replicate")
                        for xi, (oy, ox) in zip(x, offsets)])  # (B, 3, H + multiple, W + multiple)
    y = run(padded)
    return torch.cat([yi[None, :, oy : oy + h, ox : ox + w] for yi, (oy, ox) in zip(y, offsets)])
