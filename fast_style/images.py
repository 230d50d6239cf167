"""Image files: found, opened within a pixel limit, upright, in sRGB; the extensions of pictures
and videos. Without torch, so that `stylize` answers --help and refuses a command line at once
(importing torch takes seconds); fast_style.pixels turns the pictures into tensors."""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps
from pillow_heif import register_heif_opener

from fast_style.config import VGG_MIN_SIDE

log = logging.getLogger(__name__)
register_heif_opener()  # HEIC, the iPhone's photos, through Pillow (AVIF is Pillow's own)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif")
# Read with PyAV (fast_style.video). The second line's are read only, and written as .mp4: camcorders
# (AVCHD, DV, MOD/TOD), DVDs, broadcast and screen recordings, older phones and the web's older formats.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v",
                    ".mts", ".m2ts", ".ts", ".dv", ".mod", ".tod", ".vob", ".mpg", ".mpeg", ".mxf", ".flv", ".wmv",
                    ".asf", ".3gp", ".3g2", ".ogv")


def find_images(root: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Every image (or file with one of `extensions`) under root, recursively, in a stable order.
    A suffix that other files share counts only where the first bytes say video: a folder's
    TypeScript `.ts` files and Go's `go.mod` are not failed inputs."""
    return sorted(p for p in _files(Path(root)) if is_one_of(p, extensions))


def is_one_of(path: Path, extensions: tuple[str, ...]) -> bool:
    """A file with one of `extensions`, as find_images takes it."""
    suffix = path.suffix.lower()
    return suffix in extensions and path.is_file() and (suffix not in _SHARED_SUFFIXES or _sniffed_video(path))


def _files(root: Path) -> Iterator[Path]:
    """Following links to folders, each folder once: rglob left out a folder of photos linked in,
    silently, and a link to a folder above would otherwise be walked for ever. Names in order, so
    that of two links to one folder the first is the one kept. Hidden names (a leading dot) are
    left out, as a shell's `*` leaves them: a folder from a Mac's drive has a `._IMG_1.jpg` twin,
    not an image, beside each photo (an error each until session 55), and a `.thumbnails` folder
    would be stylized too."""
    seen: set[tuple[int, int]] = set()
    for folder, folders, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:  # gone since it was listed
            continue
        if (info.st_dev, info.st_ino) in seen:
            folders.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        yield from (Path(folder) / name for name in files if not name.startswith("."))


_SHARED_SUFFIXES = (".ts", ".mod")  # TypeScript, Go modules and tracker music have them too


def _sniffed_video(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return is_mpeg_stream(f.read(200))
    except OSError:
        return True  # found, so reported as the input it cannot read


def is_mpeg_stream(head: bytes) -> bool:
    """An MPEG transport stream (its sync byte every 188 bytes, or every 192 in a camcorder's
    M2TS), or an MPEG program stream's pack header (a JVC camcorder's .MOD), from its first 200 bytes."""
    ts = any(len(head) > at + step and head[at] == head[at + step] == 0x47 for at, step in ((0, 188), (4, 192)))
    return ts or head.startswith(b"\x00\x00\x01\xba")


def no_folder(path: Path, missing: str) -> str | None:
    """Why `path`, an option that takes a folder, is none: `missing`, or a file there (one photo
    given for its folder) said as such; None for a folder."""
    if path.is_dir():
        return None
    return "a file, not a folder" if path.exists() else missing


def photo_folder(root: str | Path) -> Path:
    """`data.root`, or the line that says it is no folder: said by `train` before anything loads,
    and by the data module."""
    path = Path(root).expanduser()
    if problem := no_folder(path, "training photo folder not found"):
        raise FileNotFoundError(f"{path}: {problem} (data.root=DIR: any folder of photos; MS-COCO in data/README.md)")
    return path


DEFAULT_MAX_PIXELS = 120_000_000  # refuse larger images (decompression bombs) unless told; a GFX100's 102 pass


class ImageTooLarge(ValueError):
    pass


def open_image(path: str | Path | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS, page: int = 0,
               short_side: int | None = None) -> Image.Image:
    """Upright (EXIF orientation applied), fully decoded sRGB, or RGBA where the file has
    transparency. The pixel count is checked from the header, before anything is decoded.
    info["exif"] holds what the output keeps of the photo's metadata (kept_exif), or nothing.
    `page`: of a TIFF of several (tiff_pages). `short_side`: a JPEG may be decoded smaller, at
    the smallest of its DCT scales (1/2, 1/4, 1/8) whose short side is still that long: a
    training crop of a 12-megapixel photo took 205 ms with the photo decoded whole, 26 at 1/4."""
    with Image.open(path) as im:
        if page:
            im.seek(page)
        if max_pixels and im.width * im.height > max_pixels:
            raise ImageTooLarge(
                f"{im.width}x{im.height} is {im.width * im.height / 1e6:.0f} megapixels, above the limit of "
                f"{max_pixels / 1e6:g} (--max-pixels)"
            )
        if short_side and (scale := short_side / min(im.size)) < 1:
            im.draft(None, (math.ceil(im.width * scale), math.ceil(im.height * scale)))  # a no-op but for JPEG
        icc, exif = im.info.get("icc_profile"), kept_exif(im.getexif())
        rgb = as_read(ImageOps.exif_transpose(im), icc)
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


def as_read(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Upright sRGB, or RGBA where the picture has transparency: every picture as the networks
    take it, from a file or from Python. A phone's portrait photo, stored sideways with an EXIF
    orientation, came out of `stylizer(Image.open(path))` sideways: no output keeps the tag. A 16-bit
    grey scan is scaled to 8 bits, where Pillow's convert clips it (white above 1/257)."""
    if im.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = Image.fromarray((np.asarray(im, dtype=np.float32) / 257).clip(0, 255).astype(np.uint8), "L")
    rgb = in_srgb(im, icc)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        alpha = im.getchannel("A") if im.mode == "RGBA" else im.convert("RGBA").getchannel("A")
        if rgb is im:  # in_srgb handed back the caller's own image (RGB with a transparent colour)
            rgb = rgb.copy()
        rgb.putalpha(alpha)
    return rgb


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


def own_pixel_limits() -> None:
    """For a command, once: our limits, checked from the header before decoding (--max-pixels;
    DEFAULT_MAX_PIXELS for training photos), replace Pillow's 179 MP, so that a painting the user
    names is read whatever its size (a museum's scan was a DecompressionBombError in train and
    evaluate). Not for the library: Pillow's setting is the whole process's."""
    Image.MAX_IMAGE_PIXELS = None


def tiff_pages(path: Path) -> int:
    """The pages of a TIFF file (a scanned document, a fax): 1 for any other file."""
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return 1
    try:
        with Image.open(path) as im:
            return getattr(im, "n_frames", 1)
    except (OSError, SyntaxError, ValueError):
        return 1  # reported as the picture it cannot decode


def upright_size(im: Image.Image) -> tuple[int, int]:
    """An opened file's (width, height) as open_image turns it upright, from its header alone:
    EXIF orientations 5-8 are a quarter turn."""
    turned = im.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
    return (im.height, im.width) if turned else im.size


def too_small_for_vgg(width: int, height: int, size: int | None) -> bool:
    """Whether a photo, its longest side scaled to `size` (as evaluate and validation take it),
    pools to nothing before VGG-16's relu4_3."""
    return min(scaled_to(width, height, size)) < VGG_MIN_SIDE


def scaled_to(width: int, height: int, size: int | None) -> tuple[int, int]:
    """(width, height) with the longest side `size` (as given where None), as fit_longest scales
    a tensor; what evaluate, validation and their checks see of a photo."""
    if not size:
        return width, height
    return max(1, round(width * size / max(width, height))), max(1, round(height * size / max(width, height)))


def open_rgb(path: str | Path, max_pixels: int | None = None, short_side: int | None = None) -> Image.Image:
    return on_white(open_image(path, max_pixels, short_side=short_side))


def on_white(image: Image.Image) -> Image.Image:
    """RGB, any transparency flattened on white, as a page shows it. The colours under a transparent
    pixel are whatever an editor left there, black in most: read as they were, a painting with
    transparent margins taught a dark style (docs/training.md, "Paintings with transparency")."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")


def painting_rgb(image: Image.Image) -> Image.Image:
    """A painting as its style is taken: a transparent margin cut off, the rest flattened on white
    (a round painting's corners, say), so that only what is painted counts."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
        box = image.getchannel("A").getbbox()
        if box is None:
            raise ValueError("the painting is transparent all over")
        image = image.crop(box)
    return on_white(image)


ENLARGED = 1.5  # a painting enlarged more than this to its style size is read as a blur, and said so


def painting_at(painting: Image.Image, size: int | None, name: str | Path) -> Image.Image:
    """The painting with its longest side at `size`, as its style is read. A small copy enlarged
    is a blur of it: VGG-16's style statistics of wave.jpg from a 256-px copy, enlarged to 512, are
    0.31 of the way to another painting's (starry_night's 0.61 of the way to the_scream's); from a
    384-px copy 0.10 (0.22). Said once a reading, so that a thumbnail does not train unnoticed."""
    if note := enlarged(painting, size, name):
        log.warning(f"warning: {note}")
    return scale_longest(painting, size)


def enlarged(painting: Image.Image, size: int | None, name: str | Path) -> str | None:
    """What painting_at warns of, for the page to show beside the painting uploaded."""
    if not size or size <= ENLARGED * max(painting.size):
        return None
    return (f"{name} is {painting.width}x{painting.height}, enlarged {size / max(painting.size):.1f}x "
            f"to the style size of {size} px: its strokes are read blurred; a larger image of it paints better")


def open_painting(path: str | Path) -> Image.Image:
    """A painting file as painting_rgb takes it, at any size (own_pixel_limits), or one line."""
    try:
        image = open_image(path, None)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # the last: Pillow's limit, as set
        raise ValueError(f"{path}: style image cannot be read ({e})") from None
    try:
        return painting_rgb(image)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def scale_longest(image: Image.Image, size: int | None) -> Image.Image:
    """A painting with its longest side at `size` (Lanczos), as its style targets are taken; an
    input at `--output-size`."""
    if not size:
        return image
    scale = size / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
