"""A preview sheet: one photo in many styles, labelled, so a style can be picked by eye."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from fast_style.stylizer import Stylizer

LABEL, GAP = 24, 8  # pixels


def make_sheet(photo: Image.Image, models: dict[str, Path], tile: int = 384, **stylizer_options: str | None) -> Image.Image:
    """The photo (longest side `tile`), then the photo in each model, side by side."""
    image = photo.convert("RGB")
    image.thumbnail((tile, tile))
    tiles = [("photo", image)]
    tiles += [(name, Stylizer.load(path, **stylizer_options)(image)) for name, path in models.items()]
    sheet = Image.new("RGB", (len(tiles) * (image.width + GAP) - GAP, image.height + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, picture) in enumerate(tiles):
        x = i * (image.width + GAP)
        sheet.paste(picture, (x, LABEL))
        draw.text((x + 4, 4), name, fill="black", font_size=16)
    return sheet
