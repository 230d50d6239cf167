"""How far each fast precision moves the pixels from fp32, on real photos with a trained network:
the source of the tolerances stated under `--precision` in the README. Run by hand (not a test):

    uv run python benchmarks/precision.py --photos ../shared/data/content

Every photo is resized to one frame size (480p by default), as frames of a video are, and goes
through one Stylizer per precision. int8 calibrates its ranges on the first photo only and keeps
them for the others, as it does on the first frame of a video.

Two rows per photo put the distances in scale: fp32 itself, on the frame rounded to 8 bits and on
the frame saved as a JPEG of quality 90. The network's texture in flat areas (skies, upscaled
photos) follows differences below one 8-bit step: at 480p these moved fp32's picture by 1.0-2.6
and 11-18/255, bf16 by 0.75-2.0 (docs/stylize.md, `--precision`)."""

import argparse
import io
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from fast_style.images import find_images, open_rgb
from fast_style.pixels import to_pil, to_tensor
from fast_style.stylizer import Stylizer, default_device


def resaved(x: torch.Tensor) -> torch.Tensor:
    """The frame after a round trip through a JPEG of quality 90: a copy no viewer tells from it."""
    buffer = io.BytesIO()
    to_pil(x[0]).save(buffer, "JPEG", quality=90)
    return to_tensor(Image.open(buffer).convert("RGB"))[None]


INPUT_CHANGES = {"8-bit": lambda x: (x * 255).round() / 255, "jpeg90": resaved}  # the rows of fp32 itself


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=Path("checkpoints/starry_night.safetensors"))
    p.add_argument("--photos", type=Path, required=True)
    p.add_argument("--frame", type=int, nargs=2, default=[480, 854], metavar=("H", "W"))
    p.add_argument("--precisions", nargs="+", help="default: bf16 int8 (CPU); bf16 fp16 (CUDA)")
    args = p.parse_args()
    device = default_device()
    precisions = args.precisions or (["bf16", "fp16"] if device.type == "cuda" else ["bf16", "int8"])
    photos = find_images(args.photos)
    frames = [F.interpolate(to_tensor(open_rgb(f))[None], size=tuple(args.frame), mode="bilinear",
                            antialias=True).clamp(0, 1) for f in photos]
    reference = Stylizer.load(args.model, device=device, precision="fp32")
    expected = [reference.stylize_tensor(x) for x in frames]
    print(f"{args.model.name}, {len(frames)} photos at {args.frame[0]}x{args.frame[1]}, |precision - fp32| in 1/255 of the range")
    print(f"{'precision':>9s} {'photo':>24s} {'mean':>6s} {'p99':>6s} {'max':>6s}")
    for precision in [*precisions, *INPUT_CHANGES]:
        change = INPUT_CHANGES.get(precision)
        stylizer = reference if change else Stylizer.load(args.model, device=device, precision=precision)
        for photo, x, y_ref in zip(photos, frames, expected):
            diff = (stylizer.stylize_tensor(change(x) if change else x) - y_ref).abs().flatten() * 255
            p99 = diff.kthvalue(int(0.99 * diff.numel())).values
            print(f"{precision:>9s} {photo.name[:24]:>24s} {diff.mean():6.2f} {p99:6.1f} {diff.max():6.1f}")


if __name__ == "__main__":
    main()
