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
