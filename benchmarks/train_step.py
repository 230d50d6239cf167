"""Training throughput (transformer forward + VGG losses + backward + Adam) for each precision
and memory format. Run by hand: `uv run python benchmarks/train_step.py`; `speed.py` prints it too."""

import argparse
import time

import torch

from fast_style.hardware import inductor_options
from fast_style.losses import PerceptualLoss
from fast_style.transformer import TransformerConfig, TransformerNet
from fast_style.vgg import VGG16Features


def train_throughput(device: torch.device, precision: str, channels_last: bool = False, batch: int = 4,
                     size: int = 256, steps: int = 5, config: TransformerConfig | None = None, compile: bool = False) -> float:
    """Images per second over `steps` steps after one warm-up step (random VGG weights: same speed)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    loss_fn = PerceptualLoss(VGG16Features("random")).to(device, memory_format=fmt)
    loss_fn.set_style(torch.rand(1, 3, size, size, device=device))
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    torch.manual_seed(0)
    net = TransformerNet(config).to(device, memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    if compile:  # as train compile=true does
        net.compile(dynamic=False, options=inductor_options())
        loss_fn.compile(dynamic=False, options=inductor_options())
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    warmup = 2 if compile else 1  # the first step compiles the forward, the first backward the backward
    for step in range(steps + warmup):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(net(x), x)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="add torch.compile rows")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as trainer=gpu sets it
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, batch {args.batch} at {args.size}px")
    half = "bf16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "fp16"
    rows = [("fp32", False, False), (half, False, False), (half, True, False)]
    if args.compile:
        rows += [(half, False, True), (half, True, True)]
    for precision, channels_last, compiled in rows:
        ips = train_throughput(device, precision, channels_last, args.batch, args.size, args.steps, compile=compiled)
        print(f"{precision:5s} channels_last={channels_last!s:5s} compile={compiled!s:5s} "
              f"{args.batch / ips:6.2f} s/step  {ips:7.1f} img/s")


if __name__ == "__main__":
    main()
