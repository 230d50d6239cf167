"""Flicker from a camera's sensor noise, and what `--denoise` (fast_style.denoise) takes away
(docs/video.md, Sensor noise).

Each clip is made from a content photo as in fast_style/flicker.py (a still camera, a pan of 2, 3
pixels a frame, a zoom of x1.02) in 8-bit steps, and every frame gets its own Gaussian noise of
`sigma` 8-bit steps, rounded to 8 bits, as a webcam's frames have before any codec; with
`--jpeg Q` each noisy frame is then saved as its own JPEG of quality Q, as the page's webcam sent
them until session 43 (the browser's quality 0.8). Per model, with the grid lock, the flicker
(mean |S(t+1) - warp(S(t))|) and the mean distance from the pictures of the same clip without
noise (and without JPEG). Run by hand:

    uv run python benchmarks/sensor_noise.py --model starry_night_realtime8 --photo ../shared/data/content/*.jpg
"""

import argparse
import io

import torch
from PIL import Image

from fast_style import Stylizer
from fast_style.denoise import Denoise
from fast_style.flicker import Clip, pan_clip, zoom_clip
from fast_style.images import open_rgb
from fast_style.motion import GridLock
from fast_style.pixels import to_pil, to_tensor


def still_clip(photo: torch.Tensor, frames: int, size: tuple[int, int]) -> Clip:
    clip = photo[None, :, : size[0], : size[1]].expand(frames, -1, -1, -1)
    return Clip(clip, lambda out: (out[1:], out[:-1]), "still")


def with_noise(frames: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    noisy = frames + sigma / 255 * torch.randn(frames.shape, generator=generator)
    return ((noisy * 255).round() / 255).clamp(0, 1)


def through_jpeg(frames: torch.Tensor, quality: int) -> torch.Tensor:
    """Each frame saved as its own JPEG and read back, as the page's webcam frames arrive."""
    out = []
    for frame in frames:
        buffer = io.BytesIO()
        to_pil(frame).save(buffer, "JPEG", quality=quality)
        out.append(to_tensor(Image.open(buffer).convert("RGB")))
    return torch.stack(out)


def denoised(frames: torch.Tensor) -> torch.Tensor:
    """The frames through `fast_style.denoise.Denoise`, as a stream's go (`--denoise`)."""
    lock, denoise, out = GridLock(), Denoise(), []
    for frame in frames:
        array = frame.mul(255).round().byte().permute(1, 2, 0).numpy()
        out.append(torch.from_numpy(denoise(array, lock(array))).permute(2, 0, 1).float() / 255)
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
    p.add_argument("--jpeg", type=int, default=None, metavar="Q", help="each noisy frame through a JPEG of quality Q (the page: 80)")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    photos = [to_tensor(open_rgb(photo)) for photo in args.photo]
    size = (256, 256)
    clips = {"still": [still_clip(ph, args.frames, size) for ph in photos],
             "pan": [pan_clip(ph, args.frames, size) for ph in photos],
             "zoom": [zoom_clip(ph, args.frames, size) for ph in photos]}
    clips = {m: [Clip((c.frames * 255).round() / 255, c.align, c.motion) for c in cs] for m, cs in clips.items()}
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
                        frames = through_jpeg(frames, args.jpeg) if args.jpeg else frames
                        frames = denoised(frames) if filtered else frames
                        out = run(stylizer, frames)
                        later, earlier = clip.align(out)
                        fl.append((later - earlier).abs().mean().item())
                        dist.append((out - reference).abs().mean().item())
                    cells.append(f"{sum(fl) / len(fl):.4f} / {sum(dist) / len(dist):.4f}")
                print(f"{name:28s} {sigma:5.1f} {'on' if filtered else 'off':>6s} " + " ".join(f"{c:>15s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
