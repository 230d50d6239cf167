"""Seconds per training step (transformer forward + VGG losses + backward + Adam) for each
precision and memory format. Run by hand: `uv run python benchmarks/train_step.py`."""

import argparse
import time

import torch

from fast_style.losses import PerceptualLoss
from fast_style.transformer import TransformerNet
from fast_style.vgg import VGG16Features


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} at {args.size}px")
    loss_fn = PerceptualLoss(VGG16Features("random"))
    loss_fn.set_style(torch.rand(1, 3, args.size, args.size))
    x = torch.rand(args.batch, 3, args.size, args.size)
    for precision, channels_last in [("fp32", False), ("bf16", False), ("bf16", True)]:
        torch.manual_seed(0)
        net = TransformerNet()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        net, loss_fn, xb = net.to(memory_format=fmt), loss_fn.to(memory_format=fmt), x.to(memory_format=fmt)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        times = []
        for _ in range(args.steps + 1):
            t = time.perf_counter()
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                y = net(xb)
                loss = loss_fn(y, xb)["total"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        s = sum(times[1:]) / args.steps
        print(f"{precision:5s} channels_last={channels_last!s:5s} {s:6.2f} s/step  {args.batch / s:6.1f} img/s")


if __name__ == "__main__":
    main()
