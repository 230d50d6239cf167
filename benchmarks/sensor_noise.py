"""Flicker from a camera's sensor noise, and what a motion-following temporal filter of the
input would take away: an experiment for live sources, not yet in `stylize` (docs/video.md).

Each clip is made from a content photo as in fast_style/flicker.py (a still camera, a pan of 2, 3
pixels a frame, a zoom of x1.02), and every frame gets its own Gaussian noise of `sigma` 8-bit
steps, rounded to 8 bits, as a webcam's frames have before any codec. Per model, with the grid
lock, the flicker (mean |S(t+1) - warp(S(t))|) and the mean distance from the pictures of the
same clip without noise. Run by hand:

    uv run python benchmarks/sensor_noise.py --model starry_night_realtime8 --photo ../shared/data/content/*.jpg
"""

import argparse

import torch
import torch.nn.functional as F

from fast_style import Stylizer
from fast_style.flicker import Clip, pan_clip, zoom_clip
from fast_style.images import open_rgb
from fast_style.motion import GridLock, Motion
from fast_style.pixels import to_tensor


def still_clip(photo: torch.Tensor, frames: int, size: tuple[int, int]) -> Clip:
    clip = photo[None, :, : size[0], : size[1]].expand(frames, -1, -1, -1)
    return Clip(clip, lambda out: (out[1:], out[:-1]), "still")


def with_noise(frames: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    noisy = frames + sigma / 255 * torch.randn(frames.shape, generator=generator)
    return ((noisy * 255).round() / 255).clamp(0, 1)


def follow(state: torch.Tensor, before: Motion, now: Motion) -> tuple[torch.Tensor, torch.Tensor]:
    """The filter's state moved into this frame's geometry, and where it has none (what came into
    view). Pixel p shows scene point c + (p - c) / scale + (y, x) (fast_style.motion.Motion)."""
    h, w = state.shape[-2:]
    if now.scale == before.scale == 1:  # a pan: whole pixels, exact
        dy, dx = round(now.y - before.y), round(now.x - before.x)
        grid_y = torch.arange(h)[:, None] + dy + torch.zeros(1, w)
        grid_x = torch.arange(w)[None, :] + dx + torch.zeros(h, 1)
        moved = torch.roll(state, (-dy, -dx), (1, 2))
    else:
        def axis(n: int, shift: float) -> torch.Tensor:
            c = (n - 1) / 2
            return c + ((torch.arange(n) - c) / now.scale + shift) * before.scale
        grid_y = axis(h, now.y - before.y)[:, None].expand(h, w)
        grid_x = axis(w, now.x - before.x)[None, :].expand(h, w)
        grid = torch.stack([grid_x * 2 / (w - 1) - 1, grid_y * 2 / (h - 1) - 1], -1)[None]
        moved = F.grid_sample(state[None], grid, align_corners=True, padding_mode="border")[0]
    seen = (grid_y >= 0) & (grid_y <= h - 1) & (grid_x >= 0) & (grid_x <= w - 1)
    return moved, ~seen[None]


def temporal_filter(frames: torch.Tensor, tau: float = 8 / 255, k_min: float = 0.25) -> torch.Tensor:
    """A recursive filter, m += k (x - m), that follows the scene: its state is moved by the grid
    lock's measured motion before each frame, and k grows from k_min to 1 with the local change of
    luma (3x3 mean of |x - m| over tau), so edges that move otherwise pass through."""
    lock, out = GridLock(), []
    state, before = frames[0], lock(frames[0])
    out.append(state)
    for x in frames[1:]:
        now = lock(x)
        moved, fresh = follow(state, before, now)
        before = now
        moved = torch.where(fresh, x, moved)
        change = x - moved
        luma = (0.299 * change[0] + 0.587 * change[1] + 0.114 * change[2]).abs()[None, None]
        k = (F.avg_pool2d(luma, 3, 1, 1, count_include_pad=False)[0] / tau).clamp(k_min, 1)
        state = moved + k * change
        out.append(state)
    return torch.stack(out)


def run(stylizer: Stylizer, frames: torch.Tensor) -> torch.Tensor:
    lock = GridLock()
    return torch.cat([stylizer.stylize_tensor(f[None], motion=[lock(f)]) for f in frames])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--photo", nargs="+", required=True)
    p.add_argument("--sigma", type=float, nargs="+", default=[0.0, 1.0, 2.0], help="noise, in 8-bit steps")
    p.add_argument("--frames", type=int, default=12)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    photos = [to_tensor(open_rgb(photo)) for photo in args.photo]
    size = (256, 256)
    clips = {"still": [still_clip(ph, args.frames, size) for ph in photos],
             "pan": [pan_clip(ph, args.frames, size) for ph in photos],
             "zoom": [zoom_clip(ph, args.frames, size) for ph in photos]}
    print("flicker / distance from the pictures of the clip without noise, in [0, 1] units, grid lock on")
    print(f"{'model':28s} {'sigma':>5s} {'filter':>6s} " + " ".join(f"{m:>15s}" for m in clips))
    for name in args.model:
        stylizer = Stylizer.load(name, device="cpu", precision="fp32")
        clean = {m: [run(stylizer, c.frames) for c in cs] for m, cs in clips.items()}
        for sigma in args.sigma:
            for filtered in (False, True):
                cells = []
                for m, cs in clips.items():
                    g = torch.Generator().manual_seed(0)
                    fl, dist = [], []
                    for clip, reference in zip(cs, clean[m]):
                        frames = with_noise(clip.frames, sigma, g) if sigma else clip.frames
                        frames = temporal_filter(frames) if filtered else frames
                        out = run(stylizer, frames)
                        later, earlier = clip.align(out)
                        fl.append((later - earlier).abs().mean().item())
                        dist.append((out - reference).abs().mean().item())
                    cells.append(f"{sum(fl) / len(fl):.4f} / {sum(dist) / len(dist):.4f}")
                print(f"{name:28s} {sigma:5.1f} {'on' if filtered else 'off':>6s} " + " ".join(f"{c:>15s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
