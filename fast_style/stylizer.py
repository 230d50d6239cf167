"""Apply a trained network: the Python API behind `stylize`. Imports neither Lightning nor Hydra."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import overload

import torch
from PIL import Image

from fast_style.blend import blend, preserve_color
from fast_style.hardware import PRECISIONS, cpu_has_fast_bf16, inference_precision
from fast_style.images import fit_longest, resize, to_pil, to_tensor
from fast_style.model_file import load_model
from fast_style.tiling import stylize_tiled
from fast_style.transformer import TransformerNet


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Stylizer:
    """`Stylizer.load("checkpoints/starry_night.safetensors")(image)`.

    Takes a PIL image (returns one of the same size) or a float [0, 1] tensor
    (3, H, W) or (B, 3, H, W) (returns the same shape, on the same device)."""

    def __init__(
        self,
        net: TransformerNet,
        info: dict | None = None,
        device: str | torch.device | None = None,
        max_pass_pixels: int = 2048 * 2048,
        precision: str = "fp32",
        strength: float = 1.0,
        preserve_color: bool = False,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        self.device = torch.device(device) if device else default_device()
        self.net = net.to(self.device).eval()
        self.info = info or {}
        self.max_pass_pixels = max_pass_pixels  # larger images go through in tiles: bounded memory
        if precision == "auto":
            precision = inference_precision(self.device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        if precision == "int8":
            from fast_style.quantize import require_int8  # torchao loads only for int8

            require_int8(self.device)
            # Around the int8 convs, instance norm and the residual adds run in bf16 where fast.
            self.dtype = torch.bfloat16 if cpu_has_fast_bf16() else None
        self.int8_nets: dict[torch.Size, Callable[[torch.Tensor], torch.Tensor]] = {}  # one per input shape
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be between 0 and 1, not {strength}")
        self.strength, self.preserve_color = strength, preserve_color
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.memory_format)
        self.forward = self.net
        self.compiles = compile or precision == "int8"  # the first frame of each size takes seconds
        self.cuda_graphs = compile and self.device.type == "cuda"
        if compile:
            # Inductor kernels are cached on disk (TORCHINDUCTOR_CACHE_DIR), so only the first run
            # of a frame size pays for compiling. On CUDA, "reduce-overhead" also records a CUDA
            # graph per frame size: one launch a frame instead of one a layer.
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.forward = torch.compile(self.net, mode=mode, dynamic=False)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None, **kwargs: int | str) -> Stylizer:
        net, info = load_model(path)
        return cls(net, info, device, **kwargs)

    @property
    def name(self) -> str:
        return self.info.get("style") or "stylized"

    @torch.no_grad()  # not inference_mode: under it the compiled int8 network ran 2x slower (measured)
    def stylize_tensor(self, batch: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 3, H, W), clamped to [0, 1]. With `size`, the network runs
        with the longest side scaled to `size` (bigger brush strokes, less time) and the
        result is scaled back."""
        h, w = batch.shape[-2:]
        x = fit_longest(batch.to(self.device, torch.float32), size).contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            if x.shape[-2] * x.shape[-1] > self.max_pass_pixels:
                y = torch.cat([stylize_tiled(self.net, xi[None]) for xi in x])
            elif self.precision == "int8":
                y = self._int8_net(x)(x)
            else:
                y = self.forward(x)
                if self.cuda_graphs:  # the graph's output memory is rewritten by its next replay
                    y = y.clone()
        y = y.float().clamp_(0, 1)
        if y.shape[-2:] != (h, w):
            y = resize(y, h, w).clamp_(0, 1)
        photo = batch.to(self.device, torch.float32)
        if self.preserve_color:
            y = preserve_color(y, photo)
        if self.strength < 1:
            y = blend(photo, y, self.strength)
        return y.to(batch.device)

    def _int8_net(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Quantized and compiled on the first batch of each shape (fast_style/quantize.py)."""
        if x.shape not in self.int8_nets:
            from fast_style.quantize import quantize_int8

            self.int8_nets[x.shape] = quantize_int8(self.net, x)
        return self.int8_nets[x.shape]

    @overload
    def __call__(self, image: Image.Image, size: int | None = None) -> Image.Image: ...
    @overload
    def __call__(self, image: torch.Tensor, size: int | None = None) -> torch.Tensor: ...
    def __call__(self, image: Image.Image | torch.Tensor, size: int | None = None) -> Image.Image | torch.Tensor:
        if isinstance(image, Image.Image):
            return self.stylize_images([image], size)[0]
        if image.dim() == 3:
            return self.stylize_tensor(image.unsqueeze(0), size)[0]
        return self.stylize_tensor(image, size)

    def stylize_images(self, images: list[Image.Image], size: int | None = None) -> list[Image.Image]:
        """Same-size images go through the network as one batch. Transparency is kept:
        the colours are stylized and the alpha channel put back unchanged."""
        out: list[Image.Image | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(image.size, []).append(i)
        for indices in by_size.values():
            batch = torch.stack([to_tensor(images[i]) for i in indices])
            for i, y in zip(indices, self.stylize_tensor(batch, size)):
                out[i] = to_pil(y)
                if images[i].mode in ("RGBA", "LA", "PA"):
                    out[i].putalpha(images[i].getchannel("A"))
        return out  # type: ignore[return-value]
