"""Flicker of models on clips that pan and zoom across real photos (fast_style/flicker.py says how),
beside the floor of the measure itself (an identity "network"). Run by hand:
`uv run python benchmarks/flicker.py --model checkpoints/starry_night.safetensors --photo ../shared/data/content/*.jpg`."""

import argparse
from functools import partial

from fast_style import Stylizer
from fast_style.flicker import flicker, pan_clip, zoom_clip
from fast_style.images import open_rgb
from fast_style.motion import GridLock
from fast_style.pixels import to_tensor


def steady(stylizer: Stylizer):
    """A stylize function for one clip, its frames in order, the grid following their motion."""
    lock = GridLock()
    return lambda batch: stylizer.stylize_tensor(batch, motion=[lock(frame) for frame in batch])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--photo", nargs="+", required=True)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    p.add_argument("--precision", nargs="+", default=["fp32"], help="a row per model and precision (default fp32)")
    p.add_argument("--style", nargs="+", help="a gallery model's styles: a row for each (default: its first)")
    p.add_argument("--pan", nargs="+", default=["2,3"], metavar="DY,DX",
                   help="pixels a frame of each pan clip (a column each): a network that downsamples by N "
                        "flickers on moves that are not multiples of N where its strided convs alias")
    p.add_argument("--grid-lock", action="store_true",
                   help="a second row per model with the grid following the measured motion, as videos run "
                        "(fast_style.motion; the motion is estimated from the frames, not given)")
    args = p.parse_args()
    photos = [to_tensor(open_rgb(photo)) for photo in args.photo]
    size = tuple(args.size)
    pans = [tuple(int(v) for v in step.split(",")) for step in args.pan]
    clips = {
        **{"pan" if step == (2, 3) else f"pan{step[0]},{step[1]}": [pan_clip(photo, args.frames, size, step)
                                                                   for photo in photos] for step in pans},
        "zoom": [zoom_clip(photo, args.frames, size) for photo in photos],
    }
    print(f"{args.frames} frames of {size[0]}x{size[1]} from each of {len(photos)} photos; mean |S(t+1) - warp(S(t))|:")
    for motion, motion_clips in clips.items():
        print(f"  {motion}: {motion_clips[0].motion}")
    print(f"{'model':55s} " + " ".join(f"{m:>7s}" for m in clips))
    # Each row makes its stylize function anew for each clip: a locked grid keeps a clip's motion.
    rows = [("identity (the measure's own floor)", lambda: lambda x: x)]
    for path in args.model:
        for precision in args.precision:
            stylizer = Stylizer.load(path, precision=precision)
            for style in (args.style or [None]) if len(stylizer.styles) > 1 else [None]:
                stylizer = Stylizer.load(path, precision=precision, style=style)
                rows.append((f"{path} {style or ''} {precision}", lambda s=stylizer: s.stylize_tensor))
                if args.grid_lock:
                    rows.append((f"{path} {style or ''} {precision} grid lock", partial(steady, stylizer)))
    for name, make in rows:
        means = [sum(flicker(make(), clip) for clip in motion_clips) / len(motion_clips) for motion_clips in clips.values()]
        print(f"{name:55s} " + " ".join(f"{m:7.4f}" for m in means))


if __name__ == "__main__":
    main()
