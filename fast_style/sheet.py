"""A preview sheet: one photo in many styles, labelled, so a style can be picked by eye."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

from fast_style.images import on_white, scale_longest

LABEL, GAP = 24, 8  # pixels
COLUMNS = 6  # tiles a row: a gallery's 16 styles make three rows, not one strip


def make_sheet(photo: Image.Image, styles: dict[str, Callable[[Image.Image], Image.Image]], tile: int = 384) -> Image.Image:
    """The photo (longest side `tile`), then the photo in each style, in rows of COLUMNS. A photo
    smaller than a tile is enlarged to it (its tiles were as small, their names cut to "…"), and
    transparency is flattened on white (the colours an editor left under it showed)."""
    image = scale_longest(on_white(photo), tile)
    tiles = [("photo", image)] + [(name, stylize(image)) for name, stylize in styles.items()]
    columns, rows = min(COLUMNS, len(tiles)), -(-len(tiles) // COLUMNS)
    w, h = image.width + GAP, image.height + LABEL + GAP
    sheet = Image.new("RGB", (columns * w - GAP, rows * h - GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, picture) in enumerate(tiles):
        x, y = (i % columns) * w, (i // columns) * h
        sheet.paste(picture, (x, y + LABEL))
        while len(name) > 1 and draw.textlength(name, font_size=16) > image.width - 8:  # a long name: cut to its tile
            name = name[:-2] + "…"
        draw.text((x + 4, y + 4), name, fill="black", font_size=16)
    return sheet
