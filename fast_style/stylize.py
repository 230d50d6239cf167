"""`stylize --model FILE INPUT... [-o OUT]`: stylize images, folders, globs and video files,
or a live source, one forward pass per image or frame.

This module reads the command line, refuses what does not apply, and hands each mode what it
needs: inputs to outputs (fast_style.outputs), shipped models (fast_style.models), the picture
pipeline (fast_style.stylizer), video (fast_style.video), the window (fast_style.live)."""

from __future__ import annotations

import argparse
import difflib
import functools
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from fast_style.config import PRECISION_NAMES, GatysConfig, LossConfig, StyleConfig
from fast_style.files import (PICTURES_AND_VIDEOS, VIDEO_OUTPUTS, InputError, check_output_kind, expand_inputs, is_animation, is_video, load_input,
                              save_image, url_refused)
from fast_style.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, own_pixel_limits
from fast_style.outputs import Options, Report, VideoOptions, stylize_files, stylize_one_video, stylize_pipe

# Only modules without torch above: importing it takes seconds, and --help or a refused command
# line answers at once. The rest is imported where a command needs it.
if TYPE_CHECKING:
    from fast_style.stylizer import Stylizer

IMAGE_BATCH = 4  # same-size images per pass; video frames go one at a time (fast_style.video)
SHOWN_FAILURES = 10  # a dataset run names this many failed images; the manifest has every one
PRECISION_CHOICES = ["auto", *PRECISION_NAMES]
GATYS_DEFAULTS = {"steps": GatysConfig.steps, "method": GatysConfig.method, "style_size": StyleConfig.size,
                  "vgg_weights": LossConfig.vgg_weights}


class Parser(argparse.ArgumentParser):
    """Refusals in one line: argparse put its usage, 17 lines of options, above each one, and
    named nothing for a mistyped option."""

    def error(self, message: str) -> NoReturn:
        if unknown := re.match(r"unrecognized arguments: (--?[^\s=]+)", message):
            near = difflib.get_close_matches(unknown[1], list(self._option_string_actions), n=1)
            message += f" (did you mean {near[0]}?)" if near else f" ({self.prog} --help lists the options)"
        self.exit(2, f"{self.prog}: error: {message}\n")


def user_path(text: str) -> Path:
    """A path as the shell would give it unquoted: a quoted `'~/photos/*.jpg'` (a glob, quoted as
    the README shows) matched nothing."""
    if refused := url_refused(text):
        raise argparse.ArgumentTypeError(refused)
    return Path(text).expanduser()


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="stylize", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=user_path, help="a .safetensors exported by train, or a Lightning .ckpt")
    p.add_argument("--style", help="a shipped style (stylize --list-styles), or a mix of one gallery's styles: "
                                   "'starry_night=0.6,wave=0.4' (or 'starry_night,wave': even parts); with --model, "
                                   "a style inside that file")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--list-styles", action="store_true", help="print every style the shipped models offer, one a line")
    which.add_argument("--sheet", action="store_true",
                       help="one labelled image of the input in every shipped style, or every style of --model FILE; "
                            "--style adds a tile of that style or mix (needs -o)")
    which.add_argument("--serve", action="store_true",
                       help="a local page: a photo, the webcam, a video file, with every shipped style (or --model FILE)")
    which.add_argument("--optimize", action="store_true",
                       help="Gatys et al. 2016: optimise each image against --style-image (slow, the quality reference; images only)")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image or video files, folders of them (recursive), globs; `-`: one image on stdin")
    p.add_argument("-o", "--output", type=user_path,
                   help="output file (one input) or folder (default: ./stylized); `-` writes the one image to stdout")
    p.add_argument("--format", help="the image format of `-o -` or of a piped input's output (default: the input's)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object a line on stdout per input: input, output, seconds, error (null when it worked), "
                        "skipped (--skip-existing)")
    p.add_argument("--size", type=int,
                   help="the network's working size: it sees the input with its longest side scaled to this "
                        "(bigger brush strokes, less time); the output keeps the input's size (see --output-size)")
    p.add_argument("--output-size", type=int, help="scale the output's longest side to this (images, videos, live)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the first available, in that order)")
    p.add_argument("--precision", choices=PRECISION_CHOICES,
                   help="auto (default): for images, bf16 on CPUs with AVX512-bf16 or AMX (within a mean of 2/255 "
                        "of fp32), fp16 on CUDA GPUs with tensor cores, else fp32. For videos and live "
                        "sources, int8 on x86 CPUs (the same losses and flicker as fp32), else compiled. "
                        "int8: x86 CPUs, within a mean of 4/255")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (and CUDA graphs on CUDA): faster frames after a slow first one per "
                        "frame size; for long videos and live use")
    p.add_argument("--strength", type=float,
                   help="0..1: how much of the style (default 1); a variance-preserving blend with the photo, not a washed-out mix")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours: only the luminance is stylized")
    p.add_argument("--batch-size", type=int, help=f"same-size images (default: {IMAGE_BATCH}) or video frames (default: 1) stylized together")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave the inputs whose output exists, with a line each: the same command goes on after an "
                        "interruption")
    p.add_argument("--export", type=user_path, metavar="FILE", help="write the network as FILE.onnx or FILE.pt (TorchScript), batch, height and width free, and exit")
    p.add_argument("--max-pixels", type=int,
                   help=f"refuse images with more pixels than this (default {DEFAULT_MAX_PIXELS:,}; guards against decompression bombs), "
                        "and images or frames that --size or --output-size would make larger")
    p.add_argument("--style-image", type=user_path, action="append",
                   help="any painting, in one pass through the arbitrary-style network (checkpoints/any.safetensors, "
                        "or --model FILE); twice, with --mix, a mix of two; with --optimize, the painting to optimise towards")
    p.add_argument("--mix", type=float, metavar="W",
                   help="with two --style-image: the second painting's share, 0..1 (the first has 1 - W)")
    gatys = p.add_argument_group("optimisation (--optimize)")
    gatys.add_argument("--style-size", type=int,
                       help=f"longest side of the painting for its Gram matrices (default {StyleConfig.size}, as in training)")
    gatys.add_argument("--steps", type=int, help=f"loss evaluations (default {GatysConfig.steps})")
    gatys.add_argument("--method", choices=["lbfgs", "adam"], help=f"default {GatysConfig.method}")
    gatys.add_argument("--vgg-weights", help="imagenet (default: torch hub's cache, $TORCH_HOME/hub), a .pth file, or random (tests only); "
                                             "also what --style-image paintings are read with")
    p.add_argument("--live", metavar="SOURCE",
                   help="a live source for PyAV: a camera (/dev/video0) or a stream URL; shown in a window, or written to -o OUT.mp4 (.webm, .gif)")
    p.add_argument("--live-format", metavar="FMT", help="PyAV/FFmpeg input format of --live: v4l2 (Linux camera), avfoundation, dshow, lavfi")
    p.add_argument("--live-option", metavar="KEY=VALUE", action="append", default=[],
                   help="an option of --live's input format, as FFmpeg's -KEY VALUE (repeatable): the camera's mode, "
                        "e.g. video_size=1280x720 framerate=30 input_format=mjpeg (v4l2)")
    p.add_argument("--frames", type=int, help="stop after this many frames (videos and --live)")
    p.add_argument("--fps", type=float, help="at most this many frames a second in what is written (videos, animations, "
                   "--live to a file); the others are dropped: a GIF at 12 fps is 40%% of one at 30")
    p.add_argument("--crf", type=int, help="videos: the encoder's quality, lower is better and larger: H.264 0-51 "
                   "(default 18), VP9 in .webm 0-63 (default 24); 23-28 for clips to share. GIFs and WebPs have none")
    p.add_argument("--no-grid-lock", action="store_true",
                   help="videos and --live: keep the network's strided grid fixed to the frame instead of moving it "
                        "with the scene (pans and zooms then flicker: docs/video.md)")
    p.add_argument("--denoise", action="store_true",
                   help="videos and --live: filter a camera's noise out of the frames before the network, following "
                        "the scene; a still webcam's flicker falls to a third (docs/video.md, Sensor noise)")
    data = p.add_argument_group("datasets (docs/datasets.md): one folder in, one out, across processes and machines")
    data.add_argument("--devices", help="processes (CPU) or GPUs on each machine: N or auto (Lightning's prediction loop)")
    data.add_argument("--num-nodes", type=int, help="machines (torchrun or SLURM set the rest, as for training)")
    data.add_argument("--style-per-image", choices=["same", "random"],
                      help="random: each image its own style of a gallery model, or its own painting of --paintings "
                           "for an arbitrary-style one, from --seed and its path")
    data.add_argument("--paintings", type=user_path, help="the paintings --style-per-image random picks from (arbitrary-style model)")
    data.add_argument("--seed", type=int, help="the seed of --style-per-image random (default 0)")
    data.add_argument("--workers", type=int, help="DataLoader processes decoding images, per device (default 2)")
    p.add_argument("--host", help="--serve: the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="--serve: the port (default 7860; 0: any free one)")
    return p


def _given(args: argparse.Namespace, *names: str) -> list[str]:
    """The options among `names` that the command line set, as it spells them."""
    return [f"--{n.replace('_', '-')}" for n in names if n != "inputs" and getattr(args, n) not in (None, False, [])]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Every combination that cannot mean anything is refused here, in one line."""
    p = build_parser()
    args = p.parse_args(argv)
    if refused := next(filter(None, map(url_refused, args.inputs)), None):
        p.error(refused)
    args.inputs = [os.path.expanduser(item) for item in args.inputs]  # as user_path

    def refuse(options: list[str], why: str) -> None:
        """`why` in the singular ("applies to ...", "does not apply to ..."), for one option or more."""
        if len(options) > 1:
            why = why.replace("applies", "apply", 1).replace("does not", "do not", 1)
        if options:
            p.error(f"{' '.join(options)}: {why}")

    if args.list_styles:
        others = [k for k, v in vars(args).items() if k != "list_styles" and v != p.get_default(k) and v != []]
        if others:
            p.error(f"--list-styles takes nothing else (not {others[0].replace('_', '-')})")
        return args
    if args.serve:
        refuse([o for o in _given(args, *vars(args)) if o not in ("--serve", "--model", "--device", "--precision",
                                                                   "--max-pixels", "--host", "--port")]
               + (["INPUT"] if args.inputs else []), "does not apply to --serve (the page sets them)")
        if args.port is not None and not 0 <= args.port <= 65535:  # a traceback from bind()
            p.error(f"--port must be from 0 (any free port) to 65535, not {args.port}")
        args.precision = args.precision or "auto"
        args.max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
        return args
    refuse(_given(args, "host", "port"), "applies to --serve only")
    args.dataset = bool(_given(args, "devices", "num_nodes", "style_per_image"))
    if args.dataset:
        if len(args.inputs) != 1 or args.output is None or args.output == Path("-"):
            p.error("--devices, --num-nodes and --style-per-image take one input folder and -o OUT_FOLDER")
        refuse(_given(args, "live", "sheet", "optimize", "export", "json", "output_size", "overwrite", "format", "mix",
                      "skip_existing"),
               "does not apply to a dataset run (existing outputs are kept and skipped: it resumes)")
        if (args.style_per_image == "random") == bool(args.style or args.style_image):
            if args.style_per_image == "random":
                p.error("--style-per-image random picks the styles: not with --style or --style-image")
        if args.style_per_image != "random":
            refuse(_given(args, "seed", "paintings"), "only with --style-per-image random")
        if args.devices is not None and args.devices != "auto" and not (args.devices.isdigit() and int(args.devices) >= 1):
            p.error(f"--devices must be a number of processes or GPUs (at least 1), or auto, not {args.devices}")
        if args.workers is not None and args.workers < 0:
            p.error(f"--workers must be 0 or more, not {args.workers}")
    else:
        refuse(_given(args, "paintings", "seed", "workers"), "applies to --style-per-image and --devices runs only")
    if not (args.model or args.style or args.sheet or args.optimize or args.style_image):
        p.error("one of --model, --style, --style-image, --sheet, --serve, --optimize or --list-styles is required")
    if args.optimize:
        refuse(_given(args, "model", "style", "mix"), "does not apply to --optimize")
    if args.optimize and (args.style_image is None or len(args.style_image) != 1):
        p.error("--optimize takes one --style-image (the painting to optimise towards)")
    if not args.optimize:
        refuse(_given(args, "style_size", "steps", "method"), "applies to --optimize only")
        if not args.style_image:
            refuse(_given(args, "vgg_weights"), "applies to --optimize and --style-image only")
    else:
        refuse(_given(args, "live", "export", "compile", "precision", "batch_size"),
               "does not apply to --optimize (images only, each optimised on its own in fp32)")
    if args.style_image:
        refuse(_given(args, "style", "sheet"), "does not apply to --style-image (a painting of your own)")
        if len(args.style_image) > 2 or (len(args.style_image) == 2) != (args.mix is not None):
            p.error("--mix W takes exactly two --style-image paintings, and two paintings take --mix")
        if args.mix is not None and not 0 <= args.mix <= 1:
            p.error("--mix must be between 0 and 1")
    else:
        refuse(_given(args, "mix"), "applies to two --style-image paintings only")
    if args.export is not None:
        if args.inputs or not (args.model or args.style or args.style_image):
            p.error("--export takes --model, --style or --style-image, and no inputs")
        refuse(_given(args, "output", "size", "output_size", "strength", "preserve_color", "batch_size", "frames",
                      "fps", "compile", "precision", "max_pixels", "live"),
               "does not apply to --export (it writes the network alone)")
    elif bool(args.inputs) == bool(args.live):
        p.error("give INPUT files or --live SOURCE (one of the two)")
    if args.sheet:
        if len(args.inputs) != 1 or args.output is None or args.output.suffix.lower() not in IMAGE_EXTENSIONS:
            p.error(f"--sheet takes one photo and -o SHEET.png (or {' '.join(IMAGE_EXTENSIONS)})")
        photo = Path(args.inputs[0])
        if kind := "a video" if is_video(photo) else "animated" if is_animation(photo) else None:  # said as if -o were the mistake
            p.error(f"--sheet takes one photo: {photo} is {kind}")
        refuse(_given(args, "batch_size", "frames", "fps", "compile", "output_size"), "does not apply to --sheet")
    if args.live:
        refuse(_given(args, "batch_size", "max_pixels"), "does not apply to --live (one frame at a time)")
        if args.live_format is not None and not _input_format(args.live_format):
            p.error(f"--live-format {args.live_format}: this FFmpeg has no such input format (cameras: v4l2 on Linux, "
                    "avfoundation on macOS, dshow on Windows; lavfi for test sources)")
        if args.output is not None and args.output.suffix.lower() not in VIDEO_OUTPUTS:
            p.error(f"--live writes a video (-o OUT{' OUT'.join(VIDEO_OUTPUTS)}) or, without -o, shows a window")
        if args.output is None:
            refuse(_given(args, "fps"), "applies to what --live writes to -o, not to its window")
        for option in args.live_option:
            if not re.fullmatch(r"\w+=.+", option):
                p.error(f"--live-option {option}: give KEY=VALUE, as video_size=1280x720")
    else:
        refuse(_given(args, "live_format", "live_option"), "applies to --live only")
    args.live_options = dict(option.split("=", 1) for option in args.live_option)
    to_stdout = args.output == Path("-")
    if "-" in args.inputs and (len(args.inputs) > 1 or args.output is None):
        p.error("- (an image on stdin) is the only input, with -o FILE or -o - (stdout)")
    if to_stdout and (len(args.inputs) != 1 or args.live or args.sheet or args.json or is_video(Path(args.inputs[0]))
                      or is_animation(Path(args.inputs[0]))):
        p.error("-o - writes one image to stdout: one image input, and no --json, --live or --sheet")
    if args.format is not None and not (to_stdout or args.inputs == ["-"]):
        p.error("--format applies to -o - and to a piped input (-); a file's format comes from its name")
    if args.json and (args.live or args.sheet or args.export is not None or args.list_styles):
        p.error("--json reports files: not with --live, --sheet or --export")
    if args.skip_existing and (args.live or args.sheet or args.export is not None or to_stdout or args.inputs == ["-"]):
        p.error("--skip-existing applies to input files and folders: not with --live, --sheet, --export or -")
    if args.skip_existing and args.overwrite:
        p.error("--skip-existing keeps existing outputs, --overwrite replaces them: give one")
    if args.fps is not None and not 0 < args.fps < float("inf"):  # inf was a traceback from Fraction
        p.error(f"--fps must be above 0, and finite, not {args.fps:g}")
    if args.crf is not None and not 0 <= args.crf <= 63:
        p.error(f"--crf must be between 0 and 51 (H.264) or 63 (VP9), not {args.crf}")
    for name in ("size", "output_size", "max_pixels", "style_size", "steps", "frames", "batch_size", "num_nodes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if args.strength is not None and not 0 <= args.strength <= 1:
        p.error("--strength must be between 0 and 1")
    for name, default in GATYS_DEFAULTS.items():
        setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
    args.max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
    args.precision = args.precision or "auto"
    return args


def list_styles() -> int:
    from fast_style.models import style_index

    index, errors = style_index()
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    for name in index:
        print(name)
    return 1 if errors else 0


class Stopped(BaseException):
    """SIGTERM, raised where the run is (fast_style.stylize._stops)."""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # stdout's reader went away (`stylize DIR --json | head -1`): stop, as `find | head` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else the exit's flush fails again
        return 128 + signal.SIGPIPE  # what a shell reports for a program the signal ended
    except (KeyboardInterrupt, Stopped) as e:  # was a traceback into torch
        how, signum = ("stopped by SIGTERM", signal.SIGTERM) if isinstance(e, Stopped) else ("interrupted", signal.SIGINT)
        print(f"{how}: {e.args[0] if e.args else 'nothing was written'}", file=sys.stderr)  # what _stops says is kept
        return 128 + signum


@contextmanager
def _stops(kept: str, ending: str | None = None) -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM during a run. With `ending` (a live source), the first one sets the
    event, which ends the recording where it is, written whole, as ffmpeg's q does; a second one
    drops it. Until session 52 Ctrl-C lost the whole recording. Otherwise they raise where the
    run is, so that the output being written is removed (fast_style.atomic): SIGTERM's default
    ended the process with its temporary file left behind. `kept`: what the line then says of
    the outputs. Signals a shell ignores stay ignored."""
    until = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if ending is not None and not until.is_set():
            until.set()
            print(ending, file=sys.stderr)
            return
        raise KeyboardInterrupt(kept) if signum == signal.SIGINT else Stopped(kept)

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, handler in handlers.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, stop)
    try:
        yield until
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    if args.list_styles:
        return list_styles()
    # Files the command line names, said missing at once, not after seconds of loading torch.
    missing = [f"{args.model}: model file not found"] if args.model is not None and not args.model.is_file() else []
    missing += [f"{painting}: style image not found (--style-image)" for painting in args.style_image or []
                if not Path(painting).expanduser().is_file()]
    if missing:
        print(f"error: {missing[0]}", file=sys.stderr)
        return 2
    if args.serve:
        from fast_style.model_file import ModelFileError
        from fast_style.serve import Studio, serve

        with _stops("the server is closed, and its folder of video results removed"):
            try:  # made here, as a stop until the server listens would leave its folder
                studio = Studio([args.model] if args.model else None, args.device, args.precision, args.max_pixels)
            except (ValueError, ModelFileError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            return serve(studio, args.host or "127.0.0.1", 7860 if args.port is None else args.port)
    own_pixel_limits()
    if args.dataset:
        return stylize_dataset(args)
    inputs = [] if args.inputs == ["-"] else expand_inputs(args.inputs, args.output)
    if args.inputs and args.inputs != ["-"] and not inputs:
        print(f"error: {' '.join(args.inputs)}: no images or videos found", file=sys.stderr)
        return 1
    videos = [source for source, _ in inputs if is_video(source)]
    out = args.output
    if len(inputs) > 1 and out is not None and not out.is_dir() and out.suffix.lower() in PICTURES_AND_VIDEOS:
        print(f"error: -o {out}: names a file, but {len(inputs)} inputs were given; name a folder for them", file=sys.stderr)
        return 2  # it was made a folder of that name, with the outputs inside
    if len(inputs) == 1 and args.output not in (None, Path("-")):
        try:
            check_output_kind(inputs[0][0], args.output)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.optimize and videos:
        print(f"error: {videos[0]}: --optimize works on images only (a video would take hours a second)", file=sys.stderr)
        return 2
    streamed = _given(args, "frames", "no_grid_lock", "fps")
    if streamed and not (args.live or videos or any(is_animation(source) for source, _ in inputs)):
        print(f"error: {' '.join(streamed)}: {'apply' if len(streamed) > 1 else 'applies'} to videos, animations and "
              "--live only", file=sys.stderr)
        return 2
    for option in _given(args, "denoise", "crf"):  # --crf for a photo was ignored without a word
        if not (args.live or videos):
            print(f"error: {option} applies to videos and --live only", file=sys.stderr)
            return 2
    if args.live and args.output is not None and args.output.exists() and not args.overwrite:
        print(f"error: {args.live}: output {args.output} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    if inputs and not any(source.exists() for source, _ in inputs):  # typos: said before seconds of loading
        report = Report(args.json)
        for source, _ in inputs:
            report.failed(source, "file not found")
        print(f"{len(inputs)} of {len(inputs)} inputs failed", file=sys.stderr)
        return 1
    # A shipped style's file and name, read from headers alone: a typo answers at once.
    chosen: tuple[Any, Any] = (args.model, None)
    if args.style and not (args.sheet or args.optimize):
        from fast_style.models import resolve_style

        try:
            chosen = resolve_style(args.style, args.model)
        except (RuntimeError, ValueError) as e:  # fast_style.model_file.ModelFileError among them
            print(f"error: {e}", file=sys.stderr)
            return 2
    # torch from here: the checks above answer without it
    from fast_style.hardware import keep_freed_memory

    keep_freed_memory()  # this process stylizes and exits (not so the page's server, above)
    picture = {"strength": args.strength if args.strength is not None else 1.0, "preserve_color": args.preserve_color}
    if args.sheet:
        return write_sheet(Path(args.inputs[0]), args.output, args.overwrite, args.max_pixels, args.size or 384,
                           device=args.device, precision=args.precision, model=args.model, extra=args.style, **picture)
    try:
        if args.optimize:
            stylizer = gatys_stylizer(args.style_image[0], args.style_size, args.steps, args.method, args.vgg_weights,
                                      args.device, **picture)
        else:
            precision, compile = args.precision, args.compile
            if precision == "auto" and (args.live or inputs and len(videos) == len(inputs)):
                precision, compile = stream_defaults(args.device, compile)
            from fast_style.models import NEEDS_PAINTING, arbitrary_model, needs_a_style
            from fast_style.stylizer import Stylizer

            path, style = chosen
            paintings = None
            if args.style_image:
                path = path or arbitrary_model()
                paintings = [(args.style_image[0], 1.0)] if args.mix is None else [
                    (args.style_image[0], 1.0 - args.mix), (args.style_image[1], args.mix)]
            stylizer = Stylizer.load(path, device=args.device, precision=precision, compile=compile, style=style,
                                     style_image=paintings, vgg_weights=args.vgg_weights, **picture)
            if stylizer.reader is not None and not paintings:
                raise ValueError(f"{path}: {NEEDS_PAINTING}")
            if len(stylizer.styles) > 1 and style is None and args.export is None:  # an export takes the style as an input
                raise ValueError(needs_a_style(path, stylizer.styles))
            stylizer.style_code()  # the paintings are read now: a bad one is one line, before any output
    except (RuntimeError, ValueError) as e:  # fast_style.model_file.ModelFileError among them
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.export is not None:
        return export(stylizer, args.export, args.overwrite)
    if args.live and args.output is None:
        with _stops("the window is closed", "closing the window") as closed:
            return show_live(stylizer, args.live, args.live_format, args.live_options, args.size, args.output_size,
                             args.frames, not args.no_grid_lock, args.denoise, closed)
    video = VideoOptions(args.size, args.output_size, args.batch_size or 1, args.frames, not args.no_grid_lock,
                         args.max_pixels, args.fps, args.denoise, args.crf, args.overwrite)
    report = Report(args.json)
    if args.live:
        with _stops(f"the recording is dropped, nothing of {args.output} is kept",
                    f"ending the recording: {args.output} is written with the frames read so far "
                    "(Ctrl-C again drops it)") as until:
            return stylize_one_video(stylizer, args.live, args.output, video, report, args.live_format,
                                     args.live_options, until)
    options = Options(args.size, args.output_size, args.batch_size or IMAGE_BATCH, args.max_pixels, args.overwrite, report,
                      args.skip_existing)
    with _stops("the outputs finished before it are kept, whole; the one being written is not (--skip-existing "
                "goes on from them)"):
        if args.inputs == ["-"] or args.output == Path("-"):
            return stylize_pipe(stylizer, args.inputs[0], args.output, args.format, options)
        return stylize_files(stylizer, inputs, args.output, options, video)


def stylize_dataset(args: argparse.Namespace) -> int:
    """A folder across processes with Lightning (fast_style.dataset); 1 if any image failed."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from fast_style.dataset import Run, run
    from fast_style.hardware import keep_freed_memory
    from fast_style.model_file import ModelFileError
    from fast_style.models import arbitrary_model, resolve_style

    keep_freed_memory()  # this process stylizes and exits

    try:
        path, style = resolve_style(args.style, args.model) if args.style else (args.model, None)
        if path is None:
            path = arbitrary_model() if args.style_image or args.paintings else None
        if path is None:
            raise ValueError("a dataset run takes --model FILE or --style NAME")
        spec = args.style if style is not None else None
        summary = run(Run(path, Path(args.inputs[0]), args.output, devices=_devices(args.devices or "1"),
                         num_nodes=args.num_nodes or 1, batch_size=args.batch_size or IMAGE_BATCH,
                         workers=2 if args.workers is None else args.workers, max_pixels=args.max_pixels,
                         size=args.size, precision="fp32" if args.precision == "auto" else args.precision,
                         strength=args.strength if args.strength is not None else 1.0,
                         preserve_color=args.preserve_color, style=spec,
                         style_image=str(args.style_image[0]) if args.style_image else None,
                         per_image=args.style_per_image or "same", paintings=args.paintings, seed=args.seed or 0))
    except (ModelFileError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SIGTERMException:  # a SystemExit with no code: it exited 0, as if the folder were done
        print(f"error: stopped by SIGTERM; the outputs written are kept, and the same command goes on from them "
              f"({args.output})", file=sys.stderr)
        return 128 + signal.SIGTERM
    if summary is None:  # not the first process: it reports nothing
        return 0
    for relative, problem in summary.failed[:SHOWN_FAILURES]:
        print(f"error: {Path(args.inputs[0]) / relative}: {problem}", file=sys.stderr)
    if len(summary.failed) > SHOWN_FAILURES:
        print(f"error: {len(summary.failed) - SHOWN_FAILURES} more failed: see the manifest", file=sys.stderr)
    n = summary.videos
    left_out = f", {n} video{'s' * (n != 1)} left out (a dataset run takes images)" if n else ""
    print(f"{args.output}: {summary.written} written, {summary.exists} already there, {len(summary.failed)} failed"
          f"{left_out} (manifest: {args.output / 'manifest.jsonl'})")
    return 1 if summary.failed else 0


def _input_format(name: str) -> bool:
    """Whether PyAV's FFmpeg opens inputs of this format (av.formats_available leaves out devices such as v4l2)."""
    import av

    try:
        av.format.ContainerFormat(name, "r")
    except ValueError:
        return False
    return True


def _devices(value: str) -> int | str:
    return value if value == "auto" else int(value)


def stream_defaults(device: str | None, compile: bool) -> tuple[str, bool]:
    """Videos and live sources only: the fastest path within tolerance (fast_style.hardware)."""
    from fast_style.engine import named_device
    from fast_style.hardware import stream_path

    precision, compile_default = stream_path(named_device(device))
    return precision, compile or compile_default


def show_live(stylizer: Stylizer, source: str, input_format: str | None, input_options: dict[str, str],
              size: int | None, output_size: int | None, frames: int | None, grid_lock: bool = True,
              denoise: bool = False, closed: threading.Event | None = None) -> int:
    from fast_style.live import DisplayError, has_display, show
    from fast_style.video import VideoError

    if not has_display():
        print("error: no display to show --live in (DISPLAY is not set); write it to a file with -o OUT.mp4", file=sys.stderr)
        return 2
    try:
        shown = show(stylizer, source, input_format, size, frames, output_size, grid_lock, denoise, input_options, closed)
    except VideoError as e:
        print(f"error: {source}: {e}", file=sys.stderr)
        return 1
    except DisplayError as e:
        print(f"error: {e}; write it to a file with -o OUT.mp4", file=sys.stderr)
        return 2
    print(f"{source}: {shown} frames shown")
    return 0


def export(stylizer: Stylizer, target: Path, overwrite: bool) -> int:
    from fast_style.export import export_network

    if target.exists() and not overwrite:
        print(f"error: {target} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    # An arbitrary-style network exports as the network of its painting (--style-image), a gallery
    # as the network of its --style (the mix was dropped without a word), or whole without one.
    net, gallery = stylizer.net, stylizer.engine.gallery
    try:
        if stylizer.reader or gallery is not None and stylizer.style is not None:
            net = net.single(stylizer.style_code())
        export_network(net, target, overwrite)
    except (OSError, ValueError) as e:  # OSError: a full disk, the file made meanwhile
        print(f"error: {f'cannot write {target} ({e.strerror})' if isinstance(e, OSError) and e.errno else e}",
              file=sys.stderr)
        return 1
    if net is gallery:
        print(f"note: {target} takes a second input, style: {len(gallery.styles)} weights, one a painting, in this order "
              f"(its metadata's 'styles'): {', '.join(gallery.styles)}", file=sys.stderr)
    print(target)
    return 0


def write_sheet(photo: Path, target: Path, overwrite: bool, max_pixels: int, tile: int, device: str | None,
                precision: str, strength: float, preserve_color: bool, model: Path | None = None,
                extra: str | None = None) -> int:
    """The sheet of every readable shipped style (or of every style in `model`), and a tile for
    the style or mix `extra`; a file that cannot be read is one line (and exit status 1), the
    sheet is still made of the others."""
    from fast_style.model_file import ModelFileError
    from fast_style.models import file_styles, resolve_style, sheet_models
    from fast_style.sheet import make_sheet
    from fast_style.stylizer import Stylizer, style_label

    if target.exists() and not overwrite:
        print(f"error: {photo}: output {target} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    try:
        image = load_input(photo, max_pixels)
    except InputError as e:
        print(f"error: {photo}: {e}", file=sys.stderr)
        return 1
    try:
        models, errors = ({n: (model, n) for n in file_styles(model)}, []) if model else sheet_models()
        if model and len(models) == 1:
            models = {n: (model, None) for n in models}
        if extra:
            path, style = resolve_style(extra, model)
            models[style_label(style) if style else extra] = (path, style)
    except (ModelFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    styles, loaded = {}, {}
    for name, (path, inside) in models.items():
        if path not in loaded:  # a gallery's styles share one Stylizer
            try:
                loaded[path] = Stylizer.load(path, device=device, precision=precision, strength=strength,
                                             preserve_color=preserve_color)
            except (ModelFileError, RuntimeError, ValueError) as e:
                loaded[path] = None
                errors.append(str(e))
        if loaded[path] is not None:
            styles[name] = functools.partial(loaded[path], style=inside) if inside else loaded[path]
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if not styles:
        print("error: no shipped model could be read; no sheet written", file=sys.stderr)
        return 1
    try:
        save_image(make_sheet(image, styles, tile), target, overwrite=overwrite)
    except OSError as e:  # a full disk, the file made meanwhile
        print(f"error: {photo}: {e}", file=sys.stderr)
        return 1
    print(f"{target} ({len(styles)} styles)")
    return 1 if errors else 0


def gatys_stylizer(style_image: Path, style_size: int, steps: int, method: str, vgg_weights: str,
                   device: str | None, strength: float, preserve_color: bool) -> Stylizer:
    from fast_style.engine import named_device
    from fast_style.losses import perceptual_loss
    from fast_style.model_file import ModelRecord
    from fast_style.optimize import GatysEngine
    from fast_style.stylizer import Stylizer

    if not style_image.is_file():
        raise ValueError(f"{style_image}: style image not found")
    loss_fn = perceptual_loss(style_image, style_size, config=LossConfig(vgg_weights=vgg_weights))  # the training defaults
    engine = GatysEngine(loss_fn, steps, method, named_device(device))
    return Stylizer.over(engine, ModelRecord(style=style_image.stem), strength, preserve_color)


if __name__ == "__main__":
    sys.exit(main())
