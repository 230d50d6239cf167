"""`stylize --model FILE INPUT... [-o OUT]`: stylize images, folders, globs and video files,
or a live source, one forward pass per image or frame."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fast_style.atomic import atomic_write
from fast_style.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ImageTooLarge,
    find_images,
    open_image,
)
from fast_style.model_file import ModelFileError

CHECKPOINT_DIRS = [
    Path.cwd() / "checkpoints",
    Path(__file__).parent / "checkpoints",  # inside an installed wheel
    Path(__file__).parent.parent / "checkpoints",  # a source checkout
]
DEFAULT_OUT = Path("stylized")
IMAGE_BATCH = 4  # same-size images per pass; video has its own default (stylize_video)


class InputError(Exception):
    """One input that cannot be stylized; reported in one line, the others go on."""


def shipped_models() -> dict[str, Path]:
    """Every checkpoints/NAME.safetensors, the first of CHECKPOINT_DIRS winning."""
    found: dict[str, Path] = {}
    for folder in reversed(CHECKPOINT_DIRS):
        if folder.is_dir():
            found.update({p.stem: p for p in folder.glob("*.safetensors")})
    return dict(sorted(found.items()))


def named_model(name: str) -> Path:
    for folder in CHECKPOINT_DIRS:
        if (folder / f"{name}.safetensors").is_file():
            return folder / f"{name}.safetensors"
    raise ModelFileError(f"no trained model named {name!r} (available: {', '.join(shipped_models()) or 'none'})")


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


def save_atomic(image: Image.Image, path: Path) -> None:
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="stylize", description=__doc__)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", type=Path, help="a .safetensors exported by train, or a Lightning .ckpt")
    which.add_argument("--style", help="a model in checkpoints/: checkpoints/NAME.safetensors")
    which.add_argument("--sheet", action="store_true", help="one labelled image of the input in every shipped style (needs -o)")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files, folders of images (recursive), globs")
    p.add_argument("-o", "--output", type=Path, help="output file (one input) or folder (default: ./stylized)")
    p.add_argument("--size", type=int, help="run the network with the longest side scaled to this; output keeps the input size")
    p.add_argument("--device", help="cuda, mps or cpu (default: the first available, in that order)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default="auto",
                   help="auto (default): for images, bf16 where the hardware runs it fast (AVX512-bf16 CPUs, CUDA), "
                        "within a mean of 2/255 of fp32; fp16 on CUDA without bf16; else fp32. For videos and live "
                        "sources, int8 on x86 CPUs (the same losses and flicker as fp32), else compiled. "
                        "int8: x86 CPUs, within a mean of 4/255")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (and CUDA graphs on CUDA): faster frames after a slow first one per "
                        "frame size; for long videos and live use")
    p.add_argument("--strength", type=float, default=1.0,
                   help="0..1: how much of the style (default 1); a variance-preserving blend with the photo, not a washed-out mix")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours: only the luminance is stylized")
    p.add_argument("--batch-size", type=int, help=f"same-size images (default: {IMAGE_BATCH}) or video frames (default: 1) stylized together")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--export", type=Path, metavar="FILE", help="write the network as FILE.onnx or FILE.pt (TorchScript), batch, height and width free, and exit")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images with more pixels than this (default {DEFAULT_MAX_PIXELS:,}; guards against decompression bombs)")
    gatys = p.add_argument_group("optimisation (Gatys et al. 2016): slow, the quality reference")
    gatys.add_argument("--optimize", action="store_true", help="optimise each image against --style-image instead of using a network")
    gatys.add_argument("--style-image", type=Path, help="the painting for --optimize")
    gatys.add_argument("--style-size", type=int, default=512, help="longest side of the painting for its Gram matrices (default 512, as in training)")
    gatys.add_argument("--steps", type=int, default=300, help="loss evaluations (default 300)")
    gatys.add_argument("--method", choices=["lbfgs", "adam"], default="lbfgs")
    gatys.add_argument("--vgg-weights", default="imagenet", help="imagenet (torchvision's cache), a .pth file, or random (tests only)")
    p.add_argument("--live", metavar="SOURCE",
                   help="a live source for PyAV: a camera (/dev/video0) or a stream URL; shown in a window, or written to -o OUT.mp4")
    p.add_argument("--live-format", metavar="FMT", help="PyAV/FFmpeg input format of --live: v4l2 (Linux camera), avfoundation, dshow, lavfi")
    p.add_argument("--frames", type=int, help="stop after this many frames (video and --live)")
    args = p.parse_args(argv)
    if args.optimize != (args.style_image is not None) or (args.optimize and (args.model or args.style)):
        p.error("--optimize takes --style-image (and no --model or --style)")
    if not args.optimize and not (args.model or args.style or args.sheet):
        p.error("one of --model, --style, --sheet or --optimize is required")
    if args.sheet and (len(args.inputs) != 1 or args.output is None):
        p.error("--sheet takes one photo and -o SHEET.png")
    if args.export is not None:
        if args.inputs or args.live or not (args.model or args.style):
            p.error("--export takes --model or --style and no inputs")
    elif bool(args.inputs) == bool(args.live):
        p.error("give INPUT files or --live SOURCE (one of the two)")
    if args.live and args.output is not None and not is_video(args.output):
        p.error("--live writes a video (-o OUT.mp4) or, without -o, shows a window")
    if args.size is not None and args.size < 1:
        p.error("--size must be a positive number of pixels")
    if not 0 <= args.strength <= 1:
        p.error("--strength must be between 0 and 1")
    if args.batch_size is not None and args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Image.MAX_IMAGE_PIXELS = None  # our own limit, checked before decoding, replaces Pillow's
    from fast_style.stylizer import Stylizer  # torch loads after argument errors are reported

    if args.sheet:
        return write_sheet(Path(args.inputs[0]), args)
    inputs = expand_inputs(args.inputs)
    if args.inputs and not inputs:
        print(f"error: {' '.join(args.inputs)}: no images found", file=sys.stderr)
        return 1
    try:
        if args.optimize:
            args.batch_size = 1
            stylizer = gatys_stylizer(args)
        else:
            precision, compile = args.precision, args.compile
            if precision == "auto" and (args.live or inputs and all(is_video(source) for source, _ in inputs)):
                precision, compile = stream_defaults(args.device, compile)
            stylizer = Stylizer.load(args.model or named_model(args.style), device=args.device, precision=precision,
                                     strength=args.strength, preserve_color=args.preserve_color, compile=compile)
    except (ModelFileError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.export is not None:
        return export(stylizer, args.export, args.overwrite)
    if args.live and args.output is None:
        return show_live(stylizer, args)
    if args.live:
        return stylize_one_video(stylizer, args.live, args.output, args, input_format=args.live_format)
    single = len(inputs) == 1
    failures = 0
    planned: set[Path] = set()
    pending: list[tuple[Path, Image.Image, Path]] = []  # (source, image, target)

    def flush() -> int:
        """Stylize and save what is pending; the number of inputs that failed."""
        try:
            outputs = stylizer.stylize_images([image for _, image, _ in pending], args.size)
        except RuntimeError as e:  # e.g. out of memory: these inputs fail, the others go on
            outputs = [e] * len(pending)
        failed = 0
        for output, (source, _, target) in zip(outputs, pending):
            try:
                if isinstance(output, Exception):
                    raise InputError(f"stylizing failed ({str(output).splitlines()[0]})")
                save_atomic(output, target)
                print(target)
            except (InputError, OSError, ValueError) as e:
                print(f"error: {source}: {e}", file=sys.stderr)
                failed += 1
        pending.clear()
        return failed

    for source, relative in inputs:
        target = output_path(source, relative, args.output, single, stylizer.name)
        if is_video(source) and source.is_file():
            if target in planned:
                print(f"error: {source}: output {target} would be written twice (inputs with the same name)", file=sys.stderr)
                failures += 1
            elif target.exists() and not args.overwrite:
                print(f"error: {source}: output {target} exists (pass --overwrite to replace it)", file=sys.stderr)
                failures += 1
            else:
                failures += stylize_one_video(stylizer, str(source), target, args)
                planned.add(target)
            continue
        try:
            if target in planned:
                raise InputError(f"output {target} would be written twice (inputs with the same name)")
            if target.exists() and not args.overwrite:
                raise InputError(f"output {target} exists (pass --overwrite to replace it)")
            pending.append((source, load_input(source, args.max_pixels), target))
            planned.add(target)
        except InputError as e:
            print(f"error: {source}: {e}", file=sys.stderr)
            failures += 1
        if len(pending) >= (args.batch_size or IMAGE_BATCH):
            failures += flush()
    if pending:
        failures += flush()
    if failures:
        print(f"{failures} of {len(inputs)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def stream_defaults(device: str | None, compile: bool) -> tuple[str, bool]:
    """Videos and live sources only: the fastest path within tolerance (fast_style.hardware)."""
    import torch

    from fast_style.hardware import stream_path
    from fast_style.stylizer import default_device

    precision, compile_default = stream_path(torch.device(device) if device else default_device())
    return precision, compile or compile_default


def show_live(stylizer: "Stylizer", args: argparse.Namespace) -> int:  # noqa: F821
    from fast_style.live import DisplayError, has_display, show
    from fast_style.video import VideoError

    if not has_display():
        print("error: no display to show --live in (DISPLAY is not set); write it to a file with -o OUT.mp4", file=sys.stderr)
        return 2
    try:
        shown = show(stylizer, args.live, args.live_format, args.size, args.frames)
    except VideoError as e:
        print(f"error: {args.live}: {e}", file=sys.stderr)
        return 1
    except DisplayError as e:
        print(f"error: {e}; write it to a file with -o OUT.mp4", file=sys.stderr)
        return 2
    print(f"{args.live}: {shown} frames shown")
    return 0


def export(stylizer: "Stylizer", target: Path, overwrite: bool) -> int:  # noqa: F821
    from fast_style.export import export_network

    if target.exists() and not overwrite:
        print(f"error: {target} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    try:
        export_network(stylizer.net, target)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(target)
    return 0


def write_sheet(photo: Path, args: argparse.Namespace) -> int:
    from fast_style.sheet import make_sheet

    if args.output.exists() and not args.overwrite:
        print(f"error: {photo}: output {args.output} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    try:
        image = load_input(photo, args.max_pixels)
    except InputError as e:
        print(f"error: {photo}: {e}", file=sys.stderr)
        return 1
    from fast_style.model_file import read_model

    shipped = shipped_models()
    models = {}
    for name, path in shipped.items():
        painting = Path(read_model(path)[1].get("style_image", name)).stem
        if painting == name or painting not in shipped:  # not a variant (e.g. _small) of another shipped style
            models[name] = path
    save_atomic(make_sheet(image, models, args.size or 384, device=args.device, precision=args.precision), args.output)
    print(f"{args.output} ({len(models)} styles)")
    return 0


def gatys_stylizer(args: argparse.Namespace) -> "GatysStylizer":  # noqa: F821
    import torch

    from fast_style.images import load_style_image
    from fast_style.losses import PerceptualLoss
    from fast_style.optimize import GatysStylizer
    from fast_style.stylizer import default_device
    from fast_style.vgg import VGG16Features

    device = torch.device(args.device) if args.device else default_device()
    loss_fn = PerceptualLoss(VGG16Features(args.vgg_weights))  # the training defaults: content 1e5, style 1e10
    loss_fn.set_style(load_style_image(args.style_image, args.style_size))
    return GatysStylizer(loss_fn, args.style_image.stem, args.steps, args.method, device)


def stylize_one_video(stylizer: "Stylizer", source: str, target: Path, args: argparse.Namespace,  # noqa: F821
                      input_format: str | None = None) -> int:
    """1 if it failed (reported in one line), else 0."""
    from fast_style.video import VideoError, stylize_video

    try:
        batch = {"batch_size": args.batch_size} if args.batch_size else {}
        result = stylize_video(stylizer, source, target, size=args.size, input_format=input_format,
                               max_frames=args.frames, **batch)
    except (VideoError, OSError) as e:
        print(f"error: {source}: {e}", file=sys.stderr)
        return 1
    audio = f", audio {result.audio}" if result.audio else ""
    print(f"{target} ({result.frames} frames at {result.fps:g} fps{audio})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
