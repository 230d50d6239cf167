"""PIL images <-> float [0, 1] RGB tensors (B, 3, H, W): the one pixel convention of fast_style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fast_style.config import VGG_MIN_SIDE
from fast_style.images import open_painting, painting_at, too_small_for_vgg


def to_bytes(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) uint8 (channels last in memory): what a Stylizer takes as it is, and
    a quarter of the floats' bytes between processes."""
    return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)


def bytes_to_floats(x: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1], in one copy to the layout the network takes (a view of
    HxWx3 pixels is not in it)."""
    return x.to(torch.float32, memory_format=memory_format).div_(255)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) float in [0, 1]."""
    return bytes_to_floats(to_bytes(image))


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """(3, H, W) uint8, or float (clamped to [0, 1]) -> PIL RGB."""
    if tensor.dtype != torch.uint8:
        tensor = tensor.detach().float().clamp(0, 1).mul_(255).round_().byte()  # in place on clamp's copy
    return Image.fromarray(tensor.permute(1, 2, 0).contiguous().cpu().numpy(), "RGB")


def resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, h, w), bicubic with antialiasing when shrinking."""
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)


def fit_longest(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """(B, 3, H, W) scaled so its longest side is `size` (unchanged when None), kept in [0, 1]."""
    h, w = x.shape[-2:]
    if not size or max(h, w) == size:
        return x
    scale = size / max(h, w)
    return resize(x, max(1, round(h * scale)), max(1, round(w * scale))).clamp(0, 1)


def load_style_image(path: str | Path, size: int | None) -> torch.Tensor:
    """(1, 3, H, W) style image, its longest side scaled to `size` when given."""
    image = painting_at(open_painting(path), size, path)
    if too_small_for_vgg(image.width, image.height, None):
        at = f" at style.size={size}" if size else ""
        raise ValueError(f"{path}: style image is {image.width}x{image.height}{at}; VGG-16's style layers need "
                         f"{VGG_MIN_SIDE} pixels or more a side")
    return to_tensor(image).unsqueeze(0)
