"""The network on a device at a precision: float [0, 1] tensors in, stylized tensors out.

The one place that decides how the network runs (eager, compiled, int8, in tiles; the
upsamplings computed at the lower size: `transformer.for_inference`). It keeps no
per-call state, so one Engine serves several threads: the int8 networks, made per input shape,
are built under a lock, and tiling works on its own copy of the network (fast_style.tiling)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from fast_style.gallery import ConditionalNet, GalleryNet
from fast_style.hardware import (PRECISIONS, cpu_has_fast_bf16, emulated_precision, freed_memory_kept,
                                 inductor_options, inference_precision)
from fast_style.lanes import release_gil_in_compiled_kernels
from fast_style.tiling import stylize_tiled
from fast_style.transformer import TransformerNet, for_inference

log = logging.getLogger(__name__)
# Inductor's C++ compiler imports cpp_extension, which warns that a CUDA build of torch finds no
# CUDA runtime: in the middle of the progress bar, and beside the point on a CPU.
logging.getLogger("torch.utils.cpp_extension").addFilter(lambda record: "No CUDA runtime" not in record.getMessage())
# The largest activation one pass may make, in fp32: the full network's at 2048x2048 (512 MiB).
# Larger inputs go through in tiles (fast_style.tiling): bounded memory.
PASS_BYTES = 2048 * 2048 * 32 * 4
# An int8 pass carries 8-bit activations between its convs: at twice the pixels it peaks near a
# float pass at its limit (the full network on a 4K frame: 3.1 GB, 4.6 with AVX2's fp32 norms;
# fp32 at 2048x2048: 3.3), and runs 4-7x faster than float tiles (docs/design.md#tiles).
INT8_PASS_SCALE = 2
STYLE_CACHE = 8  # style codes kept ready (each a single-style network, compiled where asked)


def pass_pixels(net: TransformerNet, precision: str = "fp32") -> int:
    """The most pixels one pass of `net` takes: 2048x2048 for the full network, twice that for the
    small one, 8 times for the realtime ones (whose widest layer is at half size); twice each in int8."""
    return int(PASS_BYTES / (4 * net.widest)) * (INT8_PASS_SCALE if precision == "int8" else 1)


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def named_device(name: str | torch.device | None) -> torch.device:
    """The device asked for (default_device where none is), or a ValueError saying why there is
    none: torch's own errors came late and named no option (`evaluate --device cuda` was a
    traceback), or listed its twenty device types for a typo."""
    if not name:
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name}: not a device (cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and (device.index or 0) >= (count := torch.cuda.device_count()):
        there = f"this machine has {count} (cuda:0 to cuda:{count - 1})" if count else "no CUDA GPU is visible here"
        raise ValueError(f"device {name}: {there}; cpu runs anywhere, and leaving the device out takes the best there is")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name}: no Apple GPU (MPS) here; cpu runs anywhere, and leaving the device out "
                         "takes the best there is")
    return device


Runner = Callable[[torch.Tensor], torch.Tensor]
StyleKey = tuple[float, ...] | None  # a style code's numbers; None for a single-style network


class Engine:
    """`engine(x)`, or for a network of many styles `engine(x, style=code)`: a gallery's (N,)
    weights (fast_style.gallery), an arbitrary network's painting code (fast_style.arbitrary).
    Each code runs as the single-style network it amounts to, so it costs what one style costs."""

    def __init__(
        self,
        net: nn.Module,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool = False,
        max_pass_pixels: int | None = None,
    ) -> None:
        self.device = named_device(device)
        if max_pass_pixels is not None and max_pass_pixels < 1:  # -5 sent every picture into tiles, silently
            raise ValueError(f"max_pass_pixels must be at least 1, or None (from the network and precision), "
                             f"not {max_pass_pixels}")
        if precision == "auto":
            precision = inference_precision(self.device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {precision!r}")
        if line := emulated_precision(self.device, precision):
            log.warning(line)  # with logging left unset, Python prints the line alone
        self.precision = precision
        self.dtype = PRECISIONS[precision]  # autocast dtype, None for fp32
        if precision == "int8":
            from fast_style.quantize import require_int8  # torchao loads only for int8

            require_int8(self.device)
            # Around the int8 convs, instance norm and the residual adds run in bf16 where fast.
            self.dtype = torch.bfloat16 if cpu_has_fast_bf16() else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # The layout inputs are best given in. The int8 network's first kernel pads, quantizes and
        # writes channels-last for oneDNN: from channels-last input it reads pixels in order.
        self.input_format = torch.channels_last if precision == "int8" else self.memory_format
        self.net = net.to(self.device).eval().to(memory_format=self.memory_format)
        self.conditional = self.net if isinstance(self.net, ConditionalNet) else None
        self.gallery = self.net if isinstance(self.net, GalleryNet) else None
        self.max_pass_pixels = max_pass_pixels
        self.compile = compile
        self.compiles = compile or precision == "int8"  # the first input of each shape (and mix) takes seconds
        self.cuda_graphs = compile and self.device.type == "cuda"
        if self.cuda_graphs:  # streams keep one frame size: cuDNN times its conv algorithms once, as trainer=gpu does
            torch.backends.cudnn.benchmark = True
        self._lock = threading.Lock()  # guards the caches below
        self._styles: OrderedDict[StyleKey, tuple[nn.Module, Runner]] = OrderedDict()  # most recent last
        self._int8_nets: dict[tuple[StyleKey, torch.Size, int], Runner] = {}

    @torch.no_grad()  # not inference_mode: under it the compiled int8 network ran 2x slower (measured)
    def __call__(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) on any device -> (B, 3, H, W) float on self.device, clamped to [0, 1].
        `style`: the network's style code; refused for a single-style network."""
        key = self._style_key(style)
        net, forward = self._network(key)
        x = x.to(self.device, torch.float32).contiguous(memory_format=self.input_format)
        kept = freed_memory_kept() if self.device.type == "cpu" else contextlib.nullcontext()
        with kept, torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            # None: the network's own limit, at this precision
            limit = self.max_pass_pixels or pass_pixels(cast(TransformerNet, net), self.precision)
            if x.shape[-2] * x.shape[-1] > limit:
                tiled = [stylize_tiled(net, xi[None], limit) for xi in x]
                y = tiled[0] if len(tiled) == 1 else torch.cat(tiled)  # cat copies even one
            elif self.precision == "int8":
                y = self._int8_net(key, net, x)(x)
            else:
                y = forward(x)
                if self.cuda_graphs:  # the graph's output memory is rewritten by its next replay
                    y = y.clone()
        return y.float().clamp_(0, 1)

    def _style_key(self, style: torch.Tensor | None) -> StyleKey:
        net = self.conditional
        if net is None:
            if style is not None:
                raise ValueError("this network has one style; a style mix needs a gallery network")
            return None
        if style is None and self.gallery is not None:
            raise ValueError(f"a gallery network needs a style (one of {', '.join(self.gallery.styles)}, or a mix)")
        if style is None:
            raise ValueError("an arbitrary-style network needs a painting's style code")
        if tuple(style.shape) != net.code_shape:
            what = "style weights for a gallery of" if self.gallery is not None else "numbers for a style code of"
            raise ValueError(f"{style.numel()} {what} {net.code_shape[0]}")
        return tuple(round(float(w), 6) for w in style)

    def _network(self, key: StyleKey) -> tuple[nn.Module, Runner]:
        """The single-style network for `key` and how to run it (eager or compiled), made once."""
        with self._lock:
            if key in self._styles:
                self._styles.move_to_end(key)
                return self._styles[key]
            net = self.net if key is None else self.conditional.single(torch.tensor(key))
            # No gradients, ever: autocast then caches no casts of the weights. Its cache is one for
            # the process, and clearing it freed Python objects under its lock: an eager bf16 frame
            # in one thread and an int8 network being made in another (the page) deadlocked: 4 runs in 4.
            # The 9x9 conv out as a space-to-depth conv where it measured faster: eager fp32 on a
            # CPU (AVX2: 12-15% of a frame). In int8 Inductor's shuffles around it cost more than
            # the conv gains (fast_style.transformer.SpaceToDepthConv).
            fp32_eager = self.device.type == "cpu" and self.precision == "fp32" and not self.compile
            net = for_inference(net, space_to_depth=fp32_eager)
            net = net.to(self.device, memory_format=self.memory_format).requires_grad_(False)
            forward: Runner = net
            if self.compile:
                # Inductor kernels are cached on disk (TORCHINDUCTOR_CACHE_DIR), so only the first run
                # of a frame size pays for compiling. On CUDA, "reduce-overhead" also records a CUDA
                # graph per frame size: one launch a frame instead of one a layer.
                release_gil_in_compiled_kernels()
                if self.device.type == "cuda":
                    forward = torch.compile(net, mode="reduce-overhead", dynamic=False)
                else:
                    forward = torch.compile(net, dynamic=False, options=inductor_options())
            self._styles[key] = (net, forward)
            if len(self._styles) > STYLE_CACHE:
                old, _ = self._styles.popitem(last=False)
                self._int8_nets = {k: v for k, v in self._int8_nets.items() if k[0] != old}
            return net, forward

    @property
    def int8_shapes(self) -> set[torch.Size]:
        """The input shapes an int8 network has been made for."""
        with self._lock:
            return {shape for _, shape, _ in self._int8_nets}

    def _int8_net(self, key: StyleKey, net: nn.Module, x: torch.Tensor) -> Runner:
        """Quantized and compiled on the first batch of each shape and thread count
        (fast_style/quantize.py): made on every core and then run one core a lane
        (fast_style.lanes), a stream ran at 9.2 fps instead of 12.2 (measured, AVX2 cap)."""
        slot = (key, x.shape, torch.get_num_threads())
        with self._lock:
            if slot not in self._int8_nets:
                from fast_style.quantize import quantize_int8

                self._int8_nets[slot] = quantize_int8(net, x)
            return self._int8_nets[slot]
