"""Image files <-> float [0, 1] RGB tensors: the one pixel convention of fast_style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def find_images(root: Path) -> list[Path]:
    """Every image under root, recursively, in a stable order."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def open_rgb(path: str | Path) -> Image.Image:
    """Upright (EXIF orientation applied) RGB image, fully decoded."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return im.convert("RGB")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) float in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """(3, H, W) float (clamped to [0, 1]) -> PIL RGB."""
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def load_style_image(path: str | Path, size: int | None) -> torch.Tensor:
    """(1, 3, H, W) style image, its longest side scaled to `size` when given."""
    image = open_rgb(path)
    if size:
        scale = size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return to_tensor(image).unsqueeze(0)
