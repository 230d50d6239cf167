"""int8 inference (fast_style.quantize): the picture of fp32, at the input's size, or a clear refusal."""

import platform
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fast_style import Stylizer, quantize
from fast_style.images import open_rgb
from fast_style.pixels import to_tensor
from fast_style.lanes import thread_count
from fast_style.quantize import Int8Unavailable
from fast_style.stylize import main
from conftest import CAN_IMITATE_AVX2, CAN_IMITATE_AVX_VNNI, avx2_env
from test_video import make_clip, probe

ROOT = Path(__file__).resolve().parents[1]
STARRY_NIGHT = ROOT / "checkpoints" / "starry_night.safetensors"
REALTIME = ROOT / "checkpoints" / "starry_night_realtime.safetensors"  # the smallest graph: the fastest to compile
PHOTO = ROOT / "data" / "examples" / "chicago.jpg"

# int8 is for x86 CPUs (fast_style.quantize.require_int8); elsewhere it is refused, not tested.
pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="int8 needs an x86 CPU")


@pytest.mark.slow  # each frame size is quantized and compiled: seconds
def test_int8_gives_the_fp32_picture_at_every_size() -> None:
    """The first frame of each size calibrates the ranges. The first size starts black, as a video
    that fades in: a black frame alone would leave the ranges zero wide (measured: 70/255 from fp32)."""
    photo = to_tensor(open_rgb(PHOTO))[None]
    fp32 = Stylizer.load(STARRY_NIGHT, device="cpu")
    int8 = Stylizer.load(STARRY_NIGHT, device="cpu", precision="int8")
    # Odd, then a second size (not fixed to the first) on one core, as a lane runs it: a network
    # made on every core is not the one a lane should run (that one ran 25% slower).
    for (h, w), threads, fade_in in [((75, 113), torch.get_num_threads(), True), ((96, 64), 1, False)]:
        x = F.interpolate(photo, size=(h, w), mode="bilinear", antialias=True).clamp(0, 1)
        expected = fp32(x)
        with thread_count(threads):
            if fade_in:
                int8(torch.zeros_like(x))
            y = int8(x)
        assert y.shape == x.shape and y.dtype == torch.float32
        assert expected.std() > 0.1  # a painting, not a flat colour
        assert (y - expected).abs().mean() < 6 / 255  # measured 2-4/255 at 480p (benchmarks/precision.py)
        assert (y - expected).abs().mean() > 0.2 / 255  # really quantized: fp32 repeats itself exactly
    assert int8.engine.int8_shapes == {(1, 3, 75, 113), (1, 3, 96, 64)}  # one quantized net per frame size
    assert sorted(threads for _, _, threads in int8.engine._int8_nets) == sorted([1, torch.get_num_threads()])
    with thread_count(1):
        assert torch.equal(int8(x), y)  # reused, not recalibrated on the next frame


@pytest.mark.slow  # two graphs quantized and compiled: seconds
def test_a_large_frame_is_calibrated_on_a_copy_at_the_calibration_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Observing the ranges at 4K took 3.8 GB and half the first frame's minute; observed on a
    copy at 1080p, the ranges are given to the graph made for the frame: the same picture."""
    exported: list[tuple[int, ...]] = []
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda net, args: exported.append(tuple(args[0].shape)) or export(net, args))
    monkeypatch.setattr(quantize, "CALIBRATION_PIXELS", 48 * 64)
    photo = to_tensor(open_rgb(PHOTO))[None]
    x = F.interpolate(photo, size=(96, 128), mode="bilinear", antialias=True).clamp(0, 1)
    expected = Stylizer.load(REALTIME, device="cpu")(x)
    y = Stylizer.load(REALTIME, device="cpu", precision="int8")(x)
    assert exported == [(1, 3, 48, 64), (1, 3, 96, 128)]  # observed on the copy; made for the frame
    assert expected.std() > 0.1
    assert 0.2 / 255 < (y - expected).abs().mean() < 6 / 255  # quantized, and with ranges observed


@pytest.fixture
def quantized(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """int8 wired in but not compiled (some 20 s a network on an AVX2 laptop): the shapes it was
    asked to quantize for. The tests above and below run the real one."""
    shapes = []
    monkeypatch.setattr(quantize, "quantize_int8", lambda net, x: shapes.append(tuple(x.shape)) or net)
    return shapes


def test_int8_from_the_command_line(tmp_path: Path, quantized: list, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out.png"
    assert main(["--model", str(REALTIME), str(PHOTO), "--size", "64", "--precision", "int8", "-o", str(out)]) == 0
    assert Image.open(out).size == Image.open(PHOTO).size
    [(batch, channels, h, w)] = quantized
    assert (batch, channels, max(h, w)) == (1, 3, 64)  # the network's working size
    assert capsys.readouterr().err.count("note: int8 and --compile make the network anew for each image size") == 1
    assert main(["--model", str(REALTIME), str(PHOTO), "--size", "64", "--precision", "fp32", "-o", str(out),
                 "--overwrite"]) == 0
    assert "note:" not in capsys.readouterr().err  # fp32 runs each size at once


def test_int8_is_refused_off_the_cpu(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(Int8Unavailable, match="int8 runs on the CPU only, not on meta"):
        Stylizer.load(STARRY_NIGHT, device="meta", precision="int8")
    assert main(["--model", str(STARRY_NIGHT), str(PHOTO), "--device", "meta", "--precision", "int8"]) == 2
    assert capsys.readouterr().err == "error: int8 runs on the CPU only, not on meta\n"


def test_int8_without_torchao_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao.quantization.pt2e", None)  # as if not installed
    with pytest.raises(Int8Unavailable, match="int8 needs torchao .*: pip install torchao"):
        Stylizer.load(STARRY_NIGHT, device="cpu", precision="int8")


@pytest.mark.slow
def test_an_int8_video_keeps_its_frames_and_picture(tmp_path: Path) -> None:
    """Through the video pipeline's network thread; the first frame is mostly black."""
    clip = make_clip(tmp_path / "clip.mp4")
    outputs = {}
    for precision in ("fp32", "int8"):
        outputs[precision] = tmp_path / f"{precision}.mp4"
        assert main(["--model", str(STARRY_NIGHT), str(clip), "--precision", precision, "-o", str(outputs[precision])]) == 0
    assert probe(outputs["int8"]) == (12, 10.0, 1, (64, 48))
    frames = {}
    for precision, path in outputs.items():
        with av.open(str(path)) as c:
            frames[precision] = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(float)
    assert frames["fp32"].std() > 20  # a picture
    assert np.abs(frames["int8"] - frames["fp32"]).mean() < 8  # measured 4.3 of 255 (H.264 on both); broken: ~70


@pytest.mark.slow
@pytest.mark.parametrize("vnni", [
    pytest.param(False, marks=pytest.mark.skipif(
        not CAN_IMITATE_AVX2, reason="imitating an AVX2 CPU needs AVX-512 (on AVX2 the tests above are that run)")),
    pytest.param(True, marks=pytest.mark.skipif(
        not CAN_IMITATE_AVX_VNNI, reason="imitating AVX2 with AVX-VNNI needs AVX-512 and AVX-VNNI")),
], ids=["avx2", "avx2_vnni"])
def test_int8_keeps_the_picture_on_an_avx2_cpu_too(vnni: bool) -> None:
    """The picture test of this file again, under AVX2 caps. Without VNNI int8 pairs saturate
    (11/255 from fp32 before 7-bit activations); with AVX-VNNI (Intel laptops since 2021) they do
    not, and 8-bit activations are kept (0.7-1.9/255 measured; docs/cpus.md)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "fp32_picture"],
                            env=avx2_env(vnni), capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout


def test_auto_takes_int8_for_videos_but_not_for_photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     quantized: list) -> None:
    """Streams pay the one-time cost of quantizing back; a photo would not (fast_style.hardware.stream_path)."""
    chosen, load = [], Stylizer.load
    monkeypatch.setattr(Stylizer, "load", classmethod(lambda cls, *a, **k: chosen.append((k["precision"], k["compile"])) or load(*a, **k)))
    clip = make_clip(tmp_path / "clip.mp4")
    assert main(["--model", str(REALTIME), str(clip), "-o", str(tmp_path / "out.mp4")]) == 0
    assert chosen == [("int8", False)] and quantized
    assert probe(tmp_path / "out.mp4")[0] == probe(clip)[0]
    videos = len(quantized)
    assert main(["--model", str(REALTIME), str(PHOTO), "--size", "64", "-o", str(tmp_path / "out.png")]) == 0
    assert chosen[-1] == ("auto", False) and len(quantized) == videos


DEADLOCK = """
import threading, time, torch
from PIL import Image
from fast_style.stylizer import Stylizer
from fast_style.transformer import TransformerConfig, TransformerNet
from fast_style.model_file import save_model
from fast_style.lanes import trace_inductors_dummy_once
trace_inductors_dummy_once()  # as the page does when it starts
torch.manual_seed(0)
path = save_model({path!r}, TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0)), {{}})
eager, int8 = (Stylizer.load(path, device="cpu", precision=p) for p in ("bf16", "int8"))
image, made = Image.new("RGB", (40, 30), "teal"), threading.Event()
threading.Thread(target=lambda: (int8(image), made.set()), daemon=True).start()
while not made.is_set():
    eager(image)
print("made")
"""


@pytest.mark.slow  # a process of its own: a deadlock freezes every thread of it
def test_an_int8_network_made_beside_eager_bf16_frames_does_not_deadlock(tmp_path: Path) -> None:
    """The page answers frames in bf16 while the int8 network is made in another thread. autocast's
    cache of weight casts is one for the process: this froze in 4 runs of 4 before the engine's
    weights stopped asking for gradients."""
    code = DEADLOCK.format(path=str(tmp_path / "tiny.safetensors"))
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("deadlocked: no int8 network after 120 s beside eager bf16 frames")
    assert result.stdout.strip() == "made", result.stderr[-2000:]
