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

MIN_PEAK = 0.05  # a correlation peak below this is no translation (a cut, a zoom, noise)
AGREE = 1.0  # patches whose motions differ by at most this many pixels vote together
STILL = 0.25  # a motion of at most this many pixels renews the reference frame, as a large one does
LUMA = torch.tensor([0.299, 0.587, 0.114])  # Rec. 601 weights of R, G, B


def _patches(frame: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(3, H, W) float [0, 1] or (H, W, 3) uint8 -> (5, P, P): the luma of the frame's middle and of
    four squares towards its corners, P the largest power of two in half its shorter side (32-256).
    A camera that pans moves all five; a still one keeps its corners still whatever crosses the
    middle, and the vote in `GridLock` follows the majority."""
    h, w = frame.shape[:2] if isinstance(frame, np.ndarray) else frame.shape[-2:]
    size = min(256, max(32, 1 << (min(h, w) // 2).bit_length() - 1), h, w)
    tops = [(h - size) // 2, max(0, h // 4 - size // 2), max(0, 3 * h // 4 - size // 2)]
    lefts = [(w - size) // 2, max(0, w // 4 - size // 2), max(0, 3 * w // 4 - size // 2)]
    corners = [(tops[0], lefts[0])] + [(min(t, h - size), min(l, w - size)) for t in tops[1:] for l in lefts[1:]]
    if isinstance(frame, np.ndarray):  # (5, P, P, 3): copies of the squares only
        crops = torch.from_numpy(np.stack([frame[t : t + size, l : l + size] for t, l in corners])).float()
    else:
        crops = torch.stack([frame[:, t : t + size, l : l + size] for t, l in corners]).detach().cpu().float()
        crops = crops.permute(0, 2, 3, 1)
    return crops @ LUMA  # (5, P, P)


def _vertex(left: torch.Tensor, mid: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Where a parabola through three equally spaced values peaks, relative to the middle one."""
    curve = left - 2 * mid + right
    return torch.where(curve < 0, ((left - right) / (2 * curve).clamp(max=-1e-12)).clamp(-0.5, 0.5), 0.0)


def translations(reference: torch.Tensor, spectrum: torch.Tensor, size: int) -> list[tuple[float, float] | None]:
    """Two frames' windowed patch spectra -> for each patch (dy, dx): what the reference showed at
    (y + dy, x + dx) the other shows at (y, x); None where it has no clear peak."""
    cross = reference * spectrum.conj()
    surfaces = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-12), s=(size, size))  # (5, P, P): peaks at the shift
    peaks = surfaces.flatten(1).argmax(1)
    py, px, n = peaks // size, peaks % size, torch.arange(len(peaks))
    at = lambda dy, dx: surfaces[n, (py + dy) % size, (px + dx) % size]  # noqa: E731 - each patch's value
    # Sub-pixel: a parabola through the peak and its neighbours along each axis.
    dy = py + _vertex(at(-1, 0), at(0, 0), at(1, 0))
    dx = px + _vertex(at(0, -1), at(0, 0), at(0, 1))
    dy, dx = torch.where(dy > size / 2, dy - size, dy), torch.where(dx > size / 2, dx - size, dx)
    return [(y, x) if strong else None for y, x, strong in zip(dy.tolist(), dx.tolist(), (at(0, 0) >= MIN_PEAK).tolist())]


def _vote(motions: list[tuple[float, float] | None]) -> tuple[float, float] | None:
    """The mean of the largest group of patches that agree, if it is a majority of the five."""
    found = [m for m in motions if m is not None]
    groups = [[n for n in found if abs(n[0] - m[0]) <= AGREE and abs(n[1] - m[1]) <= AGREE] for m in found]
    best = max(groups, key=len, default=[])
    if 2 * len(best) <= len(motions):
        return None
    return sum(m[0] for m in best) / len(best), sum(m[1] for m in best) / len(best)


class GridLock:
    """`lock(frame)` for each frame of a stream in order -> the scene's motion since the first
    frame, (y, x) in the frame's pixels, for `Stylizer.stylize_tensor(..., motion=)`. Each frame
    is measured against a reference frame rather than the previous one, so that the error of
    each measure (a fraction of a pixel) does not add up over a slow pan."""

    def __init__(self) -> None:
        self.y = self.x = 0.0
        self._window: torch.Tensor | None = None
        self._reference: tuple[torch.Tensor, float, float] | None = None  # spectra, and the motion there

    def __call__(self, frame: torch.Tensor | np.ndarray) -> tuple[float, float]:
        patches = _patches(frame)
        size = patches.shape[-1]
        if self._window is None or self._window.shape[-1] != size:
            self._window = torch.outer(*[torch.hann_window(size, periodic=False)] * 2)
            self._reference = None
        spectrum = torch.fft.rfft2((patches - patches.mean((1, 2), keepdim=True)) * self._window)
        moved = None if self._reference is None else _vote(translations(self._reference[0], spectrum, size))
        if moved is None:  # the first frame, a cut, no majority: the grid stays where it is
            self._reference = spectrum, self.y, self.x
            return self.y, self.x
        _, y0, x0 = self._reference
        self.y, self.x = y0 + moved[0], x0 + moved[1]
        # Renewed once the scene has moved an eighth of a patch from it, or when it has not moved
        # (then what crosses a still camera is measured against the frame before, not an older one).
        if not STILL < max(abs(moved[0]), abs(moved[1])) <= size / 8:
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
