"""Images per second of a dataset run (`stylize --devices N DIR -o OUT`) for 1 and 2 processes
on this CPU (gloo), or 1..N GPUs where there are, with the scaling efficiency. Run by hand:

    uv run python benchmarks/dataset_scaling.py --model checkpoints/starry_night_small.safetensors \
        --photos ../shared/data/train --devices 1 2

Each run starts from an empty output folder; the time is the whole command (start-up included,
as a user waits for it), and separately the time from the first output to the last.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--photos", required=True)
    p.add_argument("--devices", nargs="+", default=["1", "2"])
    p.add_argument("--size", type=int, help="the network's working size")
    p.add_argument("--batch-size", type=int, default=4)
    args = p.parse_args()
    base = None
    for devices in args.devices:
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "fast_style.stylize", "--model", args.model, "--devices", devices,
                       "--batch-size", str(args.batch_size), args.photos, "-o", out]
            if args.size:
                command += ["--size", str(args.size)]
            start = time.perf_counter()
            subprocess.run(command, check=False, capture_output=True)
            wall = time.perf_counter() - start
            lines = [json.loads(line) for line in (Path(out) / "manifest.jsonl").read_text().splitlines()]
            written = sum(line["status"] == "written" for line in lines)
            stamps = sorted(p.stat().st_mtime for p in Path(out).rglob("*") if p.is_file() and p.name != "manifest.jsonl")
            steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
        rate = written / wall
        base = base or steady
        print(f"devices {devices}: {written} images in {wall:.1f} s = {rate:.2f} img/s with start-up; "
              f"{steady:.2f} img/s first to last output; efficiency {steady / base / int(devices):.0%}")


if __name__ == "__main__":
    main()
