"""The Python API is typed (PEP 561: fast_style/py.typed): the calls docs/stylize.md shows pass
mypy, and a misspelt option or a wrong type is caught before anything runs."""

import atexit
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

GOOD = """
import threading
from pathlib import Path

import torch
from PIL import Image

from fast_style import Stylizer

stylizer = Stylizer.load("starry_night", device="cpu", precision="int8", strength=0.7, preserve_color=True,
                         compile=True, channels_last=True)
gallery = Stylizer.load("gallery", style={"starry_night": 0.6, "wave": 0.4})
anywhere = Stylizer.load("any", style_image=Path("painting.jpg"))
painted: Image.Image = stylizer(Image.open("photo.jpg"))
softer: Image.Image = stylizer(Image.open("photo.jpg"), strength=0.5, style="wave")
batch: torch.Tensor = stylizer(torch.rand(8, 3, 480, 640), 256, preserve_color=False)
mixed = anywhere(Image.open("photo.jpg"), style_image=[("a.jpg", 0.5), (Image.open("b.jpg"), 0.5)])
video = stylizer.with_defaults(strength=0.8, style="starry_night")

from fast_style.hardware import keep_freed_memory
from fast_style.live import live_frames
from fast_style.video import stylize_frames, stylize_video

keep_freed_memory()
stylize_video(stylizer, "clip.mp4", "clip_vg.mp4")
stop = threading.Event()
stylize_video(stylizer, "/dev/video0", "cam.mp4", input_format="v4l2", until=stop, overwrite=False)
for frame in stylize_frames(stylizer, live_frames("/dev/video0", "v4l2")):
    print(frame)
"""

BAD = """
from PIL import Image

from fast_style import Stylizer

stylizer = Stylizer.load("starry_night", strenght=0.7)
painted = stylizer(Image.open("photo.jpg"), strength="high")
"""


def mypy(path: Path) -> subprocess.CompletedProcess:
    """Outside the checkout, so that mypy finds fast_style as installed: only through py.typed."""
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(path.parent / "cache"), "--no-error-summary",
                           "--follow-imports=silent", str(path)], capture_output=True, text=True, cwd=path.parent)


_checked: dict[str, subprocess.CompletedProcess] = {}
_checking = threading.Thread()


def start_early() -> None:
    """Called by conftest.py when this module's test is among those to run: mypy reads torch's
    annotations for some 20 s on one core, which it now spends beside the tests before this one
    (the suite keeps the other core busy a third of the time)."""
    global _checking
    folder = Path(tempfile.mkdtemp(prefix="fast_style_mypy_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "good.py").write_text(GOOD)
    (folder / "bad.py").write_text(BAD)
    # good first, then bad with good's cache: one core, as before
    _checking = threading.Thread(target=lambda: _checked.update(good=mypy(folder / "good.py"), bad=mypy(folder / "bad.py")),
                                 daemon=True)
    _checking.start()


@pytest.mark.slow  # mypy reads torch's annotations: some 20 s the first time
def test_mypy_checks_calls_of_the_python_api() -> None:
    if not _checking.is_alive() and not _checked:
        start_early()  # not started by conftest.py (the module run another way)
    _checking.join(timeout=300)
    assert set(_checked) == {"good", "bad"}, "mypy did not finish in 300 s"
    good, bad = _checked["good"], _checked["bad"]
    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'bad.py:6: error: Unexpected keyword argument "strenght"' in bad.stdout
    assert "bad.py:7: error: No overload variant" in bad.stdout  # strength="high"
