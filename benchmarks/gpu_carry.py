"""Fits what benchmarks/gpu_check.sh needs into a device run's 64 MiB carry, after
../shared/device/setup-carry has filled .device/: the tree (28 MB) and setup-carry's 39 MB are
already over it. So the VGG-16 weights are cut after relu4_3, the last layer any loss reads
(29 -> 15 MB), and the paintings of the arbitrary-style network are added at JPEG quality 80
(17 -> 12.7 MB; they are read at 512 px, their size already).

    ../shared/device/setup-carry && uv run python benchmarks/gpu_carry.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import torch
from PIL import Image

from fast_style.vgg import LAYERS

LIMIT = 64 << 20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paintings", type=Path, default=Path("../shared/data/paintings"))
    p.add_argument("--quality", type=int, default=80)
    args = p.parse_args()
    carry = Path(".device")
    weights = carry / "vgg16-features-fp16.pth"
    if not weights.is_file():
        raise SystemExit(f"{weights}: not found; run ../shared/device/setup-carry first")
    state = torch.load(weights, weights_only=True)
    torch.save({k: v for k, v in state.items() if int(k.split(".")[1]) <= LAYERS["relu4_3"]}, weights)
    out = carry / "paintings"
    out.mkdir(exist_ok=True)
    shutil.copy(args.paintings / "SOURCES.tsv", out)
    for painting in sorted(args.paintings.glob("*.jpg")):
        Image.open(painting).convert("RGB").save(out / painting.name, quality=args.quality)
    tree = sum(Path(f).stat().st_size for f in subprocess.run(["git", "ls-files", "-z"], capture_output=True,
                                                               text=True, check=True).stdout.split("\0") if f)
    device = sum(f.stat().st_size for f in carry.rglob("*") if f.is_file())
    print(f"tree {tree / 1e6:.1f} MB + .device {device / 1e6:.1f} MB = {(tree + device) / 2**20:.1f} MiB "
          f"of the {LIMIT >> 20} MiB a run carries" + ("" if tree + device < LIMIT else ": OVER"))


if __name__ == "__main__":
    main()
