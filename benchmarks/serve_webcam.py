"""The page's webcam path against the engine alone, in the same run: headless Chromium (Debian's
`chromium`) with its fake camera (640x480) drives `stylize --serve`'s page for --seconds, and the
same Stylizer then runs the same frames in a loop with nothing around it. Run by hand:

    uv run python benchmarks/serve_webcam.py --style starry_night_realtime --size 384

Prints frames per second and the page's frame latency (send to drawn), and the page's share of
the engine's fps (goal: 80% or more). Since session 43 the page sends each camera frame once, so
its fps is at most the camera's (the fake one here at 60, its fastest): the line says what the
camera gave and how busy the server was (this process, beside the browser's own).
"""

import argparse
import shutil
import threading
import time

import torch

from fast_style.lanes import CORES
from fast_style.serve import Studio, make_server
from fast_style.video import stylize_frames


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--style", default="starry_night_realtime")
    p.add_argument("--size", default="384", help="the network size the page asks for (or full)")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--precision", default="auto")
    p.add_argument("--camera-fps", type=int, default=60, help="the fake camera's rate (Chromium's: 60 at most, 20 by default)")
    p.add_argument("--camera", help="a .y4m clip to use as the camera (--use-file-for-fake-video-capture)")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    studio = Studio(precision=args.precision)
    server = make_server(studio, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    flags = [f"--use-fake-device-for-media-stream=fps={args.camera_fps}", "--use-fake-ui-for-media-stream", "--no-sandbox"]
    if args.camera:
        flags.append(f"--use-file-for-fake-video-capture={args.camera}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=flags)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#style option').length > 0")
        page.select_option("#style", args.style)
        page.select_option("#size", args.size)
        page.click("#camStart")
        # Warm-up: frames go eagerly while the stream path's network (int8 on x86 CPUs) is made, then through it.
        made = studio.stylizer(studio.resolve({"style": args.style})[0], stream=True).precision
        page.wait_for_function(f"window.cameraStats().precision === '{made}'", timeout=300_000)
        page.wait_for_function("window.cameraStats().shown >= 5", timeout=300_000)
        first, start, cpu = page.evaluate("window.cameraStats()"), time.perf_counter(), time.process_time()
        time.sleep(args.seconds)
        stats = page.evaluate("window.cameraStats()")
        wall = time.perf_counter() - start
        busy = (time.process_time() - cpu) / wall / CORES
        page_fps, camera_fps = (stats["frames"] - first["frames"]) / wall, (stats["camera"] - first["camera"]) / wall
        page.evaluate("camera.running = false")  # the camera stays on, shown in the page; no frames sent
        time.sleep(1)
        beside_browser = engine_fps(studio, args)
        page.click("#camStop")
        browser.close()
    server.shutdown()
    alone = engine_fps(studio, args)
    one_at_a_time = engine_fps(studio, args, lanes=1)
    studio.close()
    print(f"{args.style}, 640x480 camera, network size {args.size}, precision {made} (photos: "
          f"{studio.stylizer(studio.resolve({'style': args.style})[0]).precision})")
    print(f"page:   {page_fps:6.1f} fps, {stats['latency']:.0f} ms from sending a frame to drawing it "
          f"(the camera gave {camera_fps:.1f}; the server busy {busy:.0%} of the cores)")
    print(f"engine: {alone:6.1f} fps (the same Stylizer on camera-sized frames, as stylize runs a stream, nothing around it)")
    print(f"engine: {one_at_a_time:6.1f} fps one frame at a time on every core (the page before lanes)")
    print(f"engine: {beside_browser:6.1f} fps with the page open and its camera on, sending nothing")
    print(f"page / engine: {page_fps / alone:.0%} (beside the open page: {page_fps / beside_browser:.0%})")


def engine_fps(studio: Studio, args: argparse.Namespace, lanes: int | None = None) -> float:
    """Frames a second of the Stylizer alone on a stream of camera frames, run as `stylize` runs a
    stream (fast_style.video.stylize_frames: side by side where lanes pay; `lanes=1`: one at a time)."""
    path, options = studio.resolve({"style": args.style, "size": args.size})
    stylizer = studio.stylizer(path, stream=True).with_defaults(strength=options["strength"], preserve_color=options["preserve_color"])
    frame = (torch.rand(480, 640, 3) * 255).byte().numpy()
    list(stylize_frames(stylizer, iter([frame] * 4), options["size"], lanes=lanes))
    count, start = 0, time.perf_counter()

    def frames():  # noqa: ANN202
        nonlocal count
        while time.perf_counter() - start < min(args.seconds, 10):
            count += 1
            yield frame

    for _ in stylize_frames(stylizer, frames(), options["size"], lanes=lanes):
        pass
    return count / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
