"""Which files a `stylize` run reads and writes: inputs expanded and checked, outputs named and
saved whole (fast_style.atomic), never over an existing file unless asked."""

from __future__ import annotations

import glob
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fast_style.atomic import atomic_write
from fast_style.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ImageTooLarge, find_images, open_image

DEFAULT_OUT = Path("stylized")


class InputError(Exception):
    """One input that cannot be stylized; reported in one line, the others go on."""


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, its path relative to the folder it was found in): folders recurse, globs expand."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and path.suffix.lower() not in IMAGE_EXTENSIONS:
            found += [(p, p.relative_to(path)) for p in find_images(path)]
        elif not path.exists() and glob.has_magic(item):
            found += [(Path(p), Path(Path(p).name)) for p in sorted(glob.glob(item, recursive=True))]
        else:
            found.append((path, Path(path.name)))
    return found


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def output_path(source: Path, relative: Path, out: Path | None, single: bool, name: str) -> Path:
    """Images keep their format; videos become .mp4 (H.264)."""
    if out is not None and single and out.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
        return out
    folder = out if out is not None else DEFAULT_OUT
    suffix = ".mp4" if is_video(source) else source.suffix.lower()
    return folder / relative.parent / f"{source.stem}_{name}{suffix}"


def check_target(target: Path, planned: set[Path], overwrite: bool) -> None:
    """Raises InputError for an output that exists (without `overwrite`) or that another input
    of this run already writes."""
    if target in planned:
        raise InputError(f"output {target} would be written twice (inputs with the same name)")
    if target.exists() and not overwrite:
        raise InputError(f"output {target} exists (pass --overwrite to replace it)")


def save_image(image: Image.Image, path: Path) -> None:
    """Never a half-written image: see fast_style.atomic."""
    fmt = Image.registered_extensions()[path.suffix.lower()]
    if image.mode == "RGBA" and fmt in ("JPEG", "BMP"):  # no alpha in these formats: flatten on white
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    with atomic_write(path) as tmp:
        image.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))


def load_input(path: Path, max_pixels: int) -> Image.Image:
    if not path.exists():
        raise InputError("file not found")
    if path.is_dir():
        raise InputError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)")
    try:
        return open_image(path, max_pixels)
    except ImageTooLarge as e:
        raise InputError(f"refused: {e}") from None
    except UnidentifiedImageError:
        raise InputError("not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot be decoded: truncated or corrupt ({e})") from None
