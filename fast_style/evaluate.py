"""`evaluate --model FILE --photos DIR`: a trained network's losses and speed, optionally against
Gatys optimisation of the same photos at the same loss weights."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from fast_style.images import find_images, fit_longest, load_style_image, open_rgb, to_tensor
from fast_style.losses import PerceptualLoss
from fast_style.model_file import ModelFileError
from fast_style.optimize import optimize_image
from fast_style.styles import style_image_path
from fast_style.stylizer import Stylizer
from fast_style.vgg import VGG16Features, VGGWeightsError

TRAINING_WEIGHTS = {"content": 1e5, "style": 1e10, "tv": 0.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="evaluate", description=__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--photos", type=Path, required=True, help="a folder of photos (recursive)")
    p.add_argument("--style-image", type=Path, help="default: the bundled painting the model was trained on")
    p.add_argument("--size", type=int, default=256, help="longest side of each photo (default 256)")
    p.add_argument("--style-size", type=int, help="default: the model's training setting, else 512")
    p.add_argument("--baseline", choices=["none", "gatys"], default="none")
    p.add_argument("--baseline-from", type=Path, metavar="JSON",
                   help="reuse the Gatys baseline of an earlier `evaluate --json` run on the same photos and settings")
    p.add_argument("--steps", type=int, default=300, help="loss evaluations of the Gatys baseline")
    p.add_argument("--method", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "int8", "auto"], default="fp32",
                   help="the network's precision (default fp32): what a faster precision costs in loss")
    p.add_argument("--vgg-weights", default="imagenet", help="imagenet, a .pth file, or random (tests only)")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in ("content", "style", "total", "seconds_per_image")}


def _earlier_baseline(path: Path, setup: dict) -> dict:
    """Gatys takes a minute an image: reuse it across models of one style, if nothing differs."""
    try:
        earlier = json.loads(path.read_text())
        baseline = earlier["baseline"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not the JSON of an `evaluate --baseline gatys --json` run ({e})") from None
    differ = [k for k in setup if earlier.get("setup", {}).get(k) != setup[k]]
    if differ:
        raise ValueError(f"{path}: its baseline was made with other {', '.join(differ)}; run the baseline again")
    return baseline


def evaluate(args: argparse.Namespace) -> dict:
    stylizer = Stylizer.load(args.model, device=args.device, precision=args.precision)
    device = stylizer.device
    weights = {**TRAINING_WEIGHTS, **stylizer.info.get("weights", {})}
    info = stylizer.info
    style_image = args.style_image or style_image_path(info.get("style_image") or f"{info.get('style')}.jpg")
    args.style_size = args.style_size or info.get("style_size") or 512
    loss_fn = PerceptualLoss(VGG16Features(args.vgg_weights), weights["content"], weights["style"], weights["tv"])
    loss_fn.set_style(load_style_image(style_image, args.style_size))
    loss_fn.to(device)
    photos = find_images(args.photos) if args.photos.is_dir() else []
    if not photos:
        raise FileNotFoundError(f"{args.photos}: no photos found")
    setup = {"photos": [str(p.relative_to(args.photos)) for p in photos], "size": args.size,
             "style_image": Path(style_image).name, "style_size": args.style_size, "weights": weights,
             "vgg_weights": args.vgg_weights}
    reused = _earlier_baseline(args.baseline_from, setup) if args.baseline_from else None
    model_rows, base_rows = [], []
    for path in photos:
        x = fit_longest(to_tensor(open_rgb(path))[None].to(device), args.size)
        stylizer.stylize_tensor(x)  # warm-up: allocations and kernels are not what we time
        _sync(device)
        start = time.perf_counter()
        y = stylizer.stylize_tensor(x)
        _sync(device)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            model_rows.append({k: v.item() for k, v in loss_fn(y, x).items()} | {"seconds_per_image": seconds})
        if args.baseline == "gatys" and reused is None:
            start = time.perf_counter()
            _, losses = optimize_image(loss_fn, x, args.steps, args.method, progress=not args.json)
            _sync(device)
            base_rows.append(losses | {"seconds_per_image": time.perf_counter() - start})
    report: dict = {"model": _means(model_rows), "photos": len(photos), "size": args.size, "weights": weights,
                    "precision": stylizer.precision, "setup": setup}
    if base_rows or reused:
        base = report["baseline"] = reused or _means(base_rows) | {"method": args.method, "steps": args.steps}
        for k in ("content", "style", "total"):
            report[f"{k}_ratio"] = report["model"][k] / base[k]
        report["speedup"] = base["seconds_per_image"] / report["model"]["seconds_per_image"]
    return report


def print_table(report: dict) -> None:
    cols = ["content", "style", "total", "seconds_per_image"]
    print(f"{report['photos']} photos, longest side {report['size']} px, weights {report['weights']}")
    print(f"{'':24s}" + "".join(f"{c:>18s}" for c in cols))
    print(f"{'model':24s}" + "".join(f"{report['model'][c]:18.4g}" for c in cols))
    if "baseline" in report:
        b = report["baseline"]
        print(f"{'gatys ' + b['method'] + ' ' + str(b['steps']):24s}" + "".join(f"{b[c]:18.4g}" for c in cols))
        print(f"{'model / gatys':24s}" + "".join(f"{report[c + '_ratio']:18.3f}" for c in cols[:3])
              + f"{'speedup ' + format(report['speedup'], '.0f') + 'x':>18s}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except (ModelFileError, VGGWeightsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
