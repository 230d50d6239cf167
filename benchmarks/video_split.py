"""Where a video's time goes: decoding, the network and H.264 encoding, each alone, then the
three-thread pipeline of `stylize` (fast_style.video) on the same clip, and a generated live
source of the clip's size at 30 fps through the path `stylize --live` shows in its window
(fast_style.live: the newest frame taken, late ones dropped, frames side by side in lanes).

    uv run python benchmarks/video_split.py --model checkpoints/starry_night_realtime.safetensors \
        --clip ../shared/data/video/test_pattern.mp4 [--precision int8] [--frames 200]

Prints frames a second for each stage; the first frame (compilation for int8 and --compile) is
timed apart."""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import product
from pathlib import Path

import av
import numpy as np
import torch

from fast_style import Stylizer
from fast_style import encoders, video
from fast_style.hardware import cpu_description, keep_freed_memory
from fast_style.lanes import CORES
from fast_style.live import live_frames
from fast_style.video import stylize_frames, stylize_video, upright


def decode(clip: Path, frames: int) -> list[np.ndarray]:
    out = []
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in c.decode(stream):
            out.append(upright(frame))
            if len(out) == frames:
                break
    return out


def encode(arrays: list[np.ndarray], rate: int = 25) -> None:
    h, w = arrays[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp, av.open(str(Path(tmp) / "out.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": encoders.PRESET,
                                                              "threads": encoders.THREADS})
        stream.height, stream.width, stream.pix_fmt = h // 2 * 2, w // 2 * 2, "yuv420p"
        for array in arrays:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array[: h // 2 * 2, : w // 2 * 2]),
                                                             format="rgb24")))
        out.mux(stream.encode(None))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--clip", type=Path, required=True)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--ahead", type=int, nargs="+", default=[video.AHEAD], help="pipeline rows, frames queued ahead")
    p.add_argument("--grid-lock", nargs="+", choices=["on", "off"], default=["on"],
                   help="pipeline rows with the grid following the scene (the default) and without (fast_style.motion)")
    p.add_argument("--denoise", nargs="+", choices=["on", "off"], default=["off"],
                   help="pipeline rows with a camera's noise filtered out before the network (--denoise) and without")
    p.add_argument("--lanes", nargs="+", default=["auto"],
                   help="pipeline rows with frames side by side as stylize decides (auto) or N at a time (1: each frame on every core)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc as it is, to compare (stylize keeps freed memory for reuse)")
    args = p.parse_args()
    kept = not args.default_malloc and keep_freed_memory()
    print(cpu_description() + ("; freed memory kept for reuse, as stylize does" if kept else "; malloc as it is"))
    start = time.perf_counter()
    arrays = decode(args.clip, args.frames)
    n = len(arrays)
    print(f"decode    {n / (time.perf_counter() - start):7.1f} fps  ({n} frames, {arrays[0].shape[1]}x{arrays[0].shape[0]})")
    stylizer = Stylizer.load(args.model, device="cpu", precision=args.precision, compile=args.compile)
    batches = [torch.from_numpy(a).permute(2, 0, 1)[None].float().div(255) for a in arrays]
    start = time.perf_counter()
    stylizer.stylize_tensor(batches[0])
    print(f"first frame {time.perf_counter() - start:6.1f} s (quantization and compilation, where they apply)")
    frames, spent = [], 0.0
    for b in batches[1:]:  # each output made a frame at once, as the pipeline does: no float outputs held
        start = time.perf_counter()
        y = stylizer.stylize_tensor(b)
        spent += time.perf_counter() - start
        frames.append(y[0].mul(255).round().byte().permute(1, 2, 0).numpy())
    print(f"network   {(n - 1) / spent:7.1f} fps  ({args.precision}{', compiled' if args.compile else ''})")
    start = time.perf_counter()
    encode(frames)
    print(f"encode    {len(frames) / (time.perf_counter() - start):7.1f} fps  (libx264, crf 18, preset {encoders.PRESET}, "
          f"{encoders.THREADS} threads, as stylize encodes on a CPU)")
    with tempfile.TemporaryDirectory() as tmp:
        # frames side by side (fast_style.lanes) compile once more, for one thread a lane
        # (a locked grid pads the frame: another shape)
        lanes = [None if n == "auto" else int(n) for n in args.lanes]
        for lock, n in product(args.grid_lock, lanes):
            stylize_video(stylizer, args.clip, Path(tmp) / "warm.mp4", progress=False, max_frames=8, grid_lock=lock == "on",
                          lanes=n)
        # ahead: frames queued for the lanes beyond one each
        for lock, denoise, ahead, n in product(args.grid_lock, args.denoise, args.ahead, lanes):
            video.AHEAD = ahead
            start, cpu = time.perf_counter(), time.process_time()
            result = stylize_video(stylizer, args.clip, Path(tmp) / "out.mp4", progress=False, max_frames=args.frames,
                                   grid_lock=lock == "on", denoise=denoise == "on", lanes=n)
            wall = time.perf_counter() - start
            print(f"pipeline  {result.frames / wall:7.1f} fps  (stylize's three threads, compiled beforehand for "
                  f"its lanes; grid lock {lock}; denoise {denoise}; {ahead} ahead; lanes {n or 'auto'}; the cores busy "
                  f"{100 * (time.process_time() - cpu) / wall / CORES:.0f}%)")
    h, w = arrays[0].shape[:2]
    source = f"testsrc2=size={w}x{h}:rate=30"
    shown, start = 0, time.perf_counter()
    for _ in stylize_frames(stylizer, live_frames(source, "lavfi", max_frames=args.frames)):
        shown += 1
    print(f"live      {shown / (time.perf_counter() - start):7.1f} fps  (lavfi {source}, the window's path: "
          "the newest frame, late ones dropped)")


if __name__ == "__main__":
    main()
