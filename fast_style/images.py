"""Image files <-> float [0, 1] RGB tensors: the one pixel convention of fast_style."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import ExifTags, Image, ImageCms, ImageOps
from pillow_heif import register_heif_opener

register_heif_opener()  # HEIC, the iPhone's photos, through Pillow (AVIF is Pillow's own)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")  # read with PyAV (fast_style.video)


def find_images(root: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Every image (or file with one of `extensions`) under root, recursively, in a stable order."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in extensions and p.is_file())


DEFAULT_MAX_PIXELS = 100_000_000  # refuse larger images (decompression bombs) unless told otherwise


class ImageTooLarge(ValueError):
    pass


def open_image(path: str | Path | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Upright (EXIF orientation applied), fully decoded sRGB, or RGBA where the file has
    transparency. The pixel count is checked from the header, before anything is decoded.
    info["exif"] holds what the output keeps of the photo's metadata (kept_exif), or nothing."""
    with Image.open(path) as im:
        if max_pixels and im.width * im.height > max_pixels:
            raise ImageTooLarge(
                f"{im.width}x{im.height} is {im.width * im.height / 1e6:.0f} megapixels, above the limit of "
                f"{max_pixels / 1e6:g} (--max-pixels)"
            )
        icc, exif = im.info.get("icc_profile"), kept_exif(im.getexif())
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale to 8 bits, don't clip
            im = Image.fromarray((np.asarray(im, dtype=np.float32) / 257).clip(0, 255).astype(np.uint8), "L")
        has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info
        rgb = in_srgb(im, icc)
        if has_alpha:
            rgb.putalpha(im.convert("RGBA").getchannel("A"))
        rgb.info.pop("exif", None)  # Pillow's copy of them all, location included
        if exif:
            rgb.info["exif"] = exif
        return rgb


_TAKEN = (ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.DateTime)
_TAKEN_WHEN = (ExifTags.Base.DateTimeOriginal, ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTime,
               ExifTags.Base.OffsetTimeOriginal, ExifTags.Base.OffsetTimeDigitized, ExifTags.Base.SubsecTime,
               ExifTags.Base.SubsecTimeOriginal, ExifTags.Base.SubsecTimeDigitized)


def kept_exif(source: Image.Exif) -> bytes | None:
    """When the photo was taken, and with which camera, as EXIF for the output: photo libraries
    sort and group by them, and a stylized holiday would otherwise land on the day it was
    stylized. The location, serial numbers, the maker's notes and the rest are left behind: a
    stylized picture is made to be shown. Orientation too: it is applied."""
    kept = Image.Exif()
    for tag in _TAKEN:
        if tag in source:
            kept[tag] = source[tag]
    when = {tag: value for tag, value in source.get_ifd(ExifTags.IFD.Exif).items() if tag in _TAKEN_WHEN}
    if when:
        kept.get_ifd(ExifTags.IFD.Exif).update(when)
    return kept.tobytes() if len(kept) or when else None


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def in_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB in sRGB: what every network was trained on, and what a picture without a profile is
    shown as. A photo tagged with another profile (a phone's Display P3, Adobe RGB, a CMYK press
    profile) is converted, not read as if its numbers were sRGB; one whose profile cannot be
    read is read as sRGB, as browsers do."""
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "sRGB" not in ImageCms.getProfileDescription(profile):
                source = im if im.mode in ("CMYK", "L") else im.convert("RGB")  # a press or grey profile's own numbers
                return ImageCms.profileToProfile(source, profile, SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return im if im.mode == "RGB" else im.convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    return open_image(path, max_pixels=None).convert("RGB")


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
        tensor = tensor.detach().float().clamp(0, 1).mul(255).round().byte()
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
    try:
        image = open_rgb(path)
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{path}: style image cannot be read ({e})") from None
    return to_tensor(scale_longest(image, size)).unsqueeze(0)


def scale_longest(image: Image.Image, size: int | None) -> Image.Image:
    """A painting with its longest side at `size` (Lanczos), as its style targets are taken."""
    if not size:
        return image
    scale = size / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
