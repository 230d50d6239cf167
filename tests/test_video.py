import re
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from conftest import SHARED_DATA, make_photo, require
from fast_style import Stylizer, encoders
from fast_style.animation import stylize_animation
from fast_style.live import has_display
from fast_style.stylize import main
from fast_style.video import _Clock, stylize_frames, stylize_video, upright


def make_clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), rate: int = 10, audio: bool = True,
              rotation: int = 0, sar: Fraction | None = None) -> Path:
    """A small H.264 clip with a moving square and, optionally, an AAC sine tone."""
    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if sar:
            v.codec_context.sample_aspect_ratio = sar
        if rotation:
            v.set_display_rotation(rotation)
        a = out.add_stream("aac", rate=22050) if audio else None
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[10:20, 2 * i : 2 * i + 10] = 255
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            t = np.arange(int(22050 * frames / rate)) / 22050
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 22050
            out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


# int8, the default for videos on x86, compiles per frame size (seconds): where that is not what a
# test checks, fp32. test_int8.py runs videos through the default path.
FP32 = ["--precision", "fp32"]


def probe(path: Path) -> tuple[int, float, int, tuple[int, int]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return n, float(v.average_rate), len(c.streams.audio), (v.codec_context.width, v.codec_context.height)


def test_clip_round_trips_frames_rate_and_audio(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out.mp4"
    assert main(["--model", str(tiny_model), str(src), "-o", str(out), *FP32]) == 0
    assert probe(out) == (12, 10.0, 1, (64, 48))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    # stderr is not a terminal here: no progress bar, whose \r-separated updates made one long line in a log
    assert capsys.readouterr().err == ""


def test_crf_sets_the_encoders_quality_and_is_refused_where_it_has_none(tiny_model: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=12, size=(128, 96), audio=False)
    sizes = {}
    for crf in ("18", "35"):
        out = tmp_path / f"o{crf}.mp4"
        assert main(["--model", str(tiny_model), str(src), "-o", str(out), "--crf", crf, *FP32]) == 0
        assert probe(out)[0] == 12
        sizes[crf] = out.stat().st_size
    assert sizes["35"] < sizes["18"] / 2
    capsys.readouterr()
    for target, crf, message in [("o.gif", "20", "an animated GIF has no --crf: its quality is set"),
                                 ("o52.mp4", "52", "--crf 52 is outside H.264's 0 to 51 (default 18)")]:
        assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / target), "--crf", crf, *FP32]) == 1
        assert capsys.readouterr().err.splitlines()[0] == f"error: {src}: {message}"
        assert not (tmp_path / target).exists()
    photo = make_photo(tmp_path / "p.jpg", (40, 30))  # it was ignored without a word
    assert main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "p_out.jpg"), "--crf", "20"]) == 2
    assert capsys.readouterr().err == "error: --crf applies to videos and --live only\n"
    assert not (tmp_path / "p_out.jpg").exists()


def test_output_size_scales_the_longest_side_to_even_numbers(tiny_model: Path, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mkv", audio=False)
    stylizer = Stylizer.load(tiny_model, device="cpu")
    result = stylize_video(stylizer, src, tmp_path / "small.mp4", output_size=33, progress=False)
    assert result.frames == 12 and result.audio is None
    assert probe(tmp_path / "small.mp4")[3] == (32, 24)  # 33 x 24.75, down to even sides


def test_a_video_made_meanwhile_under_the_output_name_is_kept(tiny_model: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    """A video takes minutes: another run may write its name in the meantime."""
    import fast_style.video

    src, out = make_clip(tmp_path / "clip.mkv", frames=3, audio=False), tmp_path / "out" / "styled.mp4"
    transcode = fast_style.video._transcode

    def another_run_first(*args: object) -> object:
        out.write_bytes(b"the other run's")
        return transcode(*args)

    monkeypatch.setattr(fast_style.video, "_transcode", another_run_first)
    assert main(["--model", str(tiny_model), str(src), "-o", str(out), *FP32]) == 1
    assert out.read_bytes() == b"the other run's" and [p.name for p in out.parent.iterdir()] == ["styled.mp4"]
    assert capsys.readouterr().err.splitlines()[-2] == (
        f"error: {src}: output {out} appeared while this run wrote it (another run?); kept it (pass --overwrite to replace it)")
    assert main(["--model", str(tiny_model), str(src), "-o", str(out), "--overwrite", *FP32]) == 0 and probe(out)[0] == 3


def signal_once_writing(folder: Path, signum: int, after: float = 0.0) -> threading.Thread:
    """Sends this process `signum` once a temporary output file appears in `folder` (and `after` s)."""
    import os
    import signal
    import time

    def send() -> None:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".") for p in folder.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(after)
        os.kill(os.getpid(), signum)

    folder.mkdir(parents=True, exist_ok=True)
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def signals() -> Iterator[list[int]]:
    """Ctrl-C as a terminal delivers it, even where the suite runs in the background (SIGINT
    ignored); a SIGTERM that comes too late for the run is kept in the list, not the suite's end."""
    import signal

    late: list[int] = []
    kept = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
            signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: late.append(signum))}
    yield late
    for signum, handler in kept.items():
        signal.signal(signum, handler)


def test_ctrl_c_ends_a_live_recording_and_keeps_it(tiny_model: Path, tmp_path: Path, signals: list[int],
                                                    capsys: pytest.CaptureFixture) -> None:
    """A live source ends only when stopped: Ctrl-C raised where the run was, and the whole recording was lost."""
    import signal

    out = tmp_path / "rec" / "live.mp4"
    sender = signal_once_writing(out.parent, signal.SIGINT, after=1.0)
    assert main(["--model", str(tiny_model), "--live", "testsrc=size=64x48:rate=10", "--live-format", "lavfi",
                 "--frames", "100000", "-o", str(out), *FP32]) == 0
    sender.join()
    err = capsys.readouterr().err
    assert f"ending the recording: {out} is written with the frames read so far (Ctrl-C again drops it)" in err
    frames = probe(out)[0]
    assert 0 < frames < 100000 and [p.name for p in out.parent.iterdir()] == ["live.mp4"]


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_stopped_video_leaves_no_file_and_one_line(tiny_model: Path, tmp_path: Path, signals: list[int], signum: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    """Ctrl-C was a traceback into torch; SIGTERM's default left the temporary file behind."""
    import signal

    src = make_clip(tmp_path / "clip.mkv", frames=400, size=(320, 240), audio=False)
    out = tmp_path / "out" / "styled.mp4"
    sender = signal_once_writing(out.parent, getattr(signal, signum))
    code = main(["--model", str(tiny_model), str(src), "-o", str(out), *FP32])
    sender.join()
    how = {"SIGINT": "interrupted", "SIGTERM": "stopped by SIGTERM"}[signum]
    assert (code, capsys.readouterr().err.splitlines()[-1]) == (
        128 + getattr(signal, signum),
        f"{how}: the outputs finished before it are kept, whole; the one being written is not (--skip-existing goes on "
        "from them)")
    assert list(out.parent.iterdir()) == [] and signals == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the run's handlers are gone with it


def test_a_video_to_a_read_only_disk_is_one_line_naming_the_output(tiny_model: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """Its line named only the folder: "[Errno 30] Read-only file system: 'stylized'" (tried on a read-only tmpfs)."""
    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(self))

    src = make_clip(tmp_path / "clip.mkv", frames=3, audio=False)
    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "out" / "v.mp4"), *FP32]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: {src}: cannot write {tmp_path / 'out' / 'v.mp4'} (Read-only file system)")


def test_a_video_named_without_its_suffix_is_a_video(tiny_model: Path, tmp_path: Path) -> None:
    """`clip` (a download) was read as a picture: "not an image file Pillow can read"."""
    src = make_clip(tmp_path / "clip.mp4", frames=3, audio=False).rename(tmp_path / "clip")
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "out"), *FP32]) == 0
    assert probe(tmp_path / "out" / "clip_tiny.mp4")[0] == 3


def test_size_is_the_network_size_for_videos_as_for_images(tiny_model: Path, tmp_path: Path) -> None:
    """One meaning for --size: the frames keep their size; the network sees them at 32 px."""
    src = make_clip(tmp_path / "clip.mkv", frames=3, audio=False)
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "a.mp4"), "--size", "32", *FP32]) == 0
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "b.mp4"), "--output-size", "32", *FP32]) == 0
    assert probe(tmp_path / "a.mp4")[3] == (64, 48) and probe(tmp_path / "b.mp4")[3] == (32, 24)


def test_live_to_an_existing_file_needs_overwrite(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "live.mp4"
    out.write_bytes(b"precious")
    live = ["--model", str(tiny_model), "--live", "testsrc=size=64x48:rate=10", "--live-format", "lavfi", "--frames", "3",
            "--precision", "fp32"]
    assert main([*live, "-o", str(out)]) == 1
    assert out.read_bytes() == b"precious"
    assert capsys.readouterr().err.strip() == (
        f"error: testsrc=size=64x48:rate=10: output {out} exists (pass --overwrite to replace it)")
    assert main([*live, "-o", str(out), "--overwrite"]) == 0 and probe(out)[0] == 3


def test_out_of_memory_in_one_video_is_one_line_and_the_next_goes_on(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_clip(tmp_path / "big.mp4", frames=3, audio=False, size=(96, 64))
    second = make_clip(tmp_path / "small.mp4", frames=3, audio=False)
    real = Stylizer.stylize_tensor

    def short_of_memory(self: Stylizer, batch: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if batch.shape[-1] == 96:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore details")
        return real(self, batch, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "stylize_tensor", short_of_memory)
    assert main(["--model", str(tiny_model), str(first), str(second), "-o", str(tmp_path / "out"), "--precision", "fp32"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error") or "failed" in line]
    assert err == [f"error: {first}: CUDA out of memory. Tried to allocate 2.00 GiB", "1 of 2 inputs failed"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small_tiny.mp4"]  # nothing half-written


def test_optimize_refuses_videos_and_live_sources_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")  # a painting there: a missing one is said first
    style = ["--optimize", "--style-image", str(tmp_path / "x.jpg")]
    assert main([*style, str(clip)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {clip}: --optimize works on images only (a video would take hours a second)"
    with pytest.raises(SystemExit):
        main([*style, "--live", "testsrc", "--live-format", "lavfi"])
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "--live: does not apply to --optimize (images only, each optimised on its own in fp32)")


def test_a_rotated_phone_video_comes_out_upright(tiny_model: Path, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "phone.mov", rotation=90, audio=False)
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 90 and upright(frame).shape == (64, 48, 3)
        assert upright(frame)[:, 10:20].mean() > 5 * upright(frame)[:, -20:].mean()  # the square near the top: now left
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.mp4"), *FP32]) == 0
    assert probe(tmp_path / "o.mp4")[0] == 12 and probe(tmp_path / "o.mp4")[3] == (48, 64)


PATCHES = np.array([[200, 30, 30], [30, 170, 60], [40, 60, 200], [230, 200, 40]], np.uint8)  # saturated RGB


def patch_colours(rgb: np.ndarray) -> np.ndarray:
    """The mean colour inside each of four vertical bands, away from their edges: (4, 3)."""
    w = rgb.shape[1] // 4
    return np.stack([rgb[8:-8, i * w + 8 : (i + 1) * w - 8].reshape(-1, 3).mean(0) for i in range(4)])


def test_an_untagged_stream_gets_the_yuv_matrix_players_assume_for_its_size() -> None:
    for w, h in [(640, 480), (1280, 720)]:
        rgb = av.VideoFrame.from_ndarray(np.repeat(np.repeat(PATCHES[None], h, 0), w // 4, 1), format="rgb24")
        matrix = av.video.reformatter.Colorspace.ITU709 if h >= 720 else av.video.reformatter.Colorspace.ITU601
        yuv = rgb.reformat(format="yuv420p", dst_colorspace=matrix)
        yuv.colorspace = 2  # as a stream that says nothing decodes
        assert np.abs(patch_colours(upright(yuv)) - PATCHES).max() <= 2, (w, h)


@pytest.mark.parametrize("output", ["o.mp4", "o.webm"])  # H.264, VP9
def test_video_colours_come_back_as_they_went_in_and_the_output_says_its_matrix(tiny_model: Path, tmp_path: Path,
                                                                                output: str) -> None:
    """An HD clip whose stream does not name its matrix is shown with BT.709 by players; the output
    must look the same at strength 0, whatever the player, so it is tagged."""
    src = tmp_path / "hd.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 1280, 720, "yuv420p"
        rgb = av.VideoFrame.from_ndarray(np.repeat(np.repeat(PATCHES[None], 720, 0), 320, 1), format="rgb24")
        for _ in range(2):
            out.mux(v.encode(rgb.reformat(format="yuv420p", dst_colorspace=av.video.reformatter.Colorspace.ITU709)))
        out.mux(v.encode(None))
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / output), "--strength", "0", *FP32]) == 0
    with av.open(str(tmp_path / output)) as c:
        cc = c.streams.video[0].codec_context
        assert cc.name == {"o.mp4": "h264", "o.webm": "vp9"}[output]
        assert (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range) == (1, 1, 1, 1)  # BT.709, limited range
        frame = next(c.decode(video=0))
        assert np.abs(patch_colours(upright(frame)) - PATCHES).max() <= 3
        # and as FFmpeg alone reads it (BT.709, from the tag), not only through upright's guess
        assert np.abs(patch_colours(frame.to_ndarray(format="rgb24")) - PATCHES).max() <= 3


def gif_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Each frame as RGB and its delay in ms, as Pillow (and browsers) read them."""
    frames, delays = [], []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")).astype(np.float32))
            delays.append(im.info["duration"])
    return frames, delays


def test_an_animated_gif_comes_out_a_gif_of_its_size_and_timing(tiny_model: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """GIFs stay GIFs, as photos keep their format; odd sides are kept (no yuv420p to halve)."""
    colours = [PATCHES[None, None, i].repeat(21, 0).repeat(31, 1) for i in range(4)]
    frames = [Image.fromarray(c) for c in colours]
    frames[0].save(tmp_path / "meme.gif", save_all=True, append_images=frames[1:], duration=[100, 200, 100, 300], loop=0)
    assert main(["--model", str(tiny_model), str(tmp_path / "meme.gif"), "-o", str(tmp_path / "out"), "--strength", "0",
                 *FP32]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'out' / 'meme_tiny.gif'} (4 frames at 5.88235 fps)"  # on average
    out, delays = gif_frames(tmp_path / "out" / "meme_tiny.gif")
    assert delays == [100, 200, 100, 300]
    assert [f.shape for f in out] == [(21, 31, 3)] * 4
    assert max(np.abs(f - c).max() for f, c in zip(out, colours)) <= 2  # a palette of each frame's own colours
    stylizer = Stylizer.load(tiny_model, device="cpu")
    with pytest.raises(ValueError, match="an animated GIF has no --crf: its quality is set"):
        stylize_video(stylizer, tmp_path / "meme.gif", tmp_path / "o.gif", crf=20, progress=False)


def test_a_clip_that_fades_in_from_black_keeps_its_colours_as_a_gif(tiny_model: Path, tmp_path: Path) -> None:
    """A palette for each frame: one palette, made from the first frame, would have been all blacks."""
    src = tmp_path / "fade.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=10, options={"crf": "0"})
        v.width, v.height, v.pix_fmt = 128, 48, "yuv444p"
        for gain in (0, 0.3, 1):
            rgb = (np.repeat(np.repeat(PATCHES[None], 48, 0), 32, 1) * gain).astype(np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(v.encode(None))
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.gif"), "--strength", "0", *FP32]) == 0
    frames, delays = gif_frames(tmp_path / "o.gif")
    assert len(frames) == 3 and delays == [100, 100, 100]
    assert np.abs(patch_colours(frames[-1].astype(np.uint8)) - PATCHES).max() <= 6


def test_a_gif_drops_frames_closer_than_browsers_play(tiny_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """A GIF's delays are in 1/100 s and browsers play 0 and 1 as 10: 60 fps would run at a sixth."""
    src = make_clip(tmp_path / "fast.mp4", frames=12, rate=60)
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.gif"), *FP32]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'o.gif'} (6 frames at 30 fps)"
    frames, delays = gif_frames(tmp_path / "o.gif")
    assert len(frames) == 6 and min(delays) >= 20 and sum(delays) in (190, 200)  # 6 frames at 1/30 s: 3 and 4 hundredths


@pytest.mark.parametrize("rate, fps, kept", [(25, 12, [0, 3, 5, 7, 9, 11]), (30, 15, [0, 2, 4, 6, 8, 10])])
def test_fps_keeps_the_first_frame_of_each_slot_of_time(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         rate: int, fps: int, kept: list[int]) -> None:
    """25 fps at 12 is 12 a second, not every third frame's 8.3; the GIF keeps the clip's length."""
    src = make_clip(tmp_path / "clip.mp4", frames=12, rate=rate, audio=False)
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.gif"), "--fps", str(fps), *FP32]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'o.gif'} ({len(kept)} frames at {rate * len(kept) / 12:g} fps)"
    with av.open(str(src)) as c:
        times = [round(float(f.pts * f.time_base) * 100) for f in c.decode(video=0)]  # in hundredths
    frames, delays = gif_frames(tmp_path / "o.gif")
    assert len(frames) == len(kept)
    assert delays[:-1] == [10 * (times[b] - times[a]) for a, b in zip(kept, kept[1:])]


def test_a_clip_as_an_animated_webp_loops_with_its_timing_and_colours(tiny_model: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """What browsers show as an image, at under half a GIF's size. FFmpeg's muxer plays once
    unless told; frames 10 ms apart or less are shown for 100 ms, so 100 fps becomes 50."""
    src = tmp_path / "fast.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=100, options={"crf": "0"})
        v.width, v.height, v.pix_fmt = 128, 48, "yuv444p"
        for i in range(8):
            rgb = np.repeat(np.repeat(PATCHES[None], 48, 0), 32, 1)
            rgb[:6, 10 * i : 10 * i + 6] = 0  # a square that moves, above the measured patches: no two frames alike
            out.mux(v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(v.encode(None))
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.webp"), "--strength", "0", *FP32]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'o.webp'} (4 frames at 50 fps)"
    with Image.open(tmp_path / "o.webp") as im:
        assert (im.n_frames, im.size, im.info["loop"]) == (4, (128, 48), 0)
        for frame in ImageSequence.Iterator(im):
            frame.load()
            assert frame.info["duration"] == 20
            assert np.abs(patch_colours(np.asarray(frame.convert("RGB"))) - PATCHES).max() <= 4
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "odd.webp"), "--output-size", "33", *FP32]) == 0
    assert Image.open(tmp_path / "odd.webp").size == (33, 12)  # odd sides kept: no yuv420p to halve


def test_webm_takes_vp9_and_opus_and_a_webm_stays_webm(tiny_model: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    """WebM takes VP8, VP9 or AV1 with Opus or Vorbis: an AAC track is re-encoded, Opus copied."""
    src = make_clip(tmp_path / "clip.mp4")  # H.264 and AAC
    webm = tmp_path / "clip.webm"
    assert main(["--model", str(tiny_model), str(src), "-o", str(webm), *FP32]) == 0
    assert main(["--model", str(tiny_model), str(webm), "-o", str(tmp_path / "out"), *FP32]) == 0
    out = tmp_path / "out" / "clip_tiny.webm"
    assert capsys.readouterr().out.split("\n")[:2] == [f"{webm} (12 frames at 10 fps, audio re-encoded)",
                                                       f"{out} (12 frames at 10 fps, audio copied)"]
    for path in (webm, out):
        with av.open(str(path)) as c:
            assert [s.codec_context.name for s in c.streams] == ["vp9", "opus"]
        assert probe(path) == (12, 10.0, 1, (64, 48))


@pytest.mark.parametrize("transfer, white", [(18, 0.75), (16, 0.5807)])  # HLG, PQ: 203 cd/m2, BT.2408's reference white
def test_an_hdr_clip_comes_out_with_its_whites_white_not_grey(tiny_model: Path, tmp_path: Path, transfer: int,
                                                              white: float) -> None:
    """A phone's HDR clip (HEVC, BT.2020, HLG or PQ): read as SDR numbers, its diffuse white came
    out grey (189 of 255 for HLG, 146 for PQ) and its colours dull."""
    signal = np.zeros((48, 64, 3))
    signal[:, :32] = white  # reference white
    signal[:, 32:] = [0.25 * white, white, 0.25 * white]  # a BT.2020 green at the white's level
    src = tmp_path / "hdr.mkv"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx265", rate=10, options={"x265-params": "log-level=error"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p10le"
        v.codec_context.colorspace = v.codec_context.color_primaries = 9  # BT.2020
        v.codec_context.color_trc, v.codec_context.color_range = transfer, 1
        rgb = av.VideoFrame.from_ndarray((signal * 65535).astype(np.uint16), format="rgb48le")
        for i in range(2):
            frame = rgb.reformat(format="yuv420p10le", dst_colorspace=av.video.reformatter.Colorspace.BT2020)
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.mp4"), "--strength", "0", *FP32]) == 0
    with av.open(str(tmp_path / "o.mp4")) as c:
        rgb = upright(next(c.decode(video=0))).astype(int)
    assert rgb[8:-8, 4:28].min() >= 240  # white
    r, g, b = rgb[8:-8, 36:60].reshape(-1, 3).mean(0)
    assert g >= 200 and r <= 40 and b <= 60  # green, saturated (read as SDR: 44, 187, 45 for HLG)


@pytest.mark.parametrize("transfer", [16, 18])  # PQ, HLG
def test_sdr_colours_made_hdr_by_bt2408_come_back_unchanged_below_the_highlights(transfer: int) -> None:
    """The inverse of fast_style.hdr's mapping written out here (sRGB -> linear -> BT.2020 -> 203
    cd/m2 white -> PQ, or HLG's inverse OOTF and OETF): every pixel below the roll-off returns."""
    from fast_style.hdr import BT2020_LUMA, BT2020_TO_BT709, hdr_to_sdr

    x = np.asarray(Image.open("data/examples/chicago.jpg").convert("RGB"), np.float64) / 255
    nits = 203 * np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4) @ np.linalg.inv(BT2020_TO_BT709).T
    if transfer == 16:
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        y = np.maximum(nits / 10000, 0) ** m1
        signal = ((c1 + c2 * y) / (1 + c3 * y)) ** m2
    else:
        luminance = np.maximum(nits @ BT2020_LUMA, 1e-9)[..., None]
        scene = np.clip(nits / 1000 * (luminance / 1000) ** (-0.2 / 1.2), 0, 1)
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        signal = np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-12)) + c)
    back = hdr_to_sdr(np.rint(np.clip(signal, 0, 1) * 65535).astype(np.uint16), transfer).astype(int)
    below = x.max(-1) * 255 < 237  # linear 0.85: the knee
    assert below.mean() > 0.5 and np.abs(back - np.rint(x * 255))[below].max() <= 1


def test_non_square_pixels_keep_their_shape(tiny_model: Path, tmp_path: Path) -> None:
    """A DV or DVD clip's pixels are wider than tall (32:27 for 16:9 PAL): the output dropped that,
    and players showed the picture squeezed."""
    for rotation, expected in [(0, Fraction(32, 27)), (90, Fraction(27, 32))]:
        src = make_clip(tmp_path / f"dv{rotation}.mp4", audio=False, sar=Fraction(32, 27), rotation=rotation)
        out = tmp_path / f"o{rotation}.mp4"
        assert main(["--model", str(tiny_model), str(src), "-o", str(out), "--output-size", "32", *FP32]) == 0
        with av.open(str(out)) as c:
            assert c.streams.video[0].sample_aspect_ratio == expected


def test_every_audio_track_is_kept_with_its_language(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A film's second language was dropped, silently, until session 29. PCM does not go in MP4."""
    src = tmp_path / "two.mkv"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        tracks = [out.add_stream("aac", rate=22050), out.add_stream("pcm_s16le", rate=22050)]
        for track, language in zip(tracks, ("eng", "fra")):
            track.metadata["language"] = language
        for _ in range(5):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        out.mux(v.encode(None))
        for track, hz in zip(tracks, (440, 660)):
            samples = (0.3 * np.sin(2 * np.pi * hz * np.arange(11025) / 22050)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 22050
            out.mux(track.encode(frame))
            out.mux(track.encode(None))
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.mp4"), *FP32]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'o.mp4'} (5 frames at 10 fps, audio copied and re-encoded (2 tracks))"
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [(a.codec_context.name, a.metadata.get("language")) for a in c.streams.audio] == [("aac", "eng"), ("aac", "fra")]
        pitch = []
        for a in c.streams.audio:  # each track its own tone, in its place
            with av.open(str(tmp_path / "o.mp4")) as d:
                wave = np.concatenate([f.to_ndarray().reshape(-1) for f in d.decode(d.streams.audio[a.index - 1])])
            pitch.append(np.argmax(np.abs(np.fft.rfft(wave[:8192]))) * a.rate / 8192)
        assert np.allclose(pitch, [440, 660], atol=10)
    # had the PCM track been copied, MP4's muxer would have refused its header: one line, no file
    monkeypatch.setattr(encoders, "named", lambda source: True)
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "copied.mp4"), *FP32]) == 1
    err = capsys.readouterr().err.split("\n")
    assert err[0] == f"error: {src}: cannot be encoded (Invalid argument)"  # not the temporary file's name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "o.mp4", "two.mkv"]


def test_camcorder_dvd_and_older_formats_are_read_as_videos(tiny_model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    """A camcorder's AVCHD .MTS or DV, a DVD's .VOB, and the like: found in a folder as videos and
    written as .mp4 (they were taken for pictures Pillow could not read; as outputs they are refused,
    as .mpg is below). A DV file's stream says its average rate is 60000: FFmpeg's guess, 29.97, is taken.
    A .ts or .mod that is not an MPEG stream (TypeScript, Go) is no input of a folder's."""
    ntsc = Fraction(30000, 1001)
    made = {"CAM.MTS": ("mpegts", "libx264", 25), "dvd.vob": ("vob", "mpeg2video", 25), "tv.ts": ("mpegts", "libx264", 25),
            "JVC.MOD": ("vob", "mpeg2video", 25),
            "old.mpg": ("mpeg", "mpeg1video", 25), "screen.flv": ("flv", "libx264", 25),
            "clip.wmv": ("asf", "wmv2", 25), "phone.3gp": ("3gp", "libx264", 25), "tape.dv": ("dv", "dvvideo", ntsc)}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "app.ts").write_text("export const fps: number = 25;\n")  # TypeScript and Go: left out
    (tmp_path / "in" / "go.mod").write_text("module example.com/clips\n")
    for name, (fmt, codec, rate) in made.items():
        with av.open(str(tmp_path / "in" / name), "w", format=fmt) as out:
            v = out.add_stream(codec, rate=rate)
            v.width, v.height, v.pix_fmt = (720, 480, "yuv411p") if codec == "dvvideo" else (64, 48, "yuv420p")
            for i in range(5):
                img = np.zeros((v.height, v.width, 3), np.uint8)
                img[10:20, 4 * i : 4 * i + 10] = 255
                frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=v.pix_fmt)
                frame.pts = i
                out.mux(v.encode(frame))
            out.mux(v.encode(None))
    assert main(["--model", str(tiny_model), str(tmp_path / "in"), "-o", str(tmp_path / "out"), *FP32]) == 0
    for name, (_, _, rate) in made.items():
        frames, written_rate, _, _ = probe(tmp_path / "out" / f"{Path(name).stem}_tiny.mp4")
        assert frames == 5 and abs(written_rate - rate) < 0.01 * rate, name
    assert "tape_tiny.mp4 (5 frames at 29.97 fps)" in capsys.readouterr().out
    assert len(list((tmp_path / "out").iterdir())) == len(made)


def test_subtitles_are_copied_where_the_container_takes_them(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "subs.srt").write_text("1\n00:00:00,100 --> 00:00:00,400\nHello\n\n2\n00:00:00,500 --> 00:00:00,900\nWorld\n")
    src = tmp_path / "subbed.mkv"
    with av.open(str(tmp_path / "subs.srt")) as srt, av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        subs = out.add_stream_from_template(srt.streams.subtitles[0])
        subs.metadata["language"] = "fra"
        for _ in range(10):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        out.mux(v.encode(None))
        for packet in srt.demux(srt.streams.subtitles[0]):
            if packet.dts is not None:
                packet.stream = subs
                out.mux(packet)
    for name in ("o.mkv", "o.mp4"):
        assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / name), *FP32]) == 0
    with av.open(str(tmp_path / "o.mkv")) as c:
        [track] = c.streams.subtitles
        assert track.metadata["language"] == "fra"
        assert [(p.pts * p.time_base, bytes(p)) for p in c.demux(track) if p.size] == [(Fraction(1, 10), b"Hello"),
                                                                                      (Fraction(1, 2), b"World")]
    with av.open(str(tmp_path / "o.mp4")) as c:  # MP4 takes only mov_text: left out, and the video made
        assert len(c.streams.subtitles) == 0 and len(c.streams.video) == 1


def test_the_film_is_stylized_not_a_one_frame_track_before_it(tiny_model: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "film.mkv"
    with av.open(str(src), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        out.mux(cover.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")))
        out.mux(cover.encode(None))
        for _ in range(5):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        out.mux(v.encode(None))
    with av.open(str(src)) as c:
        assert [s.codec_context.name for s in c.streams.video] == ["mjpeg", "h264"]
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.mp4"), *FP32]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'o.mp4'} (5 frames at 10 fps)"  # was 1 frame at 1 fps
    assert probe(tmp_path / "o.mp4") == (5, 10.0, 0, (64, 48))


def test_a_clip_keeps_when_it_was_filmed_and_loses_where(tiny_model: Path, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    with av.open(str(src)) as c, av.open(str(tmp_path / "dated.mov"), "w") as out:  # as a phone's: date and place
        out.metadata.update({"creation_time": "2026-07-01T10:00:00.000000Z", "location": "+48.8577+002.2950/"})
        v = out.add_stream_from_template(c.streams.video[0])
        for packet in c.demux(c.streams.video[0]):
            if packet.dts is not None:
                packet.stream = v
                out.mux(packet)
    with av.open(str(tmp_path / "dated.mov")) as c:
        assert "location" in c.metadata
    for name in ("o.mp4", "o.webm"):
        assert main(["--model", str(tiny_model), str(tmp_path / "dated.mov"), "-o", str(tmp_path / name), *FP32]) == 0
        with av.open(str(tmp_path / name)) as c:
            assert c.metadata["creation_time"] == "2026-07-01T10:00:00.000000Z" and "location" not in c.metadata


def test_an_interlaced_clip_comes_out_without_combs(tiny_model: Path, tmp_path: Path) -> None:
    """A camcorder's fields are 1/50 s apart: a moving edge is a comb, which the network would
    paint as stripes. bwdif weaves each frame whole first."""
    src = tmp_path / "1080i.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"x264-params": "interlaced=1:tff=1", "crf": "10"})
        v.width, v.height, v.pix_fmt = 128, 96, "yuv420p"
        for i in range(6):
            img = np.zeros((96, 128, 3), np.uint8)
            img[20:60:2, 8 * i : 8 * i + 30] = 255  # the top field's square
            img[21:60:2, 8 * i + 6 : 8 * i + 36] = 255  # the bottom field's, 1/50 s on
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))

    def combed(path: Path) -> list[float]:
        """Of each frame, the share of vertically adjacent pixels in the square's rows that differ by half."""
        with av.open(str(path)) as c:
            assert all(f.interlaced_frame == (path == src) for f in c.decode(video=0))
        with av.open(str(path)) as c:
            return [float((np.abs(np.diff(f.to_ndarray(format="rgb24")[20:60, :, 0].astype(int), axis=0)) > 128).mean())
                    for f in c.decode(video=0)]

    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / "o.mp4"), "--strength", "0", *FP32]) == 0
    assert min(combed(src)) > 0.09
    out = combed(tmp_path / "o.mp4")
    assert len(out) == 6 and max(out) < 0.01


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_a_variable_frame_rate_keeps_every_frame_at_its_time(tiny_model: Path, tmp_path: Path, suffix: str) -> None:
    """A phone's clip: frames closer than 1 / its average rate. At that rate's clock two such frames
    got one time: H.264 was refused by the muxer, VP9 wrote every frame at another time."""
    times = [0, 33, 45, 80, 90, 130, 166, 170, 200, 233]  # ms: gaps of 4 to 40
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            img = np.zeros((48, 64, 3), np.uint8)
            img[10:20, 2 * i : 2 * i + 10] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    out_path = tmp_path / f"o{suffix}"
    assert main(["--model", str(tiny_model), str(src), "-o", str(out_path), *FP32]) == 0
    with av.open(str(out_path)) as c:
        written = [round(float(f.pts * f.time_base) * 1000) for f in c.decode(video=0)]
    assert written == times


def test_frames_closer_than_the_encoders_clock_step_still_get_times_of_their_own() -> None:
    """Where FFmpeg judged the rate constant but a later frame is off its grid."""
    clock = _Clock(Fraction(10), Fraction(1, 10), counted=False)
    written = []
    for ms in (0, 100, 120, 360):
        source = av.VideoFrame(16, 16, "rgb24")
        source.pts, source.time_base = ms, Fraction(1, 1000)
        frame = av.VideoFrame(16, 16, "rgb24")
        clock(frame, source)
        written.append(frame.pts * frame.time_base)
    assert written == [0, Fraction(1, 10), Fraction(2, 10), Fraction(4, 10)]  # 120 ms: one step after 100


def test_an_avi_with_b_frames_keeps_its_frames_in_order(tiny_model: Path, tmp_path: Path) -> None:
    """AVI stores no presentation times: its B-frames decode with shuffled timestamps, which the
    encoder refused (a traceback) before frames were counted at the rate instead."""
    for name in ("camera.avi", "camera.mp4"):  # the same frames in both
        src = make_clip(tmp_path / name, frames=12, rate=10)
        assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / f"o_{name}.mp4"), *FP32]) == 0
    with av.open(str(tmp_path / "camera.avi")) as c:
        decoded = [f.pts for f in c.decode(video=0)]
    assert decoded != sorted(decoded)  # what made the encoder fail
    with av.open(str(tmp_path / "o_camera.avi.mp4")) as c:
        frames = list(c.decode(video=0))
    assert [f.pts for f in frames] == sorted({f.pts for f in frames}) and len(frames) == 12
    assert abs(float(frames[-1].pts * frames[-1].time_base) - 11 / 10) < 1e-3  # at the clip's rate
    with av.open(str(tmp_path / "o_camera.mp4.mp4")) as c:  # in display order: each frame nearest its twin
        twins = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    for i, frame in enumerate(frames):
        assert np.argmin([np.abs(frame.to_ndarray(format="rgb24") - t).mean() for t in twins]) == i


@pytest.mark.parametrize("source, target, message", [
    ("clip.mp4", "o.png", "clip.mp4 is a video, written as .mp4 .mov .mkv .m4v .avi .webm .gif .webp, not .png"),
    ("photo.jpg", "o.mp4", "photo.jpg is a picture, written as .jpg .jpeg .jfif .png .webp .bmp .tif .tiff .heic .heif .avif or .gif, not .mp4"),
    ("photo.jpg", "o.jxl", ".jxl is not a format stylize writes (pictures: .jpg .jpeg .jfif .png .webp .bmp .tif .tiff .heic .heif .avif; "
                            "videos: .mp4 .mov .mkv .m4v .avi .webm .gif .webp); a folder of that name must exist first"),
    ("clip.mp4", "o.mpg", ".mpg is not a format stylize writes (pictures: .jpg .jpeg .jfif .png .webp .bmp .tif .tiff .heic .heif .avif; "
                          "videos: .mp4 .mov .mkv .m4v .avi .webm .gif .webp); a folder of that name must exist first"),
])
def test_an_output_that_cannot_hold_the_input_is_one_line(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           source: str, target: str, message: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4")
    Image.new("RGB", (40, 30), "teal").save(folder / "photo.jpg")
    assert main(["--model", str(tiny_model), str(folder / source), "-o", str(folder / target), *FP32]) == 2
    assert capsys.readouterr().err.strip() == f"error: {folder / target}: {message}"
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4", "photo.jpg"]


@pytest.mark.parametrize("option", ["--size", "--output-size"])
def test_a_frame_size_past_the_pixel_limit_is_one_line(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       option: str) -> None:
    """As for pictures: `--size 20000` (a typo) made each frame 327 megapixels, minutes of tiles a frame."""
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "o.mp4"
    assert main(["--model", str(tiny_model), str(clip), "-o", str(out), option, "300", "--max-pixels", "8000", *FP32]) == 1
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]  # beside the progress bar
    assert line == f"error: {clip}: refused: {option} 300 makes it 0.0675 megapixels, above the limit of 0.008 (--max-pixels)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "models"]  # no output, no temporary file


def test_a_file_that_is_not_a_video_is_one_line(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["--model", str(tiny_model), str(bad), "-o", str(tmp_path / "o.mp4")]) == 1
    [line, _] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {bad}: cannot be opened as a video")
    assert not (tmp_path / "o.mp4").exists()


def test_live_frames_keep_their_type(tiny_model: Path, tmp_path: Path) -> None:
    stylizer = Stylizer.load(tiny_model, device="cpu")
    frames = [Image.new("RGB", (30, 20)), np.zeros((20, 30, 3), np.uint8), torch.rand(3, 20, 30)]
    out = list(stylize_frames(stylizer, iter(frames)))
    assert isinstance(out[0], Image.Image) and out[0].size == (30, 20)
    assert out[1].dtype == np.uint8 and out[1].shape == (20, 30, 3)
    assert out[2].shape == (3, 20, 30)
    for bad in (np.zeros((20, 30), np.uint8), np.zeros((20, 30, 4), np.uint8)):  # a matmul's "size mismatch"
        with pytest.raises(ValueError, match=rf"frames are \(H, W, 3\) RGB arrays, not {re.escape(str(bad.shape))}"):
            list(stylize_frames(stylizer, iter([bad])))
    # Sizes and counts from Python: output_size=-5 made 1x1 frames, batch_size=0 ran as 1, no file made
    clip, sticker = make_clip(tmp_path / "clip.mp4", frames=2, audio=False), tmp_path / "a.webp"
    frames[0].save(sticker, save_all=True, append_images=[Image.new("RGB", (30, 20), "red")], duration=100)
    for bad_call in (lambda: list(stylize_frames(stylizer, iter(frames), output_size=-5)),
                     lambda: list(stylize_frames(stylizer, iter(frames), lanes=0)),
                     lambda: stylize_video(stylizer, clip, tmp_path / "out.mp4", batch_size=0),
                     lambda: stylize_video(stylizer, clip, tmp_path / "out.mp4", max_frames=float("nan")),
                     lambda: stylize_animation(stylizer, sticker, tmp_path / "out.webp", output_size=0)):
        with pytest.raises(ValueError, match=r"(output_size|lanes|batch_size|max_frames) must be at least 1, not (-5|0|nan)"):
            bad_call()
    assert not list(tmp_path.glob("*out*"))


def test_the_source_is_never_written_over(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`-o clip.mp4 --overwrite` on clip.mp4 replaced the clip with its stylized copy; so did the API."""
    clip, photo = make_clip(tmp_path / "clip.mp4", audio=False), tmp_path / "p.png"
    Image.new("RGB", (30, 20), "teal").save(photo)
    (tmp_path / "link.png").symlink_to(photo)
    before = clip.read_bytes(), photo.read_bytes()
    for source, target in ((clip, clip), (photo, photo), (photo, tmp_path / "link.png")):
        assert main(["--model", str(tiny_model), str(source), "-o", str(target), "--overwrite", *FP32]) == 1
        assert capsys.readouterr().err.splitlines()[0] == (f"error: {source}: output {target} is the input itself: "
                                                           "stylize never writes over its input (-o another name)")
    with pytest.raises(ValueError, match="is the source itself"):
        stylize_video(Stylizer.load(tiny_model, device="cpu"), clip, str(clip), progress=False)
    assert (clip.read_bytes(), photo.read_bytes()) == before


def test_an_error_as_the_reader_starts_is_raised_not_waited_on(tiny_model: Path, tmp_path: Path) -> None:
    """max_fps=inf raised in the reading thread before its first frame: the network's thread then
    waited for a frame, for good."""
    clip, raised = make_clip(tmp_path / "clip.mp4", audio=False), []

    def run() -> None:
        try:
            stylize_video(Stylizer.load(tiny_model, device="cpu"), clip, tmp_path / "o.mp4", max_fps=float("inf"),
                          progress=False)
        except ValueError as e:
            raised.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and str(raised[0]) == "max_fps must be above 0, and finite, not inf"
    assert not (tmp_path / "o.mp4").exists()


def test_live_source_through_pyav(tiny_model: Path, tmp_path: Path) -> None:
    """A generated source stands in for a camera: the same path as --live /dev/video0."""
    out = tmp_path / "live.mp4"
    assert main(["--model", str(tiny_model), "--live", "testsrc=size=64x48:rate=10", "--live-format", "lavfi",
                 "--frames", "15", "-o", str(out), *FP32]) == 0
    assert probe(out)[0] == 15


def test_a_live_source_takes_its_formats_options(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """As FFmpeg's -video_size 1280x720 -framerate 30 before -i: a camera's mode. Raw frames stand in
    for a camera; they cannot be read at all without their size, pixel format and rate."""
    raw = tmp_path / "camera.rgb"
    np.random.default_rng(0).integers(0, 256, (5, 48, 64, 3), dtype=np.uint8).tofile(raw)
    live = ["--model", str(tiny_model), "--live", str(raw), "--live-format", "rawvideo", "--frames", "4", *FP32]
    mode = ["--live-option", "video_size=64x48", "--live-option", "pixel_format=rgb24", "--live-option", "framerate=10"]
    assert main([*live, "-o", str(tmp_path / "none.mp4")]) == 1  # no mode: FFmpeg cannot read it
    assert "cannot be opened as a video" in capsys.readouterr().err and not (tmp_path / "none.mp4").exists()
    assert main([*live, *mode, "-o", str(tmp_path / "cam.mp4")]) == 0
    assert probe(tmp_path / "cam.mp4")[0] == 4 and probe(tmp_path / "cam.mp4")[3] == (64, 48)

    from fast_style.live import live_frames

    options = {"video_size": "64x48", "pixel_format": "rgb24", "framerate": "10"}
    frames = list(live_frames(str(raw), "rawvideo", max_frames=3, drop_late=False, options=options))
    assert [f.shape for f in frames] == [(48, 64, 3)] * 3
    assert np.array_equal(frames[0], np.fromfile(raw, np.uint8, 48 * 64 * 3).reshape(48, 64, 3))
    assert "video_size" not in caplog.text  # the size asked for came

    # A source that has no such option (or a camera without that mode) says what it gives instead.
    source = "testsrc=size=64x48:rate=10"
    assert main(["--model", str(tiny_model), "--live", source, "--live-format", "lavfi", "--live-option",
                 "video_size=32x24", "--frames", "2", "-o", str(tmp_path / "lavfi.mp4"), *FP32]) == 0
    assert f"note: {source} gives 64x48, not the video_size=32x24 asked of it" in caplog.text
    assert probe(tmp_path / "lavfi.mp4")[3] == (64, 48)
    caplog.clear()
    assert next(live_frames(source, "lavfi", options={"video_size": "32x24"})).shape == (48, 64, 3)
    assert f"note: {source} gives 64x48" in caplog.text


@pytest.mark.slow
def test_the_shared_test_pattern(tiny_model: Path, tmp_path: Path) -> None:
    src = SHARED_DATA / "video" / "test_pattern.mp4"
    require(src, "the test clip")
    out = tmp_path / "pattern.mp4"
    assert main(["--model", str(tiny_model), str(src), "-o", str(out), *FP32]) == 0
    assert probe(out) == (168, 25.0, 1, (294, 240))


def test_two_clips_never_write_the_same_output(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a = make_clip(tmp_path / "one" / "c.mp4", frames=3, audio=False)
    b = make_clip(tmp_path / "two" / "c.mp4", frames=3, audio=False)
    assert main(["--model", str(tiny_model), str(a), str(b), "-o", str(tmp_path / "out"), *FP32]) == 1
    assert "would be written twice" in capsys.readouterr().err
    assert probe(tmp_path / "out" / "c_tiny.mp4")[0] == 3


def test_a_network_failure_mid_video_stops_every_stage_and_leaves_no_file(tiny_model: Path, tmp_path: Path) -> None:
    """Decoding, the network and encoding run in three threads: a failure in one must reach the
    caller (not hang the others) and leave no half-written video."""
    (tmp_path / "v").mkdir()
    src = make_clip(tmp_path / "v" / "clip.mp4", frames=40)
    stylizer = Stylizer.load(tiny_model, device="cpu")
    calls = 0
    real = stylizer.stylize_tensor

    def failing(batch: torch.Tensor, size: int | None = None, **options: object) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("out of memory")
        return real(batch, size, **options)

    stylizer.stylize_tensor = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="out of memory"):
        stylize_video(stylizer, src, tmp_path / "v" / "out.mp4", batch_size=4, progress=False)
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["clip.mp4"]


def test_a_video_cut_short_keeps_the_frames_before_the_cut(tiny_model: Path, tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "clip.mkv", frames=40, audio=False).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    result = stylize_video(Stylizer.load(tiny_model, device="cpu"), cut, tmp_path / "out.mp4", progress=False)
    assert 0 < result.frames < 40
    assert probe(tmp_path / "out.mp4")[0] == result.frames


@pytest.mark.parametrize("drop_late", [False, True])
def test_live_frames_from_a_generated_source(drop_late: bool) -> None:
    from fast_style.live import live_frames

    frames = list(live_frames("testsrc=size=64x48:rate=25", "lavfi", max_frames=6, drop_late=drop_late))
    assert len(frames) == 6 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)


def test_live_without_a_display_says_so(tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["--model", str(tiny_model), "--live", "testsrc", "--live-format", "lavfi"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: no display to show --live in (DISPLAY is not set); write it to a file with -o OUT.mp4")


@pytest.mark.skipif(not has_display(), reason="no display: run under xvfb-run to include the window")
def test_live_shows_every_frame_in_a_window(tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--model", str(tiny_model), "--live", "testsrc=size=64x48:rate=25", "--live-format", "lavfi",
                 "--frames", "5"]) == 0
    assert capsys.readouterr().out.strip() == "testsrc=size=64x48:rate=25: 5 frames shown"


def test_a_live_source_that_does_not_open_is_one_line(tiny_model: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    assert main(["--model", str(tiny_model), "--live", str(tmp_path / "video9"), "-o", str(tmp_path / "o.mp4")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "video9") in err[0]
    assert not (tmp_path / "o.mp4").exists()


def test_a_live_source_is_read_no_faster_than_its_timestamps() -> None:
    # A generated source or a file as --live would otherwise be read at full speed, mostly to be dropped.
    import threading
    from types import SimpleNamespace

    from fast_style.live import paced

    now = [100.0]
    waits: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(round(timeout, 6))
            now[0] += timeout
            return False

    frames = [SimpleNamespace(time=t) for t in (5.0, 5.04, 5.08, None, 5.2)]
    now_after_read = iter([0.0, 0.01, 0.1, 0.0])  # time the reader spends on each frame before asking for the next

    def clock() -> float:
        return now[0]

    def source():  # noqa: ANN202
        for f in frames:
            now[0] += next(now_after_read, 0.0)
            yield f

    assert list(paced(source(), Stop(), clock)) == frames
    assert waits == [0.03, 0.06]  # frame 2 came late: no wait; the frame without a time: none
