"""What a network's int8 frame cannot go below on this CPU: each of its convolutions alone, as
oneDNN runs it in int8, summed, beside the whole network on the stream path. The convolutions
are the bulk of the multiply-adds; if their sum alone is above a goal, no scheduling of the rest
reaches it. Run by hand (not a test); on an AVX2-only CPU it is part of benchmarks/cpu_check.sh:

    uv run python benchmarks/int8_floor.py --nets full realtime8 --size 480p

The kernel's ceiling is a large 1x1 conv's multiply-adds a second: on AVX2 without VNNI each 32
u8 x s8 products take two instructions (vpmaddubsw, then vpmaddwd to widen), on AVX-VNNI and
AVX-512 VNNI one (vpdpbusd), so VNNI doubles it at the same clock (docs/cpus.md)."""

import argparse
import statistics
import time
import warnings

import torch
from torch import nn

from fast_style.hardware import cpu_description
from fast_style.stylizer import Stylizer
from fast_style.transformer import TransformerNet, for_inference
from speed import NETS, SIZES, timed

warnings.filterwarnings("ignore", message=".*quantized.*")  # the eager quantized ops are deprecated, not gone
from torch.ao.nn.quantized import functional as qF  # noqa: E402


def conv_shapes(net: nn.Module, size: tuple[int, int]) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each conv of the network as the engine runs it (upsamplings at the lower size), with the
    shape it is given at this frame size."""
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, args: seen.append((m, tuple(args[0].shape))))
             for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, *size))
    for h in hooks:
        h.remove()
    return seen


def int8_conv_seconds(conv: nn.Conv2d, shape: tuple[int, ...], repeats: int = 7) -> float:
    """Median seconds of this conv alone in oneDNN's int8 (u8 activations, s8 weights per
    channel, u8 out), channels-last, as the engine's quantized convolutions run."""
    torch.backends.quantized.engine = "onednn"
    x = torch.quantize_per_tensor(torch.rand(shape) * 100, 1.0, 0, torch.quint8)
    x = x.contiguous(memory_format=torch.channels_last)
    o = conv.out_channels
    w = torch.quantize_per_channel(torch.randn(conv.weight.shape) * 20, torch.ones(o), torch.zeros(o, dtype=torch.long), 0,
                                   torch.qint8)
    run = lambda: qF.conv2d(x, w, torch.zeros(o), stride=conv.stride, scale=64.0, zero_point=0, dtype=torch.quint8)  # noqa: E731
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def macs(conv: nn.Conv2d, shape: tuple[int, ...]) -> float:
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    h, w = (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1
    return h * w * conv.out_channels * conv.in_channels * kh * kw


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nets", nargs="+", default=["full", "realtime8"], choices=list(NETS))
    p.add_argument("--size", default="480p", choices=list(SIZES))
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    print(cpu_description())
    ceiling = nn.Conv2d(512, 512, 1)
    shape = (1, 512, 120, 214)
    rate = macs(ceiling, shape) / int8_conv_seconds(ceiling, shape) / 1e9
    print(f"kernel ceiling (a 512 to 512 1x1 conv, 120x214): {rate:.0f} GMAC/s")
    for name in args.nets:
        net = TransformerNet(NETS[name])  # speed does not depend on the weights
        print(f"\n{name} at {args.size}: each conv alone in int8")
        total_s = total_macs = 0.0
        for conv, shape in conv_shapes(for_inference(net).eval(), SIZES[args.size]):
            sec, n = int8_conv_seconds(conv, shape, args.repeats), macs(conv, shape)
            total_s, total_macs = total_s + sec, total_macs + n
            k = "x".join(map(str, conv.kernel_size))
            print(f"  {conv.in_channels:4d} -> {conv.out_channels:4d} {k} /{conv.stride[0]} on {shape[2]}x{shape[3]}:"
                  f" {n / 1e9:5.2f} GMAC {sec * 1e3:7.1f} ms {n / sec / 1e9:6.0f} GMAC/s")
        whole = timed(Stylizer(net, precision="int8").stylize_tensor, torch.rand(1, 3, *SIZES[args.size]), args.repeats)
        print(f"  convs alone: {total_macs / 1e9:.1f} GMAC in {total_s * 1e3:.0f} ms; the whole network in int8"
              f" (stylize's stream path): {whole * 1e3:.0f} ms, so {(whole - total_s) * 1e3:.0f} ms around the convs")


if __name__ == "__main__":
    main()
