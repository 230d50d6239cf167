"""The network on a device at a precision: float [0, 1] tensors in, stylized tensors out.

The one place that decides how the network runs (eager, compiled, int8, in tiles). It keeps no
per-call state, so one Engine serves several threads: the int8 networks, made per input shape,
are built under a lock, and tiling works on its own copy of the network (fast_style.tiling)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from torch import nn

from fast_style.hardware import PRECISIONS, cpu_has_fast_bf16, inference_precision
from fast_style.tiling import stylize_tiled

MAX_PASS_PIXELS = 2048 * 2048  # larger inputs go through in tiles: bounded memory


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Engine:
    def __init__(
        self,
        net: nn.Module,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool = False,
        max_pass_pixels: int = MAX_PASS_PIXELS,
    ) -> None:
        self.device = torch.device(device) if device else default_device()
        if precision == "auto":
            precision = inference_precision(self.device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        self.dtype = PRECISIONS[precision]  # autocast dtype, None for fp32
        if precision == "int8":
            from fast_style.quantize import require_int8  # torchao loads only for int8

            require_int8(self.device)
            # Around the int8 convs, instance norm and the residual adds run in bf16 where fast.
            self.dtype = torch.bfloat16 if cpu_has_fast_bf16() else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(self.device).eval().to(memory_format=self.memory_format)
        self.max_pass_pixels = max_pass_pixels
        self.compiles = compile or precision == "int8"  # the first input of each shape takes seconds
        self.cuda_graphs = compile and self.device.type == "cuda"
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.net
        if compile:
            # Inductor kernels are cached on disk (TORCHINDUCTOR_CACHE_DIR), so only the first run
            # of a frame size pays for compiling. On CUDA, "reduce-overhead" also records a CUDA
            # graph per frame size: one launch a frame instead of one a layer.
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.forward = torch.compile(self.net, mode=mode, dynamic=False)
        self._int8_nets: dict[torch.Size, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._int8_lock = threading.Lock()

    @torch.no_grad()  # not inference_mode: under it the compiled int8 network ran 2x slower (measured)
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) on any device -> (B, 3, H, W) float on self.device, clamped to [0, 1]."""
        x = x.to(self.device, torch.float32).contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            if x.shape[-2] * x.shape[-1] > self.max_pass_pixels:
                y = torch.cat([stylize_tiled(self.net, xi[None], self.max_pass_pixels) for xi in x])
            elif self.precision == "int8":
                y = self._int8_net(x)(x)
            else:
                y = self.forward(x)
                if self.cuda_graphs:  # the graph's output memory is rewritten by its next replay
                    y = y.clone()
        return y.float().clamp_(0, 1)

    @property
    def int8_shapes(self) -> set[torch.Size]:
        """The input shapes an int8 network has been made for."""
        with self._int8_lock:
            return set(self._int8_nets)

    def _int8_net(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Quantized and compiled on the first batch of each shape (fast_style/quantize.py)."""
        with self._int8_lock:
            if x.shape not in self._int8_nets:
                from fast_style.quantize import quantize_int8

                self._int8_nets[x.shape] = quantize_int8(self.net, x)
            return self._int8_nets[x.shape]
