"""Flicker of models on clips panning across real photos (fast_style/flicker.py says how).
Run by hand: `uv run python benchmarks/flicker.py --model checkpoints/starry_night.safetensors
--photo ../shared/data/content/*.jpg`."""

import argparse

from fast_style import Stylizer
from fast_style.flicker import flicker, pan_clip
from fast_style.images import open_rgb, to_tensor


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--photo", nargs="+", required=True)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    args = p.parse_args()
    clips = [pan_clip(to_tensor(open_rgb(photo)), args.frames, tuple(args.size)) for photo in args.photo]
    print(f"{args.frames} frames of {args.size[0]}x{args.size[1]} panning (2, 3) px a frame across each of {len(clips)} photos")
    print(f"{'model':50s} " + " ".join(f"{i:>7d}" for i in range(len(clips))) + "    mean")
    for path in args.model:
        stylizer = Stylizer.load(path, precision="fp32")
        values = [flicker(stylizer.stylize_tensor, clip) for clip in clips]
        print(f"{path:50s} " + " ".join(f"{v:7.4f}" for v in values) + f" {sum(values) / len(values):7.4f}")


if __name__ == "__main__":
    main()
