"""Every input to its output, as `stylize` runs files: images in same-size batches, videos one
by one, one image through a pipe; each input's fate reported (a line, or JSON for scripts).
A bad input is one line and the others go on; nothing is written half or over a file."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from fast_style.files import (InputError, check_target, is_animation, is_source, is_video, load_input, output_path,
                              save_image, too_many_pixels)
from fast_style.images import DEFAULT_MAX_PIXELS, scale_longest, tiff_pages

if TYPE_CHECKING:
    from fast_style.stylizer import Stylizer


class Report:
    """What became of each input, a line each: its output (failures on stderr), or with --json
    one JSON object a line on stdout, failures included, for scripts to follow a long run."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self._started: dict[str, float] = {}

    def start(self, source: Path | str) -> None:
        self._started[str(source)] = time.perf_counter()

    def done(self, source: Path | str, target: Path | str, detail: str = "", seconds: float | None = None,
             skipped: bool = False) -> None:
        """`seconds`: the input's own share of a batch; else the time since `start`. `skipped`: its
        output was there already (--skip-existing)."""
        if self.as_json:
            return self._line(source, target, None, seconds, skipped)
        print(f"{target}{detail}")

    def failed(self, source: Path | str, error: str) -> None:
        error = " ".join(error.split())  # one line, whatever the decoder's message (libheif's ends in a newline)
        print(f"error: {source}: {error}", file=sys.stderr)
        if self.as_json:
            self._line(source, None, error)

    def _line(self, source: Path | str, target: Path | str | None, error: str | None,
              seconds: float | None = None, skipped: bool = False) -> None:
        started = self._started.pop(str(source), None)
        if seconds is None and started is not None:
            seconds = time.perf_counter() - started
        seconds = round(seconds, 4) if seconds is not None else None
        print(json.dumps({"input": str(source), "output": None if target is None else str(target),
                          "seconds": seconds, "error": error, "skipped": skipped}), flush=True)


def stylize_pipe(stylizer: Stylizer, source: str, target: Path, fmt: str | None, options: Options) -> int:
    """One image: from stdin (`-`) or a file, to stdout (`-o -`) or a file; the output is
    encoded whole before a byte is written, so a failure leaves no half image behind."""
    from fast_style.files import encode_image, image_format, load_input_bytes, picture_suffix

    report, name = options.report, "stdin" if source == "-" else source
    report.start(name)
    try:
        if source == "-":
            image, in_format = load_input_bytes(sys.stdin.buffer.read(), options.max_pixels)
        else:
            image, in_format = load_input(Path(source), options.max_pixels), image_format(picture_suffix(Path(source)))
        _check_scaled(image, options)
        out_format = image_format(fmt) if fmt else image_format(target.suffix) if target != Path("-") else in_format
        if target != Path("-"):
            check_target(target, set(), options.overwrite, None if source == "-" else Path(source))
        if options.output_size:
            image = scale_longest(image, options.output_size)
        result = stylizer.stylize_batch([image], options.size)[0]
        if target == Path("-"):
            sys.stdout.buffer.write(encode_image(result, out_format, exif=image.info.get("exif")))
            sys.stdout.buffer.flush()
            return 0
        save_image(result, target, image.info.get("exif"), options.overwrite)
    except BrokenPipeError:  # stdout's reader went away: not the picture's failure (fast_style.stylize.main)
        raise
    except (InputError, OSError, RuntimeError) as e:  # OSError: a full disk, the output made meanwhile
        report.failed(name, str(e).splitlines()[0])
        return 1
    report.done(name, target)
    return 0


@dataclass(frozen=True)
class Options:
    """What stylize_files needs of the command line."""

    size: int | None
    output_size: int | None
    batch_size: int
    max_pixels: int
    overwrite: bool
    report: Report
    skip_existing: bool = False  # an input whose output exists is left, and said so


@dataclass(frozen=True)
class VideoOptions:
    size: int | None  # the network's working size
    output_size: int | None  # the output's longest side
    batch_size: int
    max_frames: int | None
    grid_lock: bool = True  # the network's grid follows the scene (fast_style.motion)
    max_pixels: int = DEFAULT_MAX_PIXELS  # for what --size and --output-size make of a frame
    max_fps: float | None = None  # --fps: frames beyond so many a second dropped
    denoise: bool = False  # a camera's noise filtered out before the network (fast_style.denoise)
    crf: int | None = None  # the encoder's quality (fast_style.encoders); None: its default
    overwrite: bool = False  # --overwrite: else a file of the output's name is kept, even one made meanwhile


def stylize_files(stylizer: Stylizer, inputs: list[tuple[Path, Path]], out: Path | None,
                  options: Options, video: VideoOptions) -> int:
    """Every input to its output, each failure one line; 1 if any failed. Images are grouped by
    size into batches here, the one place that batches, so the network gets each batch as it is."""
    single = len(inputs) == 1
    failures = 0
    planned: set[Path] = set()
    told = False
    for group in _batches(stylizer, inputs, out, single, options, video, planned):
        if isinstance(group, list) and stylizer.compiles and not told:  # else a folder looks hung
            print(COMPILE_NOTE, file=sys.stderr)
            told = True
        failures += group if isinstance(group, int) else _write_batch(stylizer, group, options)
    if failures:
        print(f"{failures} of {len(inputs)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


Job = tuple[Path, Image.Image, Path]  # (source, image, target)
COMPILE_NOTE = ("note: int8 and --compile make the network anew for each image size, seconds each; "
                "images of one size share it (for photos of many sizes the default precision is faster)")


def _batches(stylizer: Stylizer, inputs: list[tuple[Path, Path]], out: Path | None, single: bool,
             options: Options, video: VideoOptions, planned: set[Path]) -> Iterator[list[Job] | int]:
    """Batches of same-size images to stylize, or the number of inputs that already failed (bad
    inputs, videos done on the way). At most twice `batch_size` decoded images are held at a time."""
    pending: dict[tuple[int, int], list[Job]] = {}
    report = options.report
    for source, relative in inputs:
        report.start(source)
        target = output_path(source, relative, out, single, stylizer.name)
        if options.skip_existing and target.exists() and target not in planned and not is_source(source, target):
            report.done(source, target, " (exists; skipped)", seconds=0, skipped=True)
            yield 0
            continue
        try:
            check_target(target, planned, options.overwrite, source)
        except InputError as e:
            report.failed(source, str(e))
            yield 1
            continue
        planned.add(target)
        if is_video(source) and source.is_file():
            yield stylize_one_video(stylizer, str(source), target, video, report)
            continue
        if is_animation(source):
            yield _stylize_one_animation(stylizer, source, target, video, report)
            continue
        if (pages := tiff_pages(source)) > 1:
            yield _stylize_pages(stylizer, source, target, pages, options)
            continue
        try:
            image = load_input(source, options.max_pixels)
            _check_scaled(image, options)
        except InputError as e:
            report.failed(source, str(e))
            yield 1
            continue
        if options.output_size:
            image = scale_longest(image, options.output_size)
        group = pending.setdefault(image.size, [])
        group.append((source, image, target))
        if len(group) == options.batch_size:
            yield pending.pop(image.size)
        elif sum(len(g) for g in pending.values()) >= 2 * options.batch_size:  # many sizes: memory stays bounded
            yield from pending.values()
            pending.clear()
    yield from pending.values()


def _check_scaled(image: Image.Image, options: Options) -> None:
    sides = {"--size": options.size, "--output-size": options.output_size}
    if reason := too_many_pixels(image.width, image.height, sides, options.max_pixels):
        raise InputError(reason)


def _write_batch(stylizer: Stylizer, jobs: list[Job], options: Options) -> int:
    """Stylize one same-size batch and save it; the number of inputs that failed."""
    start = time.perf_counter()
    try:
        outputs: list = stylizer.stylize_batch([image for _, image, _ in jobs], options.size)
    except (RuntimeError, ValueError) as e:  # out of memory, a photo too small for --optimize's VGG: these fail, the others go on
        outputs = [e] * len(jobs)
    share = (time.perf_counter() - start) / len(jobs)
    failed = 0
    for output, (source, image, target) in zip(outputs, jobs):
        try:
            if isinstance(output, Exception):
                raise InputError(f"stylizing failed ({str(output).splitlines()[0]})")
            saving = time.perf_counter()
            save_image(output, target, image.info.get("exif"), options.overwrite)
        except (InputError, OSError, ValueError) as e:
            options.report.failed(source, str(e))
            failed += 1
            continue
        options.report.done(source, target, seconds=share + time.perf_counter() - saving)  # a closed stdout is no file's fault
    return failed


def _stylize_pages(stylizer: Stylizer, source: Path, target: Path, pages: int, options: Options) -> int:
    """A TIFF of several pages (a scanned document, a fax): every page at its own size, into one
    TIFF written a page at a time; 1 if it failed (reported in one line), else 0. Until session 53
    the first page alone was written, and the others were dropped, unsaid."""

    def page(number: int) -> Image.Image:
        image = load_input(source, options.max_pixels, number)
        _check_scaled(image, options)
        return scale_longest(image, options.output_size) if options.output_size else image

    try:
        first = page(0)
        rest = (stylizer.stylize_batch([page(n)], options.size)[0] for n in range(1, pages))
        save_image(stylizer.stylize_batch([first], options.size)[0], target, first.info.get("exif"), options.overwrite,
                   pages=rest)
    except (InputError, OSError, RuntimeError, ValueError) as e:
        options.report.failed(source, str(e).strip().splitlines()[0])
        return 1
    options.report.done(source, target, f" ({pages} pages)")
    return 0


def _stylize_one_animation(stylizer: Stylizer, source: Path, target: Path, options: VideoOptions, report: Report) -> int:
    """1 if it failed (reported in one line), else 0."""
    from fast_style.animation import stylize_animation

    try:
        result = stylize_animation(stylizer, source, target, size=options.size, output_size=options.output_size,
                                   grid_lock=options.grid_lock, max_pixels=options.max_pixels, max_fps=options.max_fps,
                                   overwrite=options.overwrite)
    except (InputError, OSError, RuntimeError) as e:
        report.failed(source, str(e).strip().splitlines()[0])
        return 1
    report.done(source, target, f" ({result.frames} frames at {result.fps:.3g} fps)")
    return 0


def stylize_one_video(stylizer: Stylizer, source: str, target: Path, options: VideoOptions, report: Report,
                      input_format: str | None = None, input_options: dict[str, str] | None = None,
                      until: threading.Event | None = None) -> int:
    """1 if it failed (reported in one line), else 0. `until`: fast_style.video.stylize_video's."""
    from fast_style.video import VideoError, stylize_video

    try:
        result = stylize_video(stylizer, source, target, size=options.size, output_size=options.output_size,
                               batch_size=options.batch_size, input_format=input_format, input_options=input_options,
                               max_frames=options.max_frames,
                               grid_lock=options.grid_lock, max_pixels=options.max_pixels, max_fps=options.max_fps,
                               denoise=options.denoise, crf=options.crf, overwrite=options.overwrite, until=until)
    except (VideoError, OSError, RuntimeError) as e:  # RuntimeError: out of memory and the like; the next input goes on
        report.failed(source, str(e).strip().splitlines()[0])
        return 1
    audio = f", audio {result.audio}" if result.audio else ""
    report.done(source, target, f" ({result.frames} frames at {result.fps:g} fps{audio})")
    return 0
