"""Animated WebP and PNG (APNG) and GIFs with transparency, a messenger's stickers and short
loops: read and written with Pillow, each frame through the network as a video's frames go (the
grid follows the motion), transparency and timing kept. FFmpeg reads no animated WebP, and the
video path drops alpha. Until session 29 a WebP or PNG came out as a still of its first frame,
and a GIF's transparent background white. An opaque GIF takes the video path
(fast_style.encoders), for FFmpeg's palettes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageSequence

from fast_style.atomic import atomic_write
from fast_style.files import ANIMATIONS, QUALITY, InputError, is_source, too_many_pixels
from fast_style.images import DEFAULT_MAX_PIXELS
from fast_style.stylizer import Stylizer
from fast_style.video import Pacing, VideoResult, check_counts, stylize_frames

HELD_PIXELS = 250_000_000  # every frame, in and out, RGBA: 2 GB


def stylize_animation(stylizer: Stylizer, source: str | Path, target: str | Path, size: int | None = None,
                      output_size: int | None = None, grid_lock: bool = True,
                      max_pixels: int = DEFAULT_MAX_PIXELS, max_fps: float | None = None,
                      overwrite: bool = True) -> VideoResult:
    """Every frame, held in memory (a sticker's few dozen; refused past HELD_PIXELS): Pillow
    writes an animation at once. `max_fps`: a frame dropped (Pacing) adds its delay to the one
    before, so the animation keeps its length. `overwrite=False`: FileExistsError if `target`
    exists when the animation is done."""
    check_counts(output_size=output_size, max_pixels=max_pixels)
    target = Path(target)
    if is_source(source, target):
        raise InputError(f"{target} is the source itself: written over, the original would be lost")
    if target.suffix.lower() not in ANIMATIONS:
        raise InputError(f"{target}: an animation is written as {' '.join(ANIMATIONS)}, not {target.suffix}")
    pace = Pacing(max_fps)  # its ValueError is not the file's
    try:
        with Image.open(source) as im:
            if reason := too_many_pixels(im.width, im.height, {"--size": size, "--output-size": output_size}, max_pixels):
                raise InputError(reason)
            loop, start = im.info.get("loop", 0), Fraction(0)
            frames: list[Image.Image] = []
            durations: list[int] = []
            scale = output_size / max(im.size) if output_size else 1.0
            shape = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            if (held := im.n_frames * shape[0] * shape[1]) > HELD_PIXELS:
                raise InputError(f"refused: {im.n_frames} frames of {shape[0]}x{shape[1]} are {held / 1e6:.3g} megapixels "
                                 f"to hold at once, above {HELD_PIXELS / 1e6:.3g}; --output-size makes them smaller")
            for frame in ImageSequence.Iterator(im):
                frame.load()  # WebP says a frame's duration once it is decoded
                duration = frame.info.get("duration", 100)
                kept = pace(start)  # by when it starts, in seconds
                start += Fraction(duration) / 1000
                if not kept:
                    durations[-1] += duration
                    continue
                durations.append(duration)
                alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
                frame = frame.convert("RGBA" if alpha else "RGB")
                frames.append(frame.resize(shape, Image.Resampling.LANCZOS) if scale != 1 else frame)
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(f"cannot be decoded: truncated or corrupt ({e})") from None
    painted = list(stylize_frames(stylizer, iter(frames), size=size, grid_lock=grid_lock))
    fmt = Image.registered_extensions()[target.suffix.lower()]
    # a GIF's frames each replace the last (disposal 2), or the transparent parts would show the one before
    options = {"WEBP": {"quality": QUALITY}, "GIF": {"disposal": 2}}.get(fmt, {})
    with atomic_write(target, replace=overwrite) as tmp:
        painted[0].save(tmp, format=fmt, save_all=True, append_images=painted[1:], duration=durations, loop=loop,
                        **options)
    return VideoResult(frames=len(painted), fps=1000 * len(durations) / max(1, sum(durations)), audio=None)
