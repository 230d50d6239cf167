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


DEFAULT_MAX_PIXELS = 100_000_000  # refuse larger images (decompression bombs) unless told otherwise


class ImageTooLarge(ValueError):
    pass


def open_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Upright (EXIF orientation applied), fully decoded RGB, or RGBA where the file has
    transparency. The pixel count is checked from the header, before anything is decoded."""
    with Image.open(path) as im:
        if max_pixels and im.width * im.height > max_pixels:
            raise ImageTooLarge(
                f"{im.width}x{im.height} is {im.width * im.height / 1e6:.0f} megapixels, above the limit of "
                f"{max_pixels / 1e6:g} (--max-pixels)"
            )
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale to 8 bits, don't clip
            im = Image.fromarray((np.asarray(im, dtype=np.float32) / 257).clip(0, 255).astype(np.uint8), "L")
        has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")


def open_rgb(path: str | Path) -> Image.Image:
    return open_image(path, max_pixels=None).convert("RGB")


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
    try:
        image = open_rgb(path)
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{path}: style image cannot be read ({e})") from None
    if size:
        scale = size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return to_tensor(image).unsqueeze(0)
