"""`evaluate --style NAME --photos DIR` (or `--model FILE`): a trained network's losses and speed, optionally against
Gatys optimisation of the same photos at the same loss weights. torch is imported by the
functions that need it, as in `stylize`: `--help` and a refused command line answer at once."""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from fast_style.config import VGG_MIN_SIDE, GatysConfig, LossConfig, StyleConfig
from fast_style.images import (DEFAULT_MAX_PIXELS, find_images, no_folder, open_rgb, own_pixel_limits, scaled_to,
                               too_small_for_vgg)
from fast_style.styles import find_painting
from fast_style.stylize import PRECISION_CHOICES, Parser, user_path

if TYPE_CHECKING:
    import torch

    from fast_style.losses import PerceptualLoss
    from fast_style.model_file import ModelRecord
    from fast_style.stylizer import Stylizer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="evaluate", description=__doc__)
    p.add_argument("--model", type=user_path, help="a .safetensors exported by train, or a Lightning .ckpt")
    p.add_argument("--style", help="a shipped style, as stylize --style takes it; with --model, one style of that "
                                   "gallery (default: every one)")
    p.add_argument("--photos", type=user_path, required=True, help="a folder of photos (recursive), or one photo")
    p.add_argument("--style-image", type=user_path, help="default: the bundled painting the model was trained on")
    p.add_argument("--size", type=int, default=256, help="longest side of each photo (default 256)")
    p.add_argument("--style-size", type=int, help=f"default: the model's training setting, else {StyleConfig.size}")
    p.add_argument("--baseline", choices=["none", "gatys"], default="none")
    p.add_argument("--baseline-from", type=user_path, metavar="JSON",
                   help="reuse the Gatys baseline of an earlier `evaluate --json` run on the same photos and settings")
    p.add_argument("--steps", type=int, default=GatysConfig.steps, help="loss evaluations of the Gatys baseline")
    p.add_argument("--method", choices=["lbfgs", "adam"], default=GatysConfig.method)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--paintings", type=user_path,
                   help="a gallery's paintings, by file name, where their recorded paths are not; for an arbitrary-style "
                        "network, the paintings to evaluate it on (default: those its training held out)")
    p.add_argument("--max-paintings", type=int, help="an arbitrary-style network: only the first N paintings (name order)")
    p.add_argument("--against", type=user_path, metavar="DIR",
                   help="another tool's pictures of the same pairs, DIR/PAINTING/PHOTO.png (benchmarks/peer_arbitrary.py), "
                        "scored with the same losses")
    p.add_argument("--strength", type=float, default=1.0,
                   help="the model's output blended with the photo (stylize --strength): the content/style trade-off")
    p.add_argument("--device")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="the network's precision (default fp32): what a faster precision costs in loss")
    p.add_argument("--vgg-weights", default=LossConfig.vgg_weights, help="imagenet, a .pth file, or random (tests only)")
    args = p.parse_args(argv)
    for name in ("size", "style_size", "steps", "max_paintings"):  # --size 0 ran at full size; --steps 0 divided by 0
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if not 0 <= args.strength <= 1:
        p.error("--strength must be between 0 and 1")  # as stylize says it
    if args.model is None and args.style is None:
        p.error("which model? --style NAME (a shipped one: stylize --list-styles) or --model FILE")
    if args.model is not None and not args.model.is_file():  # else said after seconds of imports, or the VGG's download
        named = "" if args.model.suffix or args.model.parent != Path() else f" (a shipped style: --style {args.model})"
        p.error(f"--model {args.model}: model file not found{named}")
    if not args.photos.exists():
        p.error(f"--photos {args.photos}: not found")
    for name in ("paintings", "against"):
        folder = getattr(args, name)
        if folder is not None and (problem := no_folder(folder, "folder not found")):
            p.error(f"--{name} {folder}: {problem}")
    return args


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in ("content", "style", "total", "seconds_per_image")}


def _earlier_baseline(path: Path, setup: dict) -> dict:
    """Gatys takes a minute an image: reuse it across models of one style, if nothing differs."""
    try:
        earlier = json.loads(path.read_text())
        baseline = earlier["baseline"]
    except OSError as e:  # a missing file was "not the JSON of ... ([Errno 2] No such file ...)"
        raise ValueError(f"{path}: cannot be read ({e.strerror})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not the JSON of an `evaluate --baseline gatys --json` run ({e})") from None
    differ = [k for k in setup if earlier.get("setup", {}).get(k) != setup[k]]
    if differ:
        raise ValueError(f"{path}: its baseline was made with other {', '.join(differ)}; run the baseline again")
    return baseline


def evaluate(model: Path, photos_dir: Path, size: int = 256, style_image: Path | None = None,
             style_size: int | None = None, baseline: str = "none", baseline_from: Path | None = None,
             steps: int = GatysConfig.steps, method: str = GatysConfig.method, device: str | None = None, precision: str = "fp32",
             vgg_weights: str = "imagenet", progress: bool = True, paintings: Path | None = None,
             max_paintings: int | None = None, against: Path | None = None, strength: float = 1.0,
             style: str | None = None) -> dict:
    """The model's mean losses on the photos, at the loss weights it was trained with (the
    training defaults where its file does not say), and optionally Gatys' on the same photos.
    A gallery is evaluated style by style, each against its own painting (found in `paintings`
    by name where its recorded path is not there): {"styles": {name: report}}. So is an
    arbitrary-style network, over the paintings its training held out (or those in `paintings`),
    optionally beside another tool's pictures of the same pairs (`against`). `strength` < 1 scores
    the output as `stylize --strength` blends it with the photo. `style`: one style of a gallery."""
    from fast_style.losses import perceptual_loss
    from fast_style.stylizer import Stylizer

    stylizer = Stylizer.load(model, device=device, precision=precision, vgg_weights=vgg_weights, strength=strength)
    common: dict[str, Any] = dict(photos_dir=photos_dir, size=size, style_size=style_size, baseline=baseline, steps=steps,
                  method=method, vgg_weights=vgg_weights, progress=progress)
    if stylizer.reader is not None:
        if style_image is not None or baseline_from is not None:
            raise ValueError("an arbitrary-style network is evaluated on --paintings: --style-image and --baseline-from do not apply")
        chosen = _arbitrary_paintings(model, stylizer, paintings)[:max_paintings]
        # One VGG for every painting's targets: loss i scores against painting i.
        record = stylizer.record
        shared = perceptual_loss(chosen, style_size or record.style_size or StyleConfig.size, _weights(record),
                                 LossConfig(vgg_weights=vgg_weights)).to(stylizer.device)
        styles = {Path(p).stem: _evaluate_style(stylizer, None, p, baseline_from=None, against=against,
                                                loss_fn=functools.partial(_scored_against, shared, i), **common)
                  for i, p in enumerate(chosen)}
        return {"styles": styles, "photos": next(iter(styles.values()))["photos"], "size": size,
                "precision": stylizer.precision}
    if against is not None or max_paintings is not None:
        raise ValueError("--against and --max-paintings apply to arbitrary-style networks only")
    if stylizer.engine.gallery is None:
        return _evaluate_style(stylizer, None, style_image, baseline_from=baseline_from, **common)
    if style_image is not None or baseline_from is not None:
        raise ValueError("a gallery is evaluated against its own paintings: --style-image and --baseline-from do not apply")
    images = stylizer.record.style_images or []
    if len(images) != len(stylizer.styles):
        raise ValueError(f"{model}: its record names {len(images)} paintings for {len(stylizer.styles)} styles")
    styles = {}
    for name, image in zip(stylizer.styles, images):
        if style is not None and name != style:
            continue
        try:
            painting = find_painting(image, paintings)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}; --paintings DIR names the folder of the gallery's paintings") from None
        styles[name] = _evaluate_style(stylizer, name, painting, baseline_from=None, **common)
        if (single := _single_beside(model, name)) is not None:  # the quality goal's yardstick (docs/gallery.md)
            alone = Stylizer.load(single, device=device, precision=precision, vgg_weights=vgg_weights, strength=strength)
            styles[name]["single"] = _evaluate_style(alone, None, painting, baseline_from=None,
                                                     **{**common, "baseline": "none"})["model"]
            styles[name]["single_ratio"] = styles[name]["model"]["total"] / styles[name]["single"]["total"]
    return {"styles": styles, "photos": next(iter(styles.values()))["photos"], "size": size,
            "precision": stylizer.precision}


def _weights(record: ModelRecord) -> dict[str, float]:
    return {"content": LossConfig.content_weight, "style": StyleConfig.weight, "tv": LossConfig.tv_weight, **record.weights}


def _scored_against(loss: PerceptualLoss, painting: int, output: torch.Tensor, content: torch.Tensor) -> dict:
    return loss(output, content, painting)


def _arbitrary_paintings(model: Path, stylizer: Stylizer, paintings: Path | None) -> list[str]:
    if paintings is not None:
        found = [str(p) for p in find_images(paintings)] if paintings.is_dir() else []
        if not found:
            raise FileNotFoundError(f"{paintings}: no paintings found")
        return found
    held = stylizer.record.held_out or []
    if not held:
        raise ValueError(f"{model}: its record names no held-out paintings; pass --paintings DIR")
    missing = [p for p in held if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: a held-out painting of {model} is not there; pass --paintings DIR")
    return held


def _single_beside(gallery: Path, style: str) -> Path | None:
    """A single-style network of a gallery's style in the gallery file's folder, named for it."""
    from fast_style.model_file import ModelFileError, read_model

    path = gallery.parent / f"{style}.safetensors"
    if not path.is_file() or path.resolve() == gallery.resolve():
        return None
    try:
        return path if read_model(path, weights=False).architecture == "johnson" else None
    except ModelFileError:
        return None


def _evaluate_style(stylizer: Stylizer, style: str | None, style_image: Path | str | None, photos_dir: Path,
                    size: int, style_size: int | None, baseline: str, baseline_from: Path | None, steps: int,
                    method: str, vgg_weights: str, progress: bool, against: Path | None = None,
                    loss_fn: Callable | None = None) -> dict:
    import torch

    from fast_style.losses import perceptual_loss
    from fast_style.optimize import check_memory, optimize_image
    from fast_style.pixels import fit_longest, resize, to_tensor

    device = stylizer.device
    record = stylizer.record
    weights = _weights(record)
    style_image = style_image or record.style_image or f"{record.style}.jpg"
    style_size = style_size or record.style_size or StyleConfig.size
    if loss_fn is None:
        loss_fn = perceptual_loss(style_image, style_size, weights, LossConfig(vgg_weights=vgg_weights)).to(device)
    root = photos_dir if photos_dir.is_dir() else photos_dir.parent  # or one photo
    photos = find_images(photos_dir) if photos_dir.is_dir() else [photos_dir] if photos_dir.is_file() else []
    if not photos:
        raise FileNotFoundError(f"{photos_dir}: no photos found")
    for path in photos:  # all read first: no minutes of work before a bad file stops the run
        try:
            w, h = open_rgb(path, DEFAULT_MAX_PIXELS).size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise ValueError(f"{path}: cannot be read as an image ({e}); the scores are over every photo of "
                             f"{photos_dir}, so move it out") from None
        scaled_w, scaled_h = scaled_to(w, h, size)
        if too_small_for_vgg(w, h, size):  # at --size 8 every photo was, and was to be moved out
            larger = next(s for s in itertools.count(size) if not too_small_for_vgg(w, h, s))
            raise ValueError(f"{path}: {w}x{h} at --size {size} is {scaled_w}x{scaled_h}, too small for VGG-16's losses "
                             f"({VGG_MIN_SIDE} pixels or more a side); --size {larger} takes it, or move it out: "
                             f"the scores are over every photo of {photos_dir}")
        if baseline == "gatys" and not baseline_from and device.type == "cpu":  # not after the others' minutes
            try:
                check_memory(scaled_h, scaled_w, steps, method)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
    setup = {"photos": [str(p.relative_to(root)) for p in photos], "size": size,
             "style_image": Path(style_image).name, "style_size": style_size, "weights": weights,
             "vgg_weights": vgg_weights}
    reused = _earlier_baseline(baseline_from, setup) if baseline_from else None
    model_rows, base_rows, other_rows = [], [], []
    which = {"style_image": style_image} if stylizer.reader is not None else {"style": style}
    for path in photos:
        x = fit_longest(to_tensor(open_rgb(path))[None].to(device), size)
        stylizer.stylize_tensor(x, **which)  # warm-up: allocations, kernels and reading the painting are not timed
        _sync(device)
        start = time.perf_counter()
        y = stylizer.stylize_tensor(x, **which)
        _sync(device)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            model_rows.append({k: v.item() for k, v in loss_fn(y, x).items()} | {"seconds_per_image": seconds})
            if against is not None:
                other = against / Path(style_image).stem / path.relative_to(root).with_suffix(".png")
                if not other.is_file():
                    raise FileNotFoundError(f"{other}: no picture of this pair in --against {against}")
                o = resize(to_tensor(open_rgb(other))[None].to(device), *x.shape[-2:]).clamp(0, 1)
                other_rows.append({k: v.item() for k, v in loss_fn(o, x).items()} | {"seconds_per_image": 0.0})
        if baseline == "gatys" and reused is None:
            start = time.perf_counter()
            _, losses = optimize_image(loss_fn, x, steps, method, progress=progress)
            _sync(device)
            base_rows.append(losses | {"seconds_per_image": time.perf_counter() - start})
    report: dict = {"model": _means(model_rows), "photos": len(photos), "size": size, "weights": weights,
                    "precision": stylizer.precision, "strength": stylizer.strength, "setup": setup}
    if base_rows or reused:
        base = report["baseline"] = reused or _means(base_rows) | {"method": method, "steps": steps}
        for k in ("content", "style", "total"):
            report[f"{k}_ratio"] = report["model"][k] / base[k]
        report["speedup"] = base["seconds_per_image"] / report["model"]["seconds_per_image"]
    if other_rows:
        report["against"] = _means(other_rows)
        report["against_ratio"] = report["model"]["total"] / report["against"]["total"]
    return report


def _chosen(spec: str | None, model: Path | None) -> tuple[Path, str | None]:
    """The file and the gallery style (or None) of --style and --model, as stylize resolves them."""
    if spec is None:
        assert model is not None
        return model, None
    from fast_style.models import parse_style, resolve_style

    if not isinstance(parse_style(spec), str):
        raise ValueError(f"--style {spec}: a mix has no one painting to be scored against; give one style")
    path, style = resolve_style(spec, model)
    return path, style if isinstance(style, str) else None


def print_table(report: dict) -> None:
    if "styles" in report:
        return print_gallery_table(report)
    cols = ["content", "style", "total", "seconds_per_image"]
    print(f"{report['photos']} photos, longest side {report['size']} px, weights {report['weights']}")
    print(f"{'':24s}" + "".join(f"{c:>18s}" for c in cols))
    print(f"{'model':24s}" + "".join(f"{report['model'][c]:18.4g}" for c in cols))
    if "baseline" in report:
        b = report["baseline"]
        print(f"{'gatys ' + b['method'] + ' ' + str(b['steps']):24s}" + "".join(f"{b[c]:18.4g}" for c in cols))
        print(f"{'model / gatys':24s}" + "".join(f"{report[c + '_ratio']:18.3f}" for c in cols[:3])
              + f"{'speedup ' + format(report['speedup'], '.0f') + 'x':>18s}")


def print_gallery_table(report: dict) -> None:
    """One row a style; the ratios to Gatys where there is a baseline, to the single-style network
    of the painting where one lies beside the gallery (blank for the others; the mean over those)."""
    styles = report["styles"]
    print(f"{report['photos']} photos, longest side {report['size']} px, each style against its own painting")
    ratios = [(key, label) for key, label, part in [("single_ratio", "total / single", "single"),
                                                    ("total_ratio", "total / gatys", "baseline"),
                                                    ("against_ratio", "total / other", "against")]
              if any(part in r for r in styles.values())]
    cols = ["content", "style", "total"]
    w = max(40, *(len(name) + 2 for name in styles))
    print(f"{'style':{w}s}" + "".join(f"{c:>16s}" for c in cols + [label for _, label in ratios]))
    for name, r in styles.items():
        print(f"{name:{w}s}" + "".join(f"{r['model'][c]:16.4g}" for c in cols)
              + "".join(f"{r[k]:16.3f}" if k in r else f"{'':16s}" for k, _ in ratios))
    means = {c: sum(r["model"][c] for r in styles.values()) / len(styles) for c in cols}
    mean_ratios = [[r[k] for r in styles.values() if k in r] for k, _ in ratios]
    print(f"{'mean':{w}s}" + "".join(f"{means[c]:16.4g}" for c in cols)
          + "".join(f"{sum(v) / len(v):16.3f}" for v in mean_ratios))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fast_style.model_file import ModelFileError
    from fast_style.vgg import VGGWeightsError

    own_pixel_limits()
    try:
        model, style = _chosen(args.style, args.model)
        report = evaluate(model, args.photos, args.size, args.style_image, args.style_size, args.baseline,
                          args.baseline_from, args.steps, args.method, args.device, args.precision, args.vgg_weights,
                          progress=not args.json, paintings=args.paintings, max_paintings=args.max_paintings,
                          against=args.against, strength=args.strength, style=style)
    except (ModelFileError, VGGWeightsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a Gatys baseline takes minutes: Ctrl-C was a traceback into torch
        print("interrupted: evaluate writes nothing, so nothing is lost", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
