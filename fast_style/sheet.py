"""A preview sheet: one photo in many styles, labelled, so a style can be picked by eye."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

LABEL, GAP = 24, 8  # pixels


def make_sheet(photo: Image.Image, styles: dict[str, Callable[[Image.Image], Image.Image]], tile: int = 384) -> Image.Image:
    """The photo (longest side `tile`), then the photo in each style, side by side."""
    image = photo.convert("RGB")
    image.thumbnail((tile, tile))
    tiles = [("photo", image)] + [(name, stylize(image)) for name, stylize in styles.items()]
    sheet = Image.new("RGB", (len(tiles) * (image.width + GAP) - GAP, image.height + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, picture) in enumerate(tiles):
        x = i * (image.width + GAP)
        sheet.paste(picture, (x, LABEL))
        draw.text((x + 4, 4), name, fill="black", font_size=16)
    return sheet
