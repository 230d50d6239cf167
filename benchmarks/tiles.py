"""How far tiled pictures are from a single pass at full size, far above the one-pass threshold:
the rows of docs/design.md#tiles. Run by hand (not a test; a 12-megapixel single pass of the full
network takes some 8 GB and a minute on 2 cores):

    uv run python benchmarks/tiles.py starry_night:4032x3024:data/examples/chicago.jpg \
        the_scream:4032x3024:../shared/data/content/golden_gate.jpg

Each case is NETWORK:WxH:PHOTO (a shipped style or a model file), the photo resized to WxH. Rows:
the statistics of the one-pass copy alone (before session 41), the statistics carried on to the
photo's size (`tiling.reference_statistics`, what `stylize` does), each with its mean distance
from the single pass, its mean colour and its time (the faster of two); fp32 on the CPU."""

import argparse
import time

import torch
import torch.nn.functional as F

from fast_style import tiling
from fast_style.engine import MAX_PASS_PIXELS, Engine
from fast_style.images import open_rgb
from fast_style.pixels import to_tensor
from fast_style.stylizer import Stylizer


def copy_alone(net: torch.nn.Module, x: torch.Tensor, max_pixels: int) -> tiling.NormStats:
    return tiling.norm_statistics(net, tiling.reference_image(x, max_pixels))


WAYS = {"the copy alone": copy_alone, "carried on": tiling.reference_statistics}


def colour(y: torch.Tensor) -> str:
    return "/".join(f"{v:.0f}" for v in y.mean(dim=(2, 3)).mul(255).squeeze().tolist())


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cases", nargs="+", metavar="NETWORK:WxH:PHOTO")
    args = p.parse_args()
    print(f"one pass: {MAX_PASS_PIXELS / 1e6:.1f} megapixels; mean |tiled - single| in 1/255, mean colour R/G/B")
    for case in args.cases:
        name, size, photo = case.split(":", 2)
        w, h = (int(v) for v in size.split("x"))
        net = Stylizer.load(name, device="cpu", precision="fp32").engine.net
        x = F.interpolate(to_tensor(open_rgb(photo))[None], size=(h, w), mode="bicubic", antialias=True).clamp(0, 1)
        single = Engine(net, "cpu", precision="fp32", max_pass_pixels=h * w)(x)
        pictures: dict[str, torch.Tensor] = {}
        seconds: dict[str, list[float]] = {label: [] for label in WAYS}
        for _ in range(2):  # alternating, the faster of two: the first calls pay for fresh memory
            for label, statistics in WAYS.items():
                tiling.reference_statistics = statistics  # what stylize_tiled takes, through stylize's path
                start = time.perf_counter()
                pictures[label] = Engine(net, "cpu", precision="fp32")(x)
                seconds[label].append(time.perf_counter() - start)
        print(f"{name} {photo} {w}x{h} ({w * h / 1e6:.1f} MP), single pass {colour(single)}")
        for label, y in pictures.items():
            error = (y - single).abs().mean().item() * 255
            print(f"  {label:>14s}: {error:6.2f}/255  {colour(y):>11s}  {min(seconds[label]):5.1f} s")


if __name__ == "__main__":
    main()
