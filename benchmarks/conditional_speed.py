"""A gallery's (or an arbitrary-style network's) frame against the single-style network of the
same size, for each path (eager fp32, compiled, int8), interleaved in one run. A fixed style code
makes a plain TransformerNet, so the two should cost the same. Run by hand:

    uv run python benchmarks/conditional_speed.py --model checkpoints/gallery.safetensors \
        --single checkpoints/starry_night.safetensors --style starry_night=0.6,wave=0.4
"""

import argparse
import statistics
import time

import torch

from fast_style.hardware import cpu_description
from fast_style.models import parse_style
from fast_style.stylizer import Stylizer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="a gallery or arbitrary-style file")
    p.add_argument("--single", required=True, help="a single-style file of the same body")
    p.add_argument("--style", help="the gallery's style or mix (default: its first)")
    p.add_argument("--style-image", help="the painting, for an arbitrary-style file")
    p.add_argument("--size", nargs=2, type=int, default=[480, 854], metavar=("H", "W"))
    p.add_argument("--paths", nargs="+", default=["fp32", "compiled", "int8"])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(cpu_description())
    x = torch.rand(1, 3, *args.size)
    for path in args.paths:
        options = {"precision": "int8" if path == "int8" else "fp32", "compile": path == "compiled", "device": "cpu"}
        single = Stylizer.load(args.single, **options)
        many = Stylizer.load(args.model, **options, style=parse_style(args.style) if args.style else None,
                             style_image=args.style_image)
        for _ in range(2):  # warm-up: compiling, quantizing, reading the painting
            single.stylize_tensor(x)
            many.stylize_tensor(x)
        a, b = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            single.stylize_tensor(x)
            a.append(time.perf_counter() - start)
            start = time.perf_counter()
            many.stylize_tensor(x)
            b.append(time.perf_counter() - start)
        print(f"{path:9s} {args.size[1]}x{args.size[0]}: single-style {1e3 * statistics.median(a):7.0f} ms, "
              f"{args.model} {1e3 * statistics.median(b):7.0f} ms (medians of {args.repeats}, interleaved)")


if __name__ == "__main__":
    main()
