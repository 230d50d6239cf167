"""Video files and live sources through PyAV: decode, stylize in batches, encode (H.264, VP9 or
GIF, by the output's suffix: fast_style.encoders).

Frames stream through in batches of a few, so memory does not grow with the length of the
video. Every audio track is copied packet for packet where the output container takes its codec,
and re-encoded (AAC, or Opus for WebM) where it does not; subtitle tracks are copied where it
takes them."""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from itertools import chain
from pathlib import Path

import av
import av.filter
import numpy as np
import torch
from av.video.reformatter import Colorspace
from tqdm import tqdm

from fast_style.atomic import atomic_write
from fast_style.denoise import Denoise
from fast_style.encoders import PRESET, encoder_for, pulled
from fast_style.files import is_source, too_many_pixels
from fast_style.hdr import HLG, PQ, hdr_to_sdr
from fast_style.images import DEFAULT_MAX_PIXELS
from fast_style.lanes import Lanes
from fast_style.motion import GridLock, Motion
from fast_style.pixels import bytes_to_floats
from fast_style.stylizer import Stylizer

log = logging.getLogger(__name__)

# Frames handed to the lanes beyond one each (fast_style.lanes.Lanes): a lane that finished early
# starts the next frame. 24.3-24.5 fps against 23.5-23.9 without (realtime8 int8, 480p, AVX2 cap).
AHEAD = 2


class VideoError(ValueError):
    pass


@dataclass
class VideoResult:
    frames: int
    fps: float
    audio: str | None  # "copied", "re-encoded", "copied and re-encoded", with "(N tracks)" past one; or None


UNSPECIFIED = 2  # FFmpeg's AVCOL_SPC_UNSPECIFIED: the stream does not say which YUV matrix it uses


def upright(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB with the stream's display rotation applied. A stream that does not say
    which YUV matrix it uses gets the one players assume (mpv's and VLC's rule): BT.709 from
    1280 wide or 577 high, BT.601 below. FFmpeg alone would take BT.601 for every size. HDR
    frames (PQ, HLG) are mapped to SDR (fast_style.hdr)."""
    if frame.color_trc in (PQ, HLG):
        rgb = hdr_to_sdr(frame.to_ndarray(format="rgb48le"), frame.color_trc)
    elif frame.colorspace == UNSPECIFIED and (frame.width >= 1280 or frame.height > 576):
        rgb = frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709).to_ndarray()
    else:
        rgb = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb


def check_counts(**counts: float | None) -> None:
    """Sizes and counts given from Python, at least 1 or None, in one ValueError before anything
    opens: `output_size=-5` made 1x1 frames and `batch_size=0` ran as 1 (the command checks its
    options itself)."""
    for name, value in counts.items():
        if value is not None and not value >= 1:  # NaN too
            raise ValueError(f"{name} must be at least 1, not {value}")


class Pacing:
    """Which frames to keep, by their times in seconds: at most `fps` a second (the first frame in
    each 1/fps of time, so 25 fps paced to 12 gives 12, not every third frame's 8.3), and none
    sooner than `gap` after the last one kept (what players of the format cannot show). Neither
    asked, every frame is kept, in whatever order its times come (an AVI's B-frames' are guesses)."""

    def __init__(self, fps: float | None = None, gap: Fraction = Fraction(0)) -> None:
        if fps is not None and not 0 < fps < math.inf:
            raise ValueError(f"max_fps must be above 0, and finite, not {fps}")
        self.fps, self.gap = Fraction(str(fps)) if fps else None, gap
        self.last: Fraction | None = None

    def __call__(self, t: Fraction | None) -> bool:
        if t is not None and self.last is not None:
            too_soon = self.gap and t - self.last < self.gap
            same_slot = self.fps and math.floor(t * self.fps) <= math.floor(self.last * self.fps)
            if too_soon or same_slot:
                return False
        self.last = t if t is not None else self.last
        return True


class Deinterlace:
    """Frames flagged interlaced (DV, DVD, broadcast, a camcorder's 1080i) woven into whole ones
    by FFmpeg's bwdif, one frame out for each in: the network would paint the comb of two fields
    taken 1/50 s apart as stripes along every moving edge, and the output, progressive, keeps
    them where a player would have deinterlaced. Frames pass untouched until one says it is
    interlaced; from there bwdif takes only those that do (deint=interlaced), a frame late."""

    def __init__(self) -> None:
        self.graph: av.filter.Graph | None = None

    def __call__(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        for frame in frames:
            if self.graph is None and not frame.interlaced_frame:
                yield frame
                continue
            if self.graph is None:
                self._start(frame)
            self.source.push(frame)
            yield from pulled(self.graph)

    def flush(self) -> Iterator[av.VideoFrame]:
        if self.graph is not None:
            self.source.push(None)
            yield from pulled(self.graph)

    def _start(self, frame: av.VideoFrame) -> None:
        self.graph = av.filter.Graph()
        self.source = self.graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                            time_base=frame.time_base)
        bwdif, sink = self.graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced"), self.graph.add("buffersink")
        self.source.link_to(bwdif)
        bwdif.link_to(sink)
        self.graph.configure()


def _frames_to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    """(B, 3, H, W) uint8, a view: a Stylizer converts uint8 once, to the layout the network
    takes, and gives uint8 back (3 ms a 480p frame less than floats made here, measured)."""
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)


def _tensor_to_frames(batch: torch.Tensor) -> np.ndarray:
    """(B, H, W, 3) uint8, contiguous as PyAV takes it, from uint8 or [0, 1] floats."""
    if batch.is_floating_point():
        batch = batch.mul(255).round_().byte()
    return batch.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def stylize_video(
    stylizer: Stylizer,
    source: str | Path,
    target: str | Path,
    size: int | None = None,
    batch_size: int = 1,
    crf: int | None = None,
    progress: bool = True,
    input_format: str | None = None,
    max_frames: int | None = None,
    output_size: int | None = None,
    on_frames: Callable[[int, int | None], None] | None = None,
    lanes: int | None = None,
    preset: str = PRESET,
    grid_lock: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_fps: float | None = None,
    denoise: bool = False,
    input_options: dict[str, str] | None = None,
    overwrite: bool = True,
    until: threading.Event | None = None,
) -> VideoResult:
    """Write `target` (via a temporary file, renamed at the end), in H.264, or VP9 for .webm, or
    an animated GIF for .gif (fast_style.encoders). `size` is the network's working size, as for
    images; `output_size` scales the longest side of the output. Sides are rounded to even
    numbers but in a GIF, as yuv420p needs. `crf`: the encoder's quality (None: H.264's 18, VP9's
    24, the same quality; a GIF has none). Batches of one are the fastest on CPU (measured
    at 480p: 11.3 fps end to end against 7.2 in batches of 8, whose activations no longer fit the
    cache); `lanes` frames run side by side (None: where they pay, fast_style.lanes). `preset`
    is x264's (H.264 only): superfast encodes stylized frames 2.7x faster than medium for 0.7 dB (measured,
    docs/realtime.md). `on_frames(done, total)` follows the frames written (total: None where
    the container does not say). `grid_lock`: the network's grid follows the scene's motion
    (fast_style.motion), so pans and zooms do not flicker. `max_fps`: frames beyond so many a
    second are dropped (a GIF made at 12 fps is 40% of one at 30). `denoise`: a camera's noise is
    filtered out of the frames before the network, following the scene (fast_style.denoise).
    `input_format` and `input_options`: FFmpeg's -f and input options, for a camera's mode.
    `overwrite=False`: FileExistsError if `target` exists when the video is done. `until`, once
    set, ends the video where it is, as if its source had ended there: a live source has no end of
    its own but Ctrl-C (`stylize --live ... -o`), and what was read is written whole."""
    check_counts(output_size=output_size, batch_size=batch_size, max_frames=max_frames, lanes=lanes, max_pixels=max_pixels)
    if is_source(source, target):
        raise VideoError(f"{target} is the source itself: written over, the original would be lost")
    with atomic_write(target, replace=overwrite) as tmp:
        try:
            return _transcode(stylizer, str(source), str(tmp), size, output_size, batch_size, crf, progress,
                              input_format, max_frames, on_frames, lanes, preset, grid_lock, max_pixels, max_fps,
                              denoise, input_options, until)
        except av.FFmpegError as e:  # the container's own, as it writes its header or trailer
            raise VideoError(f"cannot be encoded ({_written(e)})") from None


def note_the_size(source: str, options: dict[str, str] | None, width: int, height: int) -> None:
    """One line where a source gives another size than the video_size asked of it: a camera
    takes the nearest mode it has, and formats without that option ignore it."""
    asked = (options or {}).get("video_size")
    if asked and asked != f"{width}x{height}":
        log.warning(f"note: {source} gives {width}x{height}, not the video_size={asked} asked of it")


def main_video(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The stream FFmpeg's command line takes: the largest picture, cover pictures aside. The first
    is not always it: an MKV may start with a one-frame MJPEG track."""
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    return max(streams, key=lambda s: s.codec_context.width * s.codec_context.height, default=None)


def _written(error: av.FFmpegError) -> str:
    """An encoder's or muxer's error without the temporary file's name, which is no one's."""
    return error.strerror + (f": {error.log[2].strip()}" if error.log else "")


_END = object()  # the last item through a pipeline queue


class _Clock:
    """Output timestamps that always increase, as the encoder needs: the source's own where they
    do (variable frame rates kept, and how long each frame shows: a GIF's last one holds), frames
    counted at the stream's rate where they do not. AVI stores no presentation times, so its
    B-frames decode with shuffled guesses (1 4 3 5 2 ...): counted from the start. Times are
    written on the encoder's clock (`step`), where a frame too close to the one before to tell
    apart goes one step later, instead of sharing its time, which the muxer refuses."""

    def __init__(self, rate: Fraction, step: Fraction, counted: bool) -> None:
        self.tick, self.step = 1 / Fraction(rate), step
        self.counted = counted
        self.last: Fraction | None = None  # seconds
        self.pts: int | None = None  # the last frame's, in steps

    def __call__(self, frame: av.VideoFrame, source: av.VideoFrame) -> None:
        t = None if self.counted or source.pts is None or source.time_base is None else source.pts * source.time_base
        if t is not None and (self.last is None or t > self.last):
            shown = source.duration * source.time_base if source.duration and source.time_base else None
        else:
            self.counted = True  # from here on: a frame a tick after the last one
            n = 0 if self.last is None else int(self.last / self.tick) + 1
            t, shown = n * self.tick, self.tick
        pts = round(t / self.step)
        self.pts = pts if self.pts is None else max(pts, self.pts + 1)
        frame.pts, frame.time_base = self.pts, self.step
        if shown:
            frame.duration = max(1, round(shown / self.step))
        self.last = t


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    """A put that gives up once another stage has failed, instead of waiting forever."""
    while not stop.is_set():
        try:
            return q.put(item, timeout=0.1)
        except queue.Full:
            pass


def _get(q: queue.Queue, stop: threading.Event) -> object:
    """A get that ends the stream once another stage has failed."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            pass
    return _END


def _transcode(
    stylizer: Stylizer, source: str, tmp: str, size: int | None, output_size: int | None, batch_size: int,
    crf: int | None,
    progress: bool, input_format: str | None, max_frames: int | None,
    on_frames: Callable[[int, int | None], None] | None = None, lanes: int | None = None, preset: str = PRESET,
    grid_lock: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS, max_fps: float | None = None,
    denoise: bool = False, input_options: dict[str, str] | None = None, until: threading.Event | None = None,
) -> VideoResult:
    """Three stages in three threads, so decoding, the network and encoding overlap: a reader
    (demux + decode), the network here, and a writer (encode + mux). PyAV and torch release the
    GIL while they work. Bounded queues between them keep memory flat however long the video."""
    try:
        inp = av.open(source, format=input_format, options=input_options)
    except (av.FFmpegError, OSError) as e:
        raise VideoError(f"cannot be opened as a video ({e})") from None
    with inp, av.open(tmp, "w") as out:
        if (vin := main_video(inp)) is None:
            raise VideoError("has no video stream" + (" but a cover picture" if inp.streams.video else ""))
        vin.thread_type = "AUTO"
        rate = min((r for r in (vin.average_rate, vin.guessed_rate) if r), default=Fraction(25))  # the average; a DV file's says 60000
        variable = None not in (vin.base_rate, vin.average_rate) and vin.base_rate != vin.average_rate  # not every frame on 1/base_rate
        try:
            encoder = encoder_for(Path(tmp).suffix)(out, rate, crf, preset, on_cpu=stylizer.device.type == "cpu",
                                                    time_base=vin.time_base if variable else None)
        except ValueError as e:  # a crf the encoder does not take
            raise VideoError(str(e)) from None
        vout = encoder.stream
        if when := inp.metadata.get("creation_time"):  # when it was filmed: kept, as a photo's date (fast_style.images)
            out.metadata["creation_time"] = when
        tracks: dict[int, tuple] = {}  # the other tracks: input stream index -> (output stream, "copied" | "re-encoded")
        for ain in inp.streams.audio:
            aout, mode = encoder.audio(out, ain)
            if aout is not None:  # a GIF takes none
                tracks[ain.index] = aout, mode
        modes = sorted({mode for _, mode in tracks.values()})
        audio = (" and ".join(modes) + (f" ({len(tracks)} tracks)" if len(tracks) > 1 else "")) if tracks else None
        for sin in inp.streams.subtitles:  # where the container takes them: MKV takes SRT and ASS, MP4 only mov_text
            if sin.codec_context.name in out.supported_codecs:
                tracks[sin.index] = out.add_stream_from_template(sin), "copied"
        for index, (track, _) in tracks.items():  # so that players name them
            track.metadata.update({k: v for k, v in inp.streams[index].metadata.items()
                                   if k in ("language", "title", "handler_name")})
        bar = tqdm(total=max_frames or vin.frames or None, unit="frame", desc=Path(source).name,
                   disable=None if progress else True)  # None: not into a log file or a pipe, \r by \r
        decoded: queue.Queue = queue.Queue(maxsize=2 * batch_size)  # ("video", array, frame, motion) | ("track", (i, x))
        stylized: queue.Queue = queue.Queue(maxsize=4)  # ("video", [(array, frame)]) | ("track", (i, x))
        lock = GridLock() if grid_lock or denoise else None  # measured here, in frame order, as frames are decoded
        denoiser = Denoise() if denoise else None
        clock = _Clock(rate, encoder.step, counted=inp.format.name == "avi")
        stop = threading.Event()
        errors: list[BaseException] = []
        seen = [0]  # frames decoded, kept or not

        def read() -> None:
            kept = 0

            def take(frame: av.VideoFrame) -> bool:
                """Queued, or dropped (Pacing); False once max_frames are in, or once `until` is set."""
                nonlocal kept
                if (max_frames is not None and kept >= max_frames) or (until is not None and until.is_set()):
                    return False
                seen[0] += 1
                if not pace(frame.pts * frame.time_base if frame.pts is not None and frame.time_base else None):
                    return True
                array = upright(frame)
                _put(decoded, ("video", array, frame, lock(array) if lock else None), stop)
                kept += 1
                return True

            try:  # all of it: an error before the first frame left the main thread waiting for one, for good
                pace, deinterlace = Pacing(max_fps, encoder.min_gap), Deinterlace()
                for packet in inp.demux(vin, *(inp.streams[i] for i in tracks)):
                    if packet.stream is vin:
                        if not all(take(frame) for frame in deinterlace(packet.decode())):
                            break
                    elif tracks[packet.stream.index][1] == "copied":  # audio, subtitles
                        if packet.dts is not None:
                            _put(decoded, ("track", (packet.stream.index, packet)), stop)
                    else:
                        for frame in packet.decode():
                            _put(decoded, ("track", (packet.stream.index, frame)), stop)
                    if stop.is_set():
                        return
                else:
                    all(take(frame) for frame in deinterlace.flush())
            except av.FFmpegError as e:
                errors.append(VideoError(f"cannot be decoded ({e})"))
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                errors.append(e)
            _put(decoded, _END, stop)

        def write() -> None:
            held: list[av.Packet] = []  # muxing opens the codecs: audio waits for the first video frame
            started, written = False, 0
            try:
                while (item := stylized.get()) is not _END:
                    kind, payload = item
                    if kind == "track":
                        index, x = payload
                        aout, mode = tracks[index]
                        if mode == "copied":
                            x.stream = aout
                        packets = [x] if mode == "copied" else aout.encode(x)
                        out.mux(packets) if started else held.extend(packets)
                        continue
                    if not started:
                        out.mux(held)
                        held.clear()
                        started = True
                    for array, src in payload:
                        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                        clock(frame, src)
                        out.mux(encoder.encode(frame))
                    bar.update(len(payload))
                    written += len(payload)
                    if on_frames is not None:
                        on_frames(written, max_frames or vin.frames or None)
                if started:
                    out.mux(encoder.encode(None))
                    for aout, mode in tracks.values():
                        if mode == "re-encoded":
                            out.mux(aout.encode(None))
            except av.FFmpegError as e:
                errors.append(VideoError(f"cannot be encoded ({_written(e)})"))
                stop.set()
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                errors.append(e)
                stop.set()

        reader, writer = threading.Thread(target=read, daemon=True), threading.Thread(target=write, daemon=True)
        reader.start()
        writer.start()
        count = 0

        def frame_batches() -> Iterator[list[Decoded]]:
            pending: list[Decoded] = []
            while (item := _get(decoded, stop)) is not _END:
                if item[0] == "track":
                    _put(stylized, item, stop)
                    continue
                _, array, frame, motion = item
                if denoiser is not None and motion is not None:  # here, beside the decoding thread
                    array = denoiser(array, motion)
                pending.append((array, frame, motion if grid_lock else None))
                if len(pending) == batch_size:
                    yield pending
                    pending = []
            if pending:
                yield pending

        try:
            batches = frame_batches()
            first = next(batches, None)
            if first is not None:  # the first frame fixes the output size, and how many frames run at once
                h, w = first[0][0].shape[:2]
                note_the_size(source, input_options, w, h)
                if reason := too_many_pixels(w, h, {"--output-size": output_size}, max_pixels):
                    raise VideoError(reason)
                scale = output_size / max(h, w) if output_size else 1.0
                if encoder.even_sides:
                    vout.height, vout.width = max(2, round(h * scale) // 2 * 2), max(2, round(w * scale) // 2 * 2)
                else:
                    vout.height, vout.width = max(1, round(h * scale)), max(1, round(w * scale))
                if (sar := vin.sample_aspect_ratio) and sar != 1:  # non-square pixels (DV, DVD): kept, or players squeeze
                    turned = round((first[0][1].rotation or 0) / 90) % 2  # upright() turned the picture a quarter
                    vout.codec_context.sample_aspect_ratio = 1 / sar if turned else sar
                if reason := too_many_pixels(vout.width, vout.height, {"--size": size}, max_pixels):
                    raise VideoError(reason)
                if stylizer.compiles:  # say why the first frame takes seconds (docs/stylize.md: how many)
                    bar.set_postfix_str(f"compiling the {stylizer.precision} network for {vout.width}x{vout.height} "
                                        "(seconds, once a run; kernels cached on disk)", refresh=True)
                # batches already spread frames over the cores: lanes are for frames one at a time
                work = lanes or (stylizer.lanes_for(vout.height, vout.width, size) if batch_size == 1 else 1)
                with Lanes(work, ahead=AHEAD) as pool:
                    stylize = partial(_stylize_batch, stylizer, h=vout.height, w=vout.width, size=size)
                    for frames in pool.map(stylize, chain([first], batches)):
                        _put(stylized, ("video", frames), stop)
                        if count == 0 and stylizer.compiles:
                            bar.set_postfix_str("")
                        count += len(frames)
        finally:
            _put(stylized, _END, stop)
            writer.join()
            stop.set()  # the reader too, if it is still going
            reader.join()
            bar.close()
        if errors:
            raise errors[0]
        if count == 0:
            raise VideoError("has no decodable frames")
        kept = count / seen[0]  # below 1 where the format dropped frames
        return VideoResult(frames=count, fps=float(rate) * kept, audio=audio)


Decoded = tuple[np.ndarray, av.VideoFrame, Motion | None]  # the picture, its frame, its motion


def _stylize_batch(stylizer: Stylizer, pending: list[Decoded], h: int, w: int, size: int | None) -> list:
    batch = _frames_to_tensor([array for array, _, _ in pending])
    sy, sx = h / batch.shape[-2], w / batch.shape[-1]
    if (batch.shape[-2], batch.shape[-1]) != (h, w):
        batch = torch.nn.functional.interpolate(bytes_to_floats(batch), size=(h, w), mode="area")
    motion = None if pending[0][2] is None else [m.resized(sy, sx) for _, _, m in pending]
    return list(zip(_tensor_to_frames(stylizer.stylize_tensor(batch, size, motion=motion)), (src for _, src, _ in pending)))


def stylize_frames(stylizer: Stylizer, frames: Iterator, size: int | None = None,
                   output_size: int | None = None, lanes: int | None = None, grid_lock: bool = True,
                   denoise: bool = False) -> Iterator:
    """Live use: each frame (PIL image, (H, W, 3) uint8 array or (3, H, W) tensor) is stylized
    as soon as it arrives and yielded in the type it came in, in order. `size` is the network's
    working size; `output_size`, the longest side of what is yielded (arrays only). Where lanes
    pay (fast_style.lanes), a frame waits for the next one to start beside it. `grid_lock`: the
    network's grid follows the scene (fast_style.motion), so pans and zooms do not flicker.
    `denoise`: a camera's noise is filtered out before the network (fast_style.denoise)."""
    from PIL import Image

    check_counts(output_size=output_size, lanes=lanes)
    lock = GridLock() if grid_lock or denoise else None
    denoiser = Denoise() if denoise else None

    def measured(frame: object) -> tuple[object, Motion | None]:
        """In frame order, before the lanes: each measure, and the filter, need the frames before it."""
        if isinstance(frame, np.ndarray) and (frame.ndim != 3 or frame.shape[2] != 3):  # a matmul's complaint, before
            raise ValueError(f"frames are (H, W, 3) RGB arrays, not {frame.shape} (grey or RGBA: make them RGB)")
        if lock is None:
            return frame, None
        array = np.array(frame.convert("RGB")) if isinstance(frame, Image.Image) else frame
        motion = lock(array)
        if denoiser is not None:
            frame = _denoised(frame, denoiser, array, motion)
        return frame, motion if grid_lock else None

    def one(item: tuple[object, Motion | None]) -> object:
        frame, motion = item
        if isinstance(frame, np.ndarray):
            x = _frames_to_tensor([frame])
            if output_size:
                h, w = x.shape[-2:]
                scale = output_size / max(h, w)
                x = torch.nn.functional.interpolate(bytes_to_floats(x), mode="area",
                                                    size=(max(1, round(h * scale)), max(1, round(w * scale))))
                motion = motion and motion.resized(x.shape[-2] / h, x.shape[-1] / w)
            return _tensor_to_frames(stylizer.stylize_tensor(x, size, motion=motion and [motion]))[0]
        return stylizer(frame, size, motion=motion and [motion])

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    h, w = (first.height, first.width) if isinstance(first, Image.Image) else tuple(first.shape[:2] if isinstance(
        first, np.ndarray) else first.shape[-2:])
    with Lanes(lanes or stylizer.lanes_for(h, w, size)) as pool:
        yield from pool.map(one, map(measured, chain([first], frames)))


def _denoised(frame: object, denoiser: Denoise, array: np.ndarray | torch.Tensor, motion: Motion) -> object:
    """The frame filtered, in the type it came in: a PIL image, an (H, W, 3) uint8 array or a
    (3, H, W) tensor in [0, 1]."""
    from PIL import Image

    if isinstance(array, torch.Tensor):  # (3, H, W) floats: the filter works on 8-bit steps
        clean = denoiser(_tensor_to_frames(array.detach()[None])[0], motion)
        return bytes_to_floats(torch.from_numpy(clean).permute(2, 0, 1)).to(array.device)
    clean = denoiser(array, motion)
    if not isinstance(frame, Image.Image):
        return clean
    image = Image.fromarray(clean)
    if "A" in frame.getbands():
        image.putalpha(frame.getchannel("A"))
    return image
