"""Per-frame latency and fps of the transformation network at common frame sizes, for each
precision, beside the plain eager fp32 baseline. Run by hand: `uv run python benchmarks/stylize_speed.py`."""

import argparse
import platform
import time

import torch

from fast_style.stylizer import Stylizer, default_device
from fast_style.transformer import TransformerConfig, TransformerNet

SIZES = {"256x256": (256, 256), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


def timed(stylizer: Stylizer, x: torch.Tensor, repeats: int) -> float:
    stylizer.stylize_tensor(x)  # warm-up
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        stylizer.stylize_tensor(x)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", help="a model file (default: a fresh full-size network; speed does not depend on weights)")
    p.add_argument("--channels", type=int, default=32, help="network width without --model (16 for model=small)")
    p.add_argument("--res-blocks", type=int, default=5, help="residual blocks without --model (3 for model=small)")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    device = default_device()
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}), torch {torch.__version__}")
    net = Stylizer.load(args.model).net if args.model else TransformerNet(TransformerConfig(args.channels, args.res_blocks))
    print(f"{'size':>8s} {'precision':>9s} {'ms/frame':>9s} {'fps':>7s} {'vs fp32':>8s} {'max |diff|':>10s}")
    for size in args.sizes:
        h, w = SIZES[size]
        x = torch.rand(1, 3, h, w, device=device)
        base = Stylizer(net, device=device, precision="fp32")
        reference = base.stylize_tensor(x)
        base_s = timed(base, x, args.repeats)
        print(f"{size:>8s} {'fp32':>9s} {base_s * 1e3:9.1f} {1 / base_s:7.2f} {'1.00x':>8s} {0:10.4f}")
        for precision in [p for p in args.precisions if p != "fp32"]:
            s = Stylizer(net, device=device, precision=precision)
            diff = (s.stylize_tensor(x) - reference).abs().max().item()
            sec = timed(s, x, args.repeats)
            print(f"{size:>8s} {precision:>9s} {sec * 1e3:9.1f} {1 / sec:7.2f} {base_s / sec:7.2f}x {diff:10.4f}")


if __name__ == "__main__":
    main()
