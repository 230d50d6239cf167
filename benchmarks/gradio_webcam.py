"""Gradio's webcam streaming over the same Stylizer, for the choice docs/serve.md explains: a
`gr.Image(sources=["webcam"], streaming=True)` whose `.stream()` calls the network, driven in
headless Chromium with its fake camera (640x480); prints the frames stylized a second once
streaming is steady. Gradio is not a dependency: run it with an environment that has gradio and
this project on its path, e.g.

    uv venv ../gradio && VIRTUAL_ENV=../gradio uv pip install gradio
    PYTHONPATH=.venv/lib/python3.11/site-packages:. ../gradio/bin/python benchmarks/gradio_webcam.py
"""

import argparse
import shutil
import time

import gradio as gr
import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from fast_style import Stylizer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="checkpoints/starry_night_realtime.safetensors")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--seconds", type=float, default=20)
    args = p.parse_args()
    stylizer = Stylizer.load(args.model, precision="auto")
    calls: list[float] = []

    def stylize(frame: np.ndarray | None) -> np.ndarray | None:
        if frame is None:
            return None
        calls.append(time.perf_counter())
        image = Image.fromarray(frame)
        image.thumbnail((args.size, args.size))  # as our page sends it: at the network's size
        return np.asarray(stylizer(image, args.size))

    with gr.Blocks() as demo:
        camera = gr.Image(sources=["webcam"], streaming=True, elem_id="cam")
        out = gr.Image(streaming=True, elem_id="out")
        camera.stream(stylize, camera, out, stream_every=0.02, concurrency_limit=1)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    flags = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=flags)
        page = browser.new_page()
        page.goto(url)
        page.click("#cam button:has-text('Click to Access Webcam')")
        page.click("#cam button:has-text('Record')")
        time.sleep(8)  # warm-up
        start = len(calls)
        time.sleep(args.seconds)
        window = calls[start:]
        browser.close()
    demo.close()
    print(f"gradio {gr.__version__}: {(len(window) - 1) / (window[-1] - window[0]):.1f} frames stylized a second "
          f"({args.model}, network size {args.size}, precision {stylizer.precision})")


if __name__ == "__main__":
    main()
