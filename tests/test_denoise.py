from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from fast_style import Stylizer
from fast_style.denoise import Denoise
from fast_style.images import open_rgb
from fast_style.motion import GridLock
from fast_style.stylize import main
from fast_style.video import stylize_frames

PHOTO = Path(__file__).parents[1] / "data" / "examples" / "chicago.jpg"  # 712x474, a flat sky


def noisy(picture: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """A camera's frame: the picture with its own noise, in 8-bit steps."""
    return np.clip(picture + rng.normal(0, sigma, picture.shape).round(), 0, 255).astype(np.uint8)


def frame_to_frame(frames: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in pairwise(frames)]))


def filtered(frames: list[np.ndarray]) -> list[np.ndarray]:
    lock, denoise = GridLock(), Denoise()
    return [denoise(f, lock(f)) for f in frames]


def test_a_still_cameras_noise_is_filtered_and_a_clean_pan_and_a_cut_pass_unchanged() -> None:
    rng = np.random.default_rng(0)
    photo = np.asarray(open_rgb(PHOTO)).astype(float)
    still = [noisy(photo[:400, :700], rng) for _ in range(10)]
    kept = [f.copy() for f in still]
    out = filtered(still)
    assert all(np.array_equal(a, b) for a, b in zip(still, kept))  # the frames themselves untouched
    assert np.array_equal(out[0], still[0]) and out[0].dtype == np.uint8 and out[0].shape == (400, 700, 3)
    assert frame_to_frame(out[4:]) < 0.3 * frame_to_frame(still[4:])  # measured 0.44 against 2.25
    # The state follows the scene: a clean pan of (2, 3) pixels a frame comes out as it went in.
    pan = [np.ascontiguousarray(photo[2 * t : 2 * t + 300, 3 * t : 3 * t + 500].astype(np.uint8)) for t in range(10)]
    lock, denoise = GridLock(), Denoise()
    assert all(np.array_equal(denoise(f, lock(f)), f) for f in pan)
    # A cut: nothing of the scene before it is blended in.
    other = np.ascontiguousarray(np.asarray(Image.open(PHOTO).convert("RGB").rotate(180))[:300, :500])
    assert np.array_equal(denoise(other, lock(other)), other)


def test_someone_crossing_a_still_scene_leaves_no_trail() -> None:
    rng = np.random.default_rng(0)
    photo = np.asarray(open_rgb(PHOTO)).astype(float)[:300, :500]
    person = np.asarray(open_rgb(PHOTO).rotate(90)).astype(float)[:96, :64]
    clean = []
    for t in range(12):
        frame = photo.copy()
        frame[100:196, 100 + 8 * t : 164 + 8 * t] = person
        clean.append(frame)
    out = filtered([noisy(f, rng) for f in clean])
    left = (slice(100, 196), slice(100 + 8 * 11 - 24, 100 + 8 * 11))  # where it was 1-3 frames ago
    trail = np.abs(out[-1][left].astype(float) - clean[-1][left]).mean()
    assert trail < 2.0, trail  # the noise's own level (1.6 steps); a ghost of the person is tens


def test_stylize_frames_takes_the_noise_out_before_the_network(tiny_model: Path) -> None:
    rng = np.random.default_rng(0)
    photo = np.asarray(open_rgb(PHOTO).resize((96, 64))).astype(float)
    frames = [noisy(photo, rng) for _ in range(8)]
    stylizer = Stylizer.load(tiny_model, device="cpu")
    plain = list(stylize_frames(stylizer, iter(frames)))
    calm = list(stylize_frames(stylizer, iter(frames), denoise=True))
    assert len(calm) == 8 and all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in calm)
    assert frame_to_frame(calm[3:]) < 0.6 * frame_to_frame(plain[3:])
    # in the type each frame came in: PIL images (alpha kept) and (3, H, W) tensors in [0, 1]
    images = [Image.fromarray(f).convert("RGBA") for f in frames[:3]]
    out = list(stylize_frames(stylizer, iter(images), denoise=True))
    assert all(isinstance(o, Image.Image) and o.mode == "RGBA" and o.size == (96, 64) for o in out)
    tensors = [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames[:3]]
    out = list(stylize_frames(stylizer, iter(tensors), denoise=True))
    assert all(o.shape == (3, 64, 96) and o.is_floating_point() for o in out)


def test_denoise_on_a_video_calms_it_and_is_refused_for_images(tiny_model: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    photo = np.asarray(open_rgb(PHOTO).resize((96, 64))).astype(float)
    clip = tmp_path / "camera.mkv"
    with av.open(str(clip), "w") as out:  # lossless, so the camera's noise stays in it
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "bgr0"
        for _ in range(8):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(noisy(photo, rng), format="rgb24")))
        out.mux(stream.encode(None))
    common = ["--model", str(tiny_model), "--precision", "fp32", str(clip)]
    assert main([*common, "-o", str(tmp_path / "plain.mp4")]) == 0
    assert main([*common, "--denoise", "-o", str(tmp_path / "calm.mp4")]) == 0
    decoded = {}
    for name in ("plain", "calm"):
        with av.open(str(tmp_path / f"{name}.mp4")) as video:
            decoded[name] = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(decoded["calm"]) == 8
    assert frame_to_frame(decoded["calm"][3:]) < 0.6 * frame_to_frame(decoded["plain"][3:])
    capsys.readouterr()
    image = tmp_path / "a.jpg"
    Image.fromarray(photo.astype(np.uint8)).save(image)
    assert main(["--model", str(tiny_model), "--denoise", str(image)]) == 2
    assert capsys.readouterr().err.strip() == "error: --denoise applies to videos and --live only"
    assert not (tmp_path / "stylized").exists()
