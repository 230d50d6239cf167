"""Live sources (a camera, a stream) through PyAV, stylized frame by frame and shown in a window.

For a live source the newest frame matters, not every frame: a reader thread keeps only the
latest one, so when the network is slower than the camera, frames are dropped instead of
queueing up and the picture lags by one network pass at most."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing

import av
import numpy as np

from fast_style.stylizer import Stylizer
from fast_style.video import VideoError, note_the_size, stylize_frames, upright


def live_frames(source: str, input_format: str | None = None, max_frames: int | None = None,
                drop_late: bool = True, options: dict[str, str] | None = None) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of `source` (e.g. "/dev/video0" with input_format "v4l2", and
    options as FFmpeg's input options: {"video_size": "1280x720", "framerate": "30"}).
    With `drop_late`, frames that arrive while the previous one is still being used are skipped."""
    try:
        container = av.open(source, format=input_format, options=options)
    except (av.FFmpegError, OSError) as e:
        raise VideoError(f"cannot be opened as a live source ({e})") from None
    frames = _newest(container, max_frames) if drop_late else _every(container, max_frames)
    with closing(frames):  # its reader and container end with this generator
        for i, frame in enumerate(frames):
            if i == 0:
                note_the_size(source, options, frame.shape[1], frame.shape[0])
            yield frame


def _every(container: av.container.InputContainer, max_frames: int | None) -> Generator[np.ndarray, None, None]:
    with container:
        for i, frame in enumerate(container.decode(video=0)):
            if max_frames is not None and i >= max_frames:
                return
            yield upright(frame)


def _newest(container: av.container.InputContainer, max_frames: int | None) -> Generator[np.ndarray, None, None]:
    latest: list[av.VideoFrame | None] = [None]  # converted to RGB only when taken: dropped frames cost nothing
    ready, done = threading.Condition(), threading.Event()

    def read() -> None:
        try:
            for frame in paced(container.decode(video=0), stop=done):
                with ready:
                    latest[0] = frame
                    ready.notify()
                if done.is_set():
                    break
        except av.FFmpegError:
            pass
        finally:
            done.set()
            with ready:
                ready.notify()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    count = 0
    try:
        while max_frames is None or count < max_frames:
            with ready:
                ready.wait_for(lambda: latest[0] is not None or done.is_set())
                frame, latest[0] = latest[0], None
            if frame is None:
                return
            count += 1
            yield upright(frame)
    finally:
        done.set()
        reader.join(timeout=5)
        container.close()


def paced(frames: Iterator[av.VideoFrame], stop: threading.Event | None = None,
          clock: Callable[[], float] = time.monotonic) -> Iterator[av.VideoFrame]:
    """Frames no sooner than their timestamps say. A camera is paced by its sensor; a generated
    source (lavfi) or a file given as --live would otherwise be read as fast as a core can, and
    every frame but the newest thrown away, taking that core from the network."""
    stop = stop or threading.Event()
    start = first = None
    for frame in frames:
        if frame.time is not None:
            if start is None:
                start, first = clock(), frame.time
            wait = (frame.time - first) - (clock() - start)
            if wait > 0 and stop.wait(wait):
                return
        yield frame


class DisplayError(RuntimeError):
    pass


def has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def show(stylizer: Stylizer, source: str, input_format: str | None = None, size: int | None = None,
         max_frames: int | None = None, output_size: int | None = None, grid_lock: bool = True,
         denoise: bool = False, input_options: dict[str, str] | None = None,
         closed: threading.Event | None = None) -> int:
    """A window with the stylized source; Escape, q or closing the window ends it, and so does
    setting `closed` (Ctrl-C in the terminal). Frames shown."""
    try:
        import tkinter

        from PIL import Image, ImageTk

        root = tkinter.Tk()
    except ImportError as e:  # a Python built without tkinter
        raise DisplayError(f"no window toolkit ({e})") from None
    except tkinter.TclError as e:
        raise DisplayError(f"cannot open a window ({e})") from None
    root.title(f"fast_style: {stylizer.name}")
    label = tkinter.Label(root)
    label.pack()
    closed = closed or threading.Event()
    root.protocol("WM_DELETE_WINDOW", closed.set)
    root.bind("<Escape>", lambda _: closed.set())
    root.bind("q", lambda _: closed.set())
    shown, start = 0, time.perf_counter()
    try:
        frames = live_frames(source, input_format, max_frames, options=input_options)
        for frame in stylize_frames(stylizer, frames, size, output_size, grid_lock=grid_lock, denoise=denoise):
            photo = ImageTk.PhotoImage(Image.fromarray(frame))
            label.configure(image=photo)
            label.image = photo  # Tk keeps no reference of its own
            shown += 1
            root.title(f"fast_style: {stylizer.name}  {shown / (time.perf_counter() - start):.1f} fps")
            root.update()
            if closed.is_set():
                break
    finally:
        root.destroy()
    return shown
