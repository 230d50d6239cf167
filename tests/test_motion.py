from pathlib import Path

import av
import pytest
import torch
import torch.nn.functional as F

from fast_style import Stylizer
from fast_style.flicker import flicker, pan_clip, zoom_clip
from fast_style.images import open_rgb
from fast_style.motion import MAX_SCALE, GridLock, Motion, locked
from fast_style.pixels import to_tensor
from fast_style.stylize import main
from fast_style.video import stylize_frames, stylize_video

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "data" / "examples" / "chicago.jpg"
REALTIME8 = ROOT / "checkpoints" / "starry_night_realtime8.safetensors"  # downsamples by 8


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return to_tensor(open_rgb(PHOTO))  # (3, 474, 712)


@pytest.mark.parametrize("step", [(2, 3), (-5, 7), (0, 1), (13, -4)])
def test_a_pan_is_measured_to_the_pixel(photo: torch.Tensor, step: tuple[int, int]) -> None:
    lock, (dy, dx) = GridLock(), step
    for t in range(6):
        y, x = 60 + t * dy, 100 + t * dx
        motion = lock(photo[:, y : y + 240, x : x + 320])
    assert motion == pytest.approx((5 * dy, 5 * dx, 1), abs=0.3)  # sub-pixel: the windows bias it a little towards 0
    assert motion.scale == 1  # exactly: a pan is padded, never resampled


def test_a_uint8_frame_reads_as_its_tensor_does(photo: torch.Tensor) -> None:
    lock = GridLock()
    for t in range(3):
        frame = (photo[:, 2 * t : 2 * t + 200, 3 * t : 3 * t + 300] * 255).round().byte()
        motion = lock(frame.permute(1, 2, 0).numpy())
    assert motion == pytest.approx((4, 6, 1), abs=0.3)


def test_a_slow_pan_does_not_drift(photo: torch.Tensor) -> None:
    # Half a pixel a frame, made by halving a photo twice the size: each frame measured against a
    # reference, not the frame before, so the fractions do not add up to an error.
    big = F.interpolate(photo[None], scale_factor=2, mode="bilinear", align_corners=False)
    lock = GridLock()
    for t in range(24):
        motion = lock(F.avg_pool2d(big[:, :, t : t + 400, t : t + 600], 2)[0])
    assert motion == pytest.approx((11.5, 11.5, 1), abs=0.3)


def test_a_cut_leaves_the_grid_where_it_was(photo: torch.Tensor) -> None:
    lock = GridLock()
    lock(photo[:, :200, :300])
    assert lock(photo[:, 4:204, 8:308]) == pytest.approx((4, 8, 1), abs=0.05)
    torch.manual_seed(0)
    assert lock(torch.rand(3, 200, 300)) == pytest.approx((4, 8, 1), abs=0.05)  # nothing in common: no motion read


def test_something_crossing_a_still_camera_does_not_move_the_grid(photo: torch.Tensor) -> None:
    # A face (another photo's) walks across the middle of a still scene: the corners outvote it.
    face = to_tensor(open_rgb(ROOT / "data" / "examples" / "chicago.jpg"))[:, 150:350, 300:480]
    lock = GridLock()
    for t in range(12):
        frame = photo[:, :360, :480].clone()
        frame[:, 80:280, 150 + 4 * t : 330 + 4 * t] = face
        motion = lock(frame)
    assert motion == pytest.approx((0, 0, 1), abs=0.05)
    assert motion.scale == 1  # no zoom read either


def zoomed(photo: torch.Tensor, scale: float, about: tuple[float, float], size: tuple[int, int]) -> torch.Tensor:
    """The centre `size` window of the photo, magnified by `scale` about the window's pixel `about`."""
    h, w = size
    top, left = (photo.shape[-2] - h) // 2, (photo.shape[-1] - w) // 2
    ys = (about[0] + (torch.arange(h) - about[0]) / scale + top) * 2 / (photo.shape[-2] - 1) - 1
    xs = (about[1] + (torch.arange(w) - about[1]) / scale + left) * 2 / (photo.shape[-1] - 1) - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
    return F.grid_sample(photo[None], grid, align_corners=True)[0]


@pytest.mark.parametrize("rate", [1.02, 1 / 1.025])
@pytest.mark.parametrize("about", [(119.5, 159.5), (80.0, 210.0)])  # the centre; off it, a zoom and a pan
def test_a_zoom_is_measured_and_the_grid_starts_afresh_past_max_scale(photo: torch.Tensor, rate: float,
                                                                      about: tuple[float, float]) -> None:
    lock, c = GridLock(), (119.5, 159.5)
    scales = []
    for t in range(20):
        motion = lock(zoomed(photo, rate**t, about, (240, 320)))
        scales.append(motion.scale)
        k = rate**t / motion.scale  # the scene's geometry: the first frame's, magnified by k at each fresh start
        # Frame t's pixel p shows the first frame's about + (p - about) / rate**t.
        truth = [(a - ci) * (1 - rate**-t) * k for a, ci in zip(about, c)]
        assert (motion.y, motion.x) == pytest.approx(truth, abs=0.5)  # to half a pixel after 19 frames
    steps = [b / a for a, b in zip(scales, scales[1:])]
    assert all(1 <= s <= MAX_SCALE for s in scales)
    assert sum(abs(s - rate) < 0.005 for s in steps) >= 15  # followed frame to frame
    assert sum(abs(s - rate) > 0.03 for s in steps) >= 2  # and started afresh


def test_a_cut_after_a_zoom_starts_the_next_shot_at_its_size(photo: torch.Tensor) -> None:
    lock = GridLock()
    for t in range(4):
        motion = lock(zoomed(photo, 1.03**t, (119.5, 159.5), (240, 320)))
    assert motion.scale == pytest.approx(1.03**3, abs=0.01)
    torch.manual_seed(0)
    assert lock(torch.rand(3, 240, 320)) == (motion.y, motion.x, 1)  # the grid's phase kept, its scale not


def test_locking_a_zoom_resamples_into_one_shape_and_back() -> None:
    ramp = torch.linspace(0, 1, 50)[None, :] * 0.5 + torch.linspace(0, 1, 37)[:, None] * 0.3  # (37, 50)
    x = torch.stack([ramp, 1 - ramp, ramp.flip(1)])[None].expand(2, -1, -1, -1)  # (2, 3, 37, 50)
    seen = []

    def run(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.shape)
        return 1 - z

    y = locked(run, x, [Motion(3.3, -2.0, 1.07), (12.6, 7.4)], multiple=8)
    assert seen == [(2, 3, 45, 58)]  # the shape a pan's frame has
    # Resampling there and back keeps a linear picture, away from the edges (to a tenth of its
    # step between pixels: bicubic is not exactly linear).
    assert torch.allclose(y[..., 2:-2, 2:-2], 1 - x[..., 2:-2, 2:-2], atol=1e-3)


def test_locking_pads_and_crops_back_exactly() -> None:
    x = torch.rand(3, 3, 37, 50)
    seen = []

    def run(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.shape)
        return z * 2

    y = locked(run, x, [(0, 0), (3, -2), (12.6, 7.4)], multiple=8)
    assert seen == [(3, 3, 45, 58)]  # one shape whatever the motion: compiled and int8 networks are made once
    assert torch.equal(y, x * 2)


@pytest.mark.parametrize("size", [None, 96])  # with --size the grid is the scaled frame's: the motion is scaled too
def test_a_locked_grid_takes_the_flicker_out_of_a_pan(photo: torch.Tensor, size: int | None) -> None:
    stylizer = Stylizer.load(REALTIME8, precision="fp32")
    assert stylizer.grid == 8
    clip = pan_clip(photo, frames=8, size=(128, 192), step=(4, 6))  # at size 96: (2, 3) network pixels a frame
    lock = GridLock()
    plain = flicker(lambda batch: stylizer.stylize_tensor(batch, size), clip)
    steady = flicker(lambda batch: stylizer.stylize_tensor(batch, size, motion=[lock(f) for f in batch]), clip)
    assert steady < 0.4 * plain  # 0.07 -> 0.015 on the content photos (docs/video.md)


@pytest.mark.parametrize("size", [None, 160])  # with --size the zoom is resampled at the network's size
def test_a_locked_grid_takes_the_flicker_out_of_a_zoom(photo: torch.Tensor, size: int | None) -> None:
    stylizer = Stylizer.load(REALTIME8, precision="fp32")
    clip = zoom_clip(photo, frames=10, size=(192, 256))
    lock = GridLock()
    plain = flicker(lambda batch: stylizer.stylize_tensor(batch, size), clip)
    steady = flicker(lambda batch: stylizer.stylize_tensor(batch, size, motion=[lock(f) for f in batch]), clip)
    assert steady < 0.65 * plain  # 0.069 -> 0.033 on the content photos (docs/video.md)


def write_pan(path: Path, photo: torch.Tensor, frames: int, size: tuple[int, int], step: tuple[int, int]) -> Path:
    h, w = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10, options={"crf": "0"})
        v.width, v.height, v.pix_fmt = w, h, "yuv444p"
        for t in range(frames):
            crop = photo[:, t * step[0] : t * step[0] + h, t * step[1] : t * step[1] + w]
            array = (crop * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
            out.mux(v.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(v.encode(None))
    return path


def frames_of(path: Path) -> torch.Tensor:
    with av.open(str(path)) as inp:
        return torch.stack([torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255
                            for f in inp.decode(video=0)])


def test_videos_and_live_frames_lock_the_grid_unless_told_not_to(photo: torch.Tensor, tmp_path: Path) -> None:
    clip = write_pan(tmp_path / "pan.mp4", photo, frames=8, size=(128, 160), step=(2, 3))
    stylizer = Stylizer.load(REALTIME8, precision="fp32")
    video, live = {}, {}
    for grid_lock in (True, False):
        target = tmp_path / f"out_{grid_lock}.mp4"
        stylize_video(stylizer, clip, target, progress=False, grid_lock=grid_lock, crf=0)
        out = frames_of(target)
        video[grid_lock] = (out[1:, :, :-2, :-3] - out[:-1, :, 2:, 3:]).abs().mean().item()
        out = torch.stack(list(stylize_frames(stylizer, iter(frames_of(clip)), grid_lock=grid_lock)))
        live[grid_lock] = (out[1:, :, :-2, :-3] - out[:-1, :, 2:, 3:]).abs().mean().item()
    assert video[True] < 0.4 * video[False]
    assert live[True] < 0.4 * live[False]


def test_grid_lock_is_refused_for_images_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--model", str(REALTIME8), str(PHOTO), "-o", str(tmp_path / "out.jpg"), "--no-grid-lock"]) == 2
    assert capsys.readouterr().err.strip() == "error: --no-grid-lock: applies to videos, animations and --live only"
    assert not (tmp_path / "out.jpg").exists()
