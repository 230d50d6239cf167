"""A network that downsamples by N paints its strokes on an N-pixel grid fixed to the frame. When
the camera pans by a distance that is not a multiple of N, the scene lands on another phase of
that grid and the strokes jump: the flicker of small, fast networks is mostly this aliasing
(docs/realtime.md). Moving the grid with the scene removes it: estimate each frame's global
translation (phase correlation, Kuglin & Hines 1975), keep the sum, and pad the frame so the
scene keeps one phase of the grid. The pad is N pixels in all (offset before, the rest after),
so every frame has one shape and compiled and int8 networks are made once.

A zoom moves each part of the frame by its own amount, so no pad follows it. Where the five
squares' motions fit a zoom about the centre, the frame is resampled into the scene's geometry
(so the scene again keeps one phase of the grid), stylized there and resampled back: the strokes
grow with the zoom, and once they are `MAX_SCALE` times their size, or the camera zooms out past
their size, the grid starts afresh in the frame's geometry (docs/video.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

MIN_PEAK = 0.05  # a correlation peak below this is no translation (a cut, a zoom, noise)
AGREE = 1.0  # squares whose motions a pan fits to this many pixels vote together (a zoom: half)
STILL = 0.25  # a motion of at most this many pixels renews the reference frame, as a large one does
LUMA = torch.tensor([0.299, 0.587, 0.114])  # Rec. 601 weights of R, G, B
MIN_ZOOM = 0.5  # a zoom that moves the corner squares by less than this many pixels is read as none
MAX_SCALE = 1.2  # strokes grow with a zoom up to this factor, then the grid starts afresh
RENEW_ZOOM = 0.03  # the reference frame is renewed once the scene is this much larger or smaller


class Motion(NamedTuple):
    """Where a frame's pixel p lies in the scene: centre + (p - centre) / scale + (y, x), in the
    frame's pixels, the centre the frame's. A pan has scale 1 and moves (y, x)."""

    y: float
    x: float
    scale: float = 1.0

    def resized(self, sy: float, sx: float) -> Motion:
        """The same motion for the frame resized by (sy, sx): a zoom about the centre keeps its scale."""
        return Motion(self.y * sy, self.x * sx, self.scale)


def _patches(frame: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, H, W) float [0, 1] or (H, W, 3) uint8 -> (5, P, P): the luma of the frame's middle and of
    four squares towards its corners, P the largest power of two in half its shorter side (32-256),
    and (5, 2): their centres' (y, x) from the frame's centre. A camera that pans moves all five
    the same way, a zoom moves them apart; a still camera keeps its corners still whatever crosses
    the middle, and the vote in `GridLock` follows the majority."""
    h, w = frame.shape[:2] if isinstance(frame, np.ndarray) else frame.shape[-2:]
    size = min(256, max(32, 1 << (min(h, w) // 2).bit_length() - 1), h, w)
    tops = [(h - size) // 2, max(0, h // 4 - size // 2), max(0, 3 * h // 4 - size // 2)]
    lefts = [(w - size) // 2, max(0, w // 4 - size // 2), max(0, 3 * w // 4 - size // 2)]
    corners = [(tops[0], lefts[0])] + [(min(t, h - size), min(l, w - size)) for t in tops[1:] for l in lefts[1:]]
    centres = torch.tensor([(t + (size - 1) / 2 - (h - 1) / 2, l + (size - 1) / 2 - (w - 1) / 2) for t, l in corners])
    if isinstance(frame, np.ndarray):  # (5, P, P, 3): copies of the squares only
        crops = torch.from_numpy(np.stack([frame[t : t + size, l : l + size] for t, l in corners])).float()
    else:
        crops = torch.stack([frame[:, t : t + size, l : l + size] for t, l in corners]).detach().cpu().float()
        crops = crops.permute(0, 2, 3, 1)
    return crops @ LUMA, centres  # (5, P, P), (5, 2)


def _luma(frame: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The whole frame's luma, (H, W), in the units `_patches` gives."""
    rgb = torch.from_numpy(frame).float() if isinstance(frame, np.ndarray) else frame.detach().cpu().float().permute(1, 2, 0)
    return rgb @ LUMA


def _magnified(luma: torch.Tensor, centres: torch.Tensor, size: int, magnify: float) -> torch.Tensor:
    """`_patches`' squares of the frame magnified by `magnify` about its centre: a zoomed frame's
    squares at the reference's size, whose motion is then the pan alone."""
    h, w = luma.shape
    square = torch.arange(size) - (size - 1) / 2
    ys = (centres[:, 0, None] + square) / magnify * 2 / (h - 1)  # (5, P): where each row samples
    xs = (centres[:, 1, None] + square) / magnify * 2 / (w - 1)
    grid = torch.stack([xs[:, None, :].expand(-1, size, -1), ys[:, :, None].expand(-1, -1, size)], dim=-1)
    return F.grid_sample(luma.expand(5, 1, h, w), grid, align_corners=True, padding_mode="border")[:, 0]


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


def _fit(group: Sequence[tuple[tuple[float, float], list[float]]],
         zoom: bool) -> tuple[float, tuple[float, float, float]] | None:
    """Squares' (dy, dx) and centres -> the worst misfit and (uy, ux, m) such that every square
    moved by (uy, ux) + m * its centre to within `AGREE` pixels: a pan, or with `zoom` a pan and a
    zoom about the frame's centre (1 + m = the reference's size over this frame's). A zoom has one
    more unknown, so it must fit to half of `AGREE`, and move the corners by `MIN_ZOOM` pixels or
    more. None if not."""
    d = torch.tensor([m for m, _ in group], dtype=torch.float64)  # (n, 2)
    c = torch.tensor([c for _, c in group], dtype=torch.float64)  # (n, 2)
    c0, d0 = c - c.mean(0), d - d.mean(0)
    m = float((c0 * d0).sum() / (c0 * c0).sum().clamp_min(1e-12)) if zoom else 0.0
    if zoom and abs(m) * float(c.norm(dim=1).max()) < MIN_ZOOM:
        return None  # too small a zoom to tell from a pan
    u = d.mean(0) - m * c.mean(0)
    worst = float((d - u - m * c).abs().max())
    return (worst, (float(u[0]), float(u[1]), m)) if worst <= AGREE / (2 if zoom else 1) else None


def _motion(motions: list[tuple[float, float] | None], centres: torch.Tensor) -> tuple[float, float, float] | None:
    """The motion that the most squares agree on, a majority: a pan, or a zoom if four or more
    squares fit one better than a pan (see `_fit`)."""
    found = [(m, c) for m, c in zip(motions, centres.tolist()) if m is not None]
    for count in range(len(found), len(motions) // 2, -1):
        for zoom in (False, True) if count >= 4 else (False,):
            fits = [fit for group in combinations(found, count) if (fit := _fit(group, zoom)) is not None]
            if fits:
                return min(fits)[1]
    return None


def _unrelated(motions: list[tuple[float, float] | None]) -> bool:
    """No two squares agree on a motion: a cut, not something crossing part of the picture (on
    unrelated pictures small squares still find correlation peaks, at random places)."""
    found = [m for m in motions if m is not None]
    return not any(abs(a[0] - b[0]) <= AGREE and abs(a[1] - b[1]) <= AGREE for a, b in combinations(found, 2))


def _rescaled(motion: Motion, k: float) -> Motion:
    """The motion in the scene's geometry magnified by k about the centre."""
    return Motion(motion.y * k, motion.x * k, motion.scale / k)


class GridLock:
    """`lock(frame)` for each frame of a stream in order -> the frame's `Motion` in the scene, for
    `Stylizer.stylize_tensor(..., motion=)`. Each frame is measured against a reference frame
    rather than the previous one, so that the error of each measure (a fraction of a pixel) does
    not add up over a slow pan."""

    def __init__(self) -> None:
        self.motion = Motion(0.0, 0.0)
        self._window: torch.Tensor | None = None
        self._reference: tuple[torch.Tensor, Motion] | None = None  # spectra, and the motion there
        self._rate = 1.0  # the last frame's zoom: this frame's scale over the one before

    def _spectrum(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2((patches - patches.mean((1, 2), keepdim=True)) * self._window)

    def __call__(self, frame: torch.Tensor | np.ndarray) -> Motion:
        patches, centres = _patches(frame)
        size = patches.shape[-1]
        if self._window is None or self._window.shape[-1] != size:
            self._window = torch.outer(*[torch.hann_window(size, periodic=False)] * 2)
            self._reference = None
        spectrum = self._spectrum(patches)
        found, moved = None, None
        if self._reference is not None:
            spectra, ref = self._reference
            # A zoom in progress is expected to go on at its rate: the frame is brought back to
            # the reference's size by that much before it is measured (phase correlation reads a
            # few percent of zoom badly), then by what it measured, for the pan alone (the squares'
            # motions are where their texture is, not their centres).
            luma: list[torch.Tensor] = []  # the frame's, made once and only for a zoom

            def at(magnify: float) -> torch.Tensor:  # the frame's squares' spectra at that magnification
                if magnify == 1:
                    return spectrum
                luma[:] = luma or [_luma(frame)]
                return self._spectrum(_magnified(luma[0], centres, size, magnify))

            guess = ref.scale / (self.motion.scale * self._rate)
            for magnify in dict.fromkeys([guess, 1.0]):
                found = translations(spectra, at(magnify), size)
                moved = _motion(found, centres)
                if moved and moved[2] != 0:
                    magnify *= 1 + moved[2]
                    moved = _motion(translations(spectra, at(magnify), size), centres) or moved
                if moved:
                    moved = moved[0], moved[1], magnify * (1 + moved[2]) - 1
                    break
        if not moved:  # the first frame, a cut, no majority: the grid stays where it is
            if found and _unrelated(found):  # a cut: the next shot starts at the frame's size
                self.motion = Motion(self.motion.y, self.motion.x)
            self._reference, self._rate = (spectrum, self.motion), 1.0
            return self.motion
        uy, ux, m = moved
        # This frame's p is the reference's c + (p - c)(1 + m) + u, which is the scene's
        # c + (that - c) / ref.scale + (ref.y, ref.x).
        motion = Motion(ref.y + uy / ref.scale, ref.x + ux / ref.scale, ref.scale / (1 + m))
        self._rate = motion.scale / self.motion.scale
        if not 1 <= motion.scale <= MAX_SCALE:  # the grid starts afresh: the scene's geometry scaled by k
            k = motion.scale / (MAX_SCALE if motion.scale < 1 else 1)
            motion, ref = _rescaled(motion, k), _rescaled(ref, k)
            self._reference = spectra, ref
        self.motion = motion
        # Renewed once a square has moved an eighth of its size or the scene's size has changed by
        # `RENEW_ZOOM`, or when nothing moved (then what crosses a still camera is measured against
        # the frame before).
        moved_far = max(abs(uy), abs(ux)) + abs(m) * float(centres.abs().max()) > size / 8
        if moved_far or abs(m) > RENEW_ZOOM or (m == 0 and max(abs(uy), abs(ux)) <= STILL):
            self._reference = spectrum, motion
        return self.motion


def _zoom_grids(h: int, w: int, motion: Motion, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grids (align_corners=True, (x, y) last) for a zoomed frame: (1, H + multiple, W +
    multiple, 2) that resamples it into the scene's geometry, its scene on one phase of the grid,
    and (1, H, W, 2) that takes the result back."""
    def axis(n: int, offset: float, canvas: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = (n - 1) / 2  # canvas index i shows the frame's c + (i - offset - c) * scale
        return (c + (canvas - offset - c) * motion.scale) * 2 / (n - 1) - 1, \
               (c + (frame - c) / motion.scale + offset) * 2 / (n + multiple - 1) - 1
    ys = axis(h, motion.y % multiple, torch.arange(h + multiple), torch.arange(h))
    xs = axis(w, motion.x % multiple, torch.arange(w + multiple), torch.arange(w))
    grid = lambda x, y: torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)[None]  # noqa: E731
    return grid(xs[0], ys[0]), grid(xs[1], ys[1])


def locked(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
           motion: Sequence[Motion | tuple[float, float]], multiple: int) -> torch.Tensor:
    """(B, 3, H, W) -> run over each frame placed so that its scene keeps one phase of the
    network's `multiple`-pixel grid, and back to (B, 3, H, W): after a pan padded by its motion
    modulo `multiple` and cropped, after a zoom resampled into the scene's geometry and back. The
    network always sees (B, 3, H + multiple, W + multiple). `motion`: one a frame, in x's pixels."""
    h, w = x.shape[-2:]
    motion = [Motion(*m) for m in motion]
    if any(m.scale != 1 for m in motion):
        there, back = zip(*[_zoom_grids(h, w, m, multiple) for m in motion])
        canvas = F.grid_sample(x, torch.cat(there).to(x), align_corners=True, padding_mode="border")
        # Bicubic back: bilinear there and back took 27% of the detail, bicubic back 15% (docs/video.md).
        # Other backends than CPU and CUDA (MPS) may lack bicubic sampling: bilinear there.
        y = run(canvas)
        mode = "bicubic" if y.device.type in ("cpu", "cuda") else "bilinear"
        return F.grid_sample(y, torch.cat(back).to(y), mode=mode, align_corners=True,
                             padding_mode="border").clamp_(0, 1)  # bicubic overshoots a little
    offsets = [(round(m.y) % multiple, round(m.x) % multiple) for m in motion]
    if len(set(offsets)) == 1:  # a frame at a time, as streams run on CPUs: no copies but the pad
        (oy, ox), = set(offsets)
        return run(F.pad(x, (ox, multiple - ox, oy, multiple - oy), mode="replicate"))[..., oy : oy + h, ox : ox + w]
    padded = torch.cat([F.pad(xi[None], (ox, multiple - ox, oy, multiple - oy), mode="replicate")
                        for xi, (oy, ox) in zip(x, offsets)])  # (B, 3, H + multiple, W + multiple)
    y = run(padded)
    return torch.cat([yi[None, :, oy : oy + h, ox : ox + w] for yi, (oy, ox) in zip(y, offsets)])
