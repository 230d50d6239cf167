"""Which files a `stylize` run reads and writes: inputs expanded and checked, outputs named and
saved whole (fast_style.atomic), never over an existing file unless asked."""

from __future__ import annotations

import glob
import io
import itertools
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from fast_style.atomic import atomic_write, cut_to_fit
from fast_style.images import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ImageTooLarge, find_images, is_mpeg_stream, is_one_of,
                               on_white, open_image, tiff_pages)

DEFAULT_OUT = Path("stylized")
VIDEO_OUTPUTS = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".gif", ".webp")  # H.264 but for the last three
KEPT_VIDEO_FORMATS = (".webm", ".gif")  # a video's output keeps these formats; the others become .mp4
ANIMATIONS = (".webp", ".png", ".gif")  # what Pillow reads and writes animated (fast_style.animation)
PICTURES_AND_VIDEOS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
QUALITY = 95  # JPEG, WebP, HEIC and AVIF outputs
PIPE_BYTES = 2**30  # the most read from a pipe named as an input (a picture compresses to less)
# HEIC's and AVIF's encoders at their fast settings: a 12-megapixel photo in seconds, not a minute
# (x265's default preset, `slow`, took 62 s here; libavif's default speed 6, 7.5 s), at the same size
FAST_ENCODE: dict[str, dict] = {"HEIF": {"enc_params": {"preset": "ultrafast"}}, "AVIF": {"speed": 8}}
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")  # a scheme: https://, s3://


def url_refused(text: str) -> str | None:
    """What to say of a URL given for a file: a path of it lost a slash (`https:/host/x.jpg`),
    was then "not found", and a painting's URL ending in wave.jpg trained on the bundled wave.jpg."""
    if _URL.match(text) and not Path(text).exists():
        return f"{text}: a URL; fast_style reads files and folders: download it first"
    return None


class InputError(Exception):
    """One input that cannot be stylized; reported in one line, the others go on."""


def expand_inputs(inputs: list[str], out: Path | None = None) -> list[tuple[Path, Path]]:
    """(file, its path relative to the folder it was found in): folders recurse (photos and
    videos), globs expand. A folder's walk leaves out a subfolder `out` (default ./stylized): with
    the outputs inside the input folder, each run stylized the last one's outputs again."""
    found, out = [], out or DEFAULT_OUT
    for item in inputs:
        path = Path(item)
        if path.is_dir() and path.suffix.lower() not in IMAGE_EXTENSIONS:
            files = find_images(path, PICTURES_AND_VIDEOS)
            files = files if out.resolve() == path.resolve() else outside(files, out)  # -o the folder itself: beside
            found += [(p, p.relative_to(path)) for p in files]
        elif not path.exists() and glob.has_magic(item):
            found += _globbed(path, out)
        else:
            found.append((path, Path(path.name)))
    return found


def _globbed(pattern: Path, out: Path) -> list[tuple[Path, Path]]:
    """What the shell's expansion of `pattern` would give, each folder walked, but only pictures
    and videos (`'holidays/**'` took each folder for a picture and failed on notes.txt), relative
    to the pattern's fixed part, so that the structure is kept as for a folder."""
    base = Path(*itertools.takewhile(lambda part: not glob.has_magic(part), pattern.parts))
    found: dict[Path, Path] = {}
    walked: list[Path] = []
    for match in map(Path, sorted(glob.glob(str(pattern), recursive=True))):  # a folder before what is in it
        if any(folder in match.parents for folder in walked):
            continue  # `**` matches a folder and everything in it: each walked and checked once
        if match.is_dir():
            files = find_images(match, PICTURES_AND_VIDEOS)
            walked.append(match)
        else:
            files = [match] if is_one_of(match, PICTURES_AND_VIDEOS) else []
        found |= {p: p.relative_to(base) for p in outside(files, out)}
    return list(found.items())


def outside(files: list[Path], folder: Path) -> list[Path]:
    """The files not under `folder`."""
    folder = folder.resolve()
    return [p for p in files if folder not in p.resolve().parents]


def is_video(path: Path) -> bool:
    """By the name, but for GIFs: a still one is a picture, an animated one a video, unless it has
    transparency (an animation: fast_style.animation keeps it). A name without a suffix of ours
    (`clip`, a download) by the file's first bytes."""
    suffix = path.suffix.lower()
    if suffix not in PICTURES_AND_VIDEOS and path.is_file():
        try:
            with open(path, "rb") as f:
                return _looks_like_video(f.read(200))
        except OSError:
            return False  # reported as the input it cannot read
    if suffix == ".gif" and path.is_file():
        try:
            with Image.open(path) as im:
                return getattr(im, "is_animated", False) and "transparency" not in im.info
        except (OSError, SyntaxError, ValueError):
            return False  # reported as the picture it cannot decode
    return suffix in VIDEO_EXTENSIONS


def is_animation(path: Path) -> bool:
    """An animated WebP or PNG (APNG), or a GIF with transparency: fast_style.animation, not a
    still of its first frame."""
    suffix = path.suffix.lower()
    if suffix not in ANIMATIONS or not path.is_file():
        return False
    try:
        with Image.open(path) as im:
            return getattr(im, "is_animated", False) and (suffix != ".gif" or "transparency" in im.info)
    except (OSError, SyntaxError, ValueError):
        return False  # reported as the picture it cannot decode


def check_output_kind(source: Path, out: Path) -> None:
    """InputError before anything loads where `-o FILE` cannot hold what `source` gives: a picture
    is not written as a video. A new name with another suffix (`-o portrait.heic`) is a mistake,
    not a folder to make."""
    suffix, video = out.suffix.lower(), is_video(source)
    if suffix and suffix not in IMAGE_EXTENSIONS + VIDEO_OUTPUTS and not out.is_dir():
        raise InputError(f"{out}: {suffix} is not a format stylize writes (pictures: {' '.join(IMAGE_EXTENSIONS)}; "
                         f"videos: {' '.join(VIDEO_OUTPUTS)}); a folder of that name must exist first")
    if video and suffix in IMAGE_EXTENSIONS and suffix not in VIDEO_OUTPUTS:
        raise InputError(f"{out}: {source.name} is a video, written as {' '.join(VIDEO_OUTPUTS)}, not {suffix}")
    if suffix and suffix not in ANIMATIONS and not out.is_dir() and is_animation(source):
        raise InputError(f"{out}: {source.name} is animated, written as {' '.join(ANIMATIONS)} (animated), not {suffix}")
    if suffix and suffix not in (".tif", ".tiff") and not out.is_dir() and (pages := tiff_pages(source)) > 1:
        raise InputError(f"{out}: {source.name} has {pages} pages, written as .tif .tiff (every page), not {suffix}")
    if not video and suffix in VIDEO_EXTENSIONS and suffix != ".gif":
        raise InputError(f"{out}: {source.name} is a picture, written as {' '.join(IMAGE_EXTENSIONS)} or .gif, not {suffix}")


def too_many_pixels(width: int, height: int, sides: dict[str, int | None], max_pixels: int) -> str | None:
    """Why the picture an option (`--size`: the network's; `--output-size`: the output's) would make
    of width x height is refused, if it is: `--size 30000`, a typo, would run for hours in tiles."""
    for option, side in sides.items():
        pixels = width * height * (side / max(width, height)) ** 2 if side else 0
        if pixels > max_pixels:
            return (f"refused: {option} {side} makes it {pixels / 1e6:.3g} megapixels, above the limit of "
                    f"{max_pixels / 1e6:g} (--max-pixels)")
    return None


def output_path(source: Path, relative: Path, out: Path | None, single: bool, name: str) -> Path:
    """Images keep their format, and so do GIFs and WebM videos; other videos become .mp4 (H.264)."""
    if out is not None and single and out.suffix.lower() in PICTURES_AND_VIDEOS:
        return out
    folder = out if out is not None else DEFAULT_OUT
    if is_video(source):
        suffix = source.suffix.lower() if source.suffix.lower() in KEPT_VIDEO_FORMATS else ".mp4"
    else:
        suffix = picture_suffix(source)
    return folder / relative.parent / f"{cut_to_fit(source.stem, f'_{name}{suffix}')}_{name}{suffix}"


WRITTEN_AS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
              "HEIF": ".heic", "AVIF": ".avif", "GIF": ".gif"}  # a picture's format -> its output's suffix


def picture_suffix(source: Path) -> str:
    """The suffix a picture's output takes: its own, or where its name has none of ours (`photo`,
    a download; `shot.jpg.bak`) its format's, from its header; such a name was a KeyError from the
    writer. PNG for formats stylize does not write, and for a pipe (`<(curl ...)`), which cannot
    be read twice."""
    if (suffix := source.suffix.lower()) in IMAGE_EXTENSIONS + (".gif",):
        return suffix
    try:
        if source.is_file():
            with Image.open(source) as im:
                return WRITTEN_AS.get(im.format or "", ".png")
    except (OSError, SyntaxError, ValueError):
        pass  # reported as the input it cannot read
    return ".png"


def check_target(target: Path, planned: set[Path], overwrite: bool, source: Path | None = None) -> None:
    """Raises InputError for an output that exists (without `overwrite`), that another input
    of this run already writes, or that is the input itself."""
    if source is not None and is_source(source, target):
        raise InputError(f"output {target} is the input itself: stylize never writes over its input (-o another name)")
    if target in planned:
        raise InputError(f"output {target} would be written twice (inputs with the same name)")
    if target.exists() and not overwrite:
        raise InputError(f"output {target} exists (pass --overwrite to replace it)")


def is_source(source: str | Path, target: str | Path) -> bool:
    """The same file, by name or through a link: `-o clip.mp4 --overwrite` replaced the clip with its
    stylized copy, the original lost."""
    source, target = Path(source), Path(target)
    return source.resolve() == target.resolve() or (source.exists() and target.exists() and source.samefile(target))


def save_image(image: Image.Image, path: Path, exif: bytes | None = None, overwrite: bool = True,
               pages: Iterator[Image.Image] | None = None) -> None:
    """Never a half-written image: see fast_style.atomic. `exif`: the input's, as open_image kept
    it (fast_style.images.kept_exif). `overwrite=False`: a file of that name is kept, even one made
    while this one was encoded. `pages`: a TIFF's after the first, each written as it comes."""
    try:
        with atomic_write(path, replace=overwrite) as tmp:
            _save(image, tmp, Image.registered_extensions()[path.suffix.lower()], exif=exif, pages=pages)
    except OSError as e:
        if e.errno is None:  # a message of its own (Pillow's, atomic_write's)
            raise
        raise OSError(f"cannot write {path} ({e.strerror})") from None  # a full disk was "[Errno 28] No space ..."


def encode_image(image: Image.Image, fmt: str, quality: int = QUALITY, exif: bytes | None = None) -> bytes:
    """The whole file in memory (for stdout: written at once, or not at all)."""
    buffer = io.BytesIO()
    _save(image, buffer, fmt, quality, exif)
    return buffer.getvalue()


def _save(image: Image.Image, target: Path | io.BytesIO, fmt: str, quality: int = QUALITY,
          exif: bytes | None = None, pages: Iterator[Image.Image] | None = None) -> None:
    if image.mode == "RGBA" and fmt in ("JPEG", "BMP"):  # no alpha in these formats: flatten on white
        image = on_white(image)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP", "HEIF", "AVIF") else {}
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"):  # BMP and GIF have no EXIF
        options["exif"] = exif
    if pages is not None:  # a page at a time: a scanned document of any length is never held whole
        tiff = TiffImagePlugin.AppendingTiffWriter(target, new=True)
        try:
            with tiff:
                for page in itertools.chain([image], pages):
                    page.save(tiff, format="TIFF", **(options if page is image else {}))
                    tiff.newFrame()
        finally:  # Pillow's close leaves the writer's own BytesIO open: when collected it closed again, on
            io.BytesIO.close(tiff)  # the closed file, and Python 3.13 printed that traceback after every TIFF
        return
    image.save(target, format=fmt, **options, **FAST_ENCODE.get(fmt, {}))


def image_format(name: str) -> str:
    """PIL's format for a format name or a file suffix (`png`, `.jpg`); InputError if none."""
    key = name.lower() if name.startswith(".") else f".{name.lower()}"
    fmt = Image.registered_extensions().get(key)
    if fmt is None or key not in IMAGE_EXTENSIONS:
        raise InputError(f"unknown image format {name!r} (formats: {', '.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    return fmt


def load_input(path: Path, max_pixels: int, page: int = 0) -> Image.Image:
    """`page`: of a TIFF of several (images.tiff_pages)."""
    if not path.exists():
        raise InputError("file not found")
    if path.is_dir():
        raise InputError("is a directory, not an image")
    if not path.is_file():
        if not stat.S_ISFIFO(path.stat().st_mode):  # /dev/video0, where --live /dev/video0 was meant
            raise InputError("a device, not a picture file (a camera is read with --live)")
        with open(path, "rb") as pipe:  # `stylize <(curl -s URL)`, which said "empty file (0 bytes)": read once, whole
            data = pipe.read(PIPE_BYTES + 1)
        if len(data) > PIPE_BYTES:
            raise InputError(f"refused: more than {PIPE_BYTES / 2**20:.0f} MB from a pipe")
        return load_input_bytes(data, max_pixels)[0]
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)")
    return _decode(path, max_pixels, page)


def load_input_bytes(data: bytes, max_pixels: int) -> tuple[Image.Image, str | None]:
    """An image piped in (`stylize - ...`), and its format, to answer in the same one."""
    if not data:
        raise InputError("empty input (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
    except (UnidentifiedImageError, OSError):
        if _looks_like_video(data[:200]):  # piped as ffmpeg's output would be: said, not "not an image"
            raise InputError("a video: stdin takes one picture; give the video as a file (stylize clip.mp4 "
                             "-o out.mp4)") from None
        raise InputError("not an image file Pillow can read") from None
    return _decode(io.BytesIO(data), max_pixels), fmt


def _looks_like_video(head: bytes) -> bool:
    """MP4 and QuickTime (an `ftyp` box), Matroska and WebM (EBML), AVI, MPEG streams."""
    return (head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3") or
            (head.startswith(b"RIFF") and head[8:12] == b"AVI ") or is_mpeg_stream(head))


def _decode(source: Path | io.BytesIO, max_pixels: int, page: int = 0) -> Image.Image:
    try:
        return open_image(source, max_pixels, page)
    except ImageTooLarge as e:
        raise InputError(f"refused: {e}") from None
    except UnidentifiedImageError:
        raise InputError("not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot be decoded: truncated or corrupt ({e})") from None
