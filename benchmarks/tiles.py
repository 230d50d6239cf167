"""How far tiled pictures are from a single pass at full size, above the one-pass threshold: the
rows of docs/design.md#tiles. Run by hand (not a test; a 12-megapixel single pass of the full
network takes some 8 GB and 40 s on 2 cores in fp32):

    uv run python benchmarks/tiles.py starry_night:4032x3024:data/examples/chicago.jpg \
        the_scream:4032x3024:../shared/data/train

Each case is NETWORK:WxH:PHOTO (a shipped style or a model file): a photo resized to WxH, or a
folder, whose photos make a WxH mosaic at their own detail (rows 512 px high, none scaled up).
Rows: the statistics estimated (carried on from copies at one pass and half that, what `stylize`
did before session 44 and does above tiling.BODY_BYTES) and gathered exactly through the tiles,
each with its mean distance from the single pass per pixel and on 32x32 averages (the tone), its
mean colour and its time (the faster of two). `--way lean` adds the exact way with the residual
blocks' second convs run twice (what it does above tiling.KEEP_BYTES) at any size, `--way alone`
with their first convs three times too, holding the blocks' tensor alone (above
tiling.LEAN_BYTES), `--way half` so in float16 between float convs (what fp32 does above
tiling.BODY_BYTES). One `--way` alone, under `/usr/bin/time -v`, gives a way's peak memory."""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from fast_style import tiling
from fast_style.engine import Engine
from fast_style.images import IMAGE_EXTENSIONS, open_rgb
from fast_style.pixels import to_tensor
from fast_style.stylizer import Stylizer

# tiling.BODY_BYTES, LEAN_BYTES and KEEP_BYTES for each: "lean" runs the residual blocks' second
# convs twice at every size, as the exact way does above KEEP_BYTES; "alone" their first convs three
# times too, as above LEAN_BYTES; "half" holds that tensor in float16, as fp32 does above BODY_BYTES
# (its BODY_BYTES, just below the case's fp32 tensor, is set per case).
B, L, K = tiling.BODY_BYTES, tiling.LEAN_BYTES, tiling.KEEP_BYTES
WAYS = {"estimated": (0, 0, 0), "exact": (B, L, K), "lean": (B, B, 0), "alone": (B, 0, 0), "half": (0, 0, 0)}


def mosaic(folder: Path, w: int, h: int) -> Image.Image:
    """Rows of the folder's photos (sorted), each 512 px high (photos below that left out)."""
    canvas, x, y = Image.new("RGB", (w, h)), 0, 0
    photos = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    for path in photos * (1 + w * h // (512 * 512 * len(photos))):
        photo = open_rgb(path)
        if photo.height < 512:
            continue
        photo = photo.resize((round(photo.width * 512 / photo.height), 512), Image.LANCZOS)
        canvas.paste(photo, (x, y))
        x += photo.width
        if x >= w:
            x, y = 0, y + 512
            if y >= h:
                return canvas
    raise SystemExit(f"{folder}: too few photos 512 px high for {w}x{h}")


def colour(y: torch.Tensor) -> str:
    return "/".join(f"{v:.0f}" for v in y.mean(dim=(2, 3)).mul(255).squeeze().tolist())


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cases", nargs="+", metavar="NETWORK:WxH:PHOTO")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--way", choices=list(WAYS), action="append", help="only these (default: estimated and exact)")
    args = p.parse_args()
    ways = args.way or ["estimated", "exact"]
    print(f"mean |tiled - single| in 1/255 per pixel and on 32x32 averages; mean colour R/G/B; {args.precision}")
    for case in args.cases:
        name, size, photo = case.split(":", 2)
        w, h = (int(v) for v in size.split("x"))
        net = Stylizer.load(name, device="cpu", precision="fp32").engine.net
        picture = mosaic(Path(photo), w, h) if Path(photo).is_dir() else open_rgb(photo)
        x = F.interpolate(to_tensor(picture)[None], size=(h, w), mode="bicubic", antialias=True).clamp(0, 1)
        single = None
        if args.way is None:
            single = Engine(net, "cpu", precision=args.precision, max_pass_pixels=h * w)(x)
            print(f"{name} {photo} {w}x{h} ({w * h / 1e6:.1f} MP), single pass {colour(single)}")
        pictures: dict[str, torch.Tensor] = {}
        seconds: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(2):  # alternating, the faster of two: the first calls pay for fresh memory
            for way in ways:
                tiling.BODY_BYTES, tiling.LEAN_BYTES, tiling.KEEP_BYTES = WAYS[way]
                if way == "half":
                    tiling.BODY_BYTES = min(B, tiling._body_bytes(net, x) - 1)
                start = time.perf_counter()
                # The full network's limit for every network, so that the rows compare (the
                # realtime ones take 8 times that in one pass).
                pictures[way] = Engine(net, "cpu", precision=args.precision, max_pass_pixels=2048 * 2048)(x)
                seconds[way].append(time.perf_counter() - start)
        for way, y in pictures.items():
            line = f"  {way:>9s}: {colour(y):>11s}  {min(seconds[way]):5.1f} s"
            if single is not None:
                error = (y - single).abs().mean().item() * 255
                tone = (F.avg_pool2d(y, 32) - F.avg_pool2d(single, 32)).abs().mean().item() * 255
                line += f"  {error:7.3f} / {tone:6.3f}"
            print(line)


if __name__ == "__main__":
    main()
