"""The public-domain paintings fast_style ships, one per `conf/style/*.yaml`."""

from __future__ import annotations

from pathlib import Path

STYLES_DIR = Path(__file__).parent


def bundled_styles() -> list[str]:
    return sorted(p.stem for p in STYLES_DIR.glob("*.jpg"))


def style_image_path(image: str) -> Path:
    """A path as given if it exists, else a painting bundled with the package."""
    path = Path(image).expanduser()
    if path.is_file():
        return path
    bundled = STYLES_DIR / path.name
    if bundled.is_file():
        return bundled
    raise FileNotFoundError(f"{image}: style image not found (bundled styles: {', '.join(bundled_styles())})")


def find_painting(image: str, folder: str | Path | None = None) -> Path:
    """A gallery's painting as its record names it: that path, else the file of that name in
    `folder` (the paintings have moved since training), else a bundled painting."""
    path = Path(image).expanduser()
    moved = Path(folder).expanduser() / path.name if folder is not None else None
    if not path.is_file() and moved is not None and moved.is_file():
        return moved
    return style_image_path(image)
