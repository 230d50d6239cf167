"""Flicker of a model on a clip panning across a real photo (fast_style/flicker.py says how).
Run by hand: `uv run python benchmarks/flicker.py --model checkpoints/starry_night.safetensors
--photo ../shared/data/content/chicago.jpg`."""

import argparse

from fast_style import Stylizer
from fast_style.flicker import flicker, pan_clip
from fast_style.images import open_rgb, to_tensor


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--photo", required=True)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    args = p.parse_args()
    clip = pan_clip(to_tensor(open_rgb(args.photo)), args.frames, tuple(args.size))
    print(f"{args.frames} frames of {args.size[0]}x{args.size[1]} panning (2, 3) px a frame across {args.photo}")
    print(f"{'photo itself':40s} {flicker(lambda x: x, clip):.4f}")
    for path in args.model:
        print(f"{path:40s} {flicker(Stylizer.load(path).stylize_tensor, clip):.4f}")


if __name__ == "__main__":
    main()
