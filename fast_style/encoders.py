"""The stylized stream as the output's suffix asks: H.264 (.mp4 .mov .mkv .m4v .avi), VP9 in
WebM, an animated GIF or an animated WebP. Frames come in as (H, W, 3) uint8 RGB with their timestamps set;
packets go out to the container."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import av.filter
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from fast_style.lanes import CORES

PRESET = "superfast"  # x264's; fast_style.video.stylize_video says why
THREADS = str(max(1, CORES // 2))  # x264's own choice (1.5 threads a core) starves the network of cores


def pulled(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    """Every frame a filter graph has ready now (it may hold some back for the next input)."""
    while True:
        try:
            yield graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return


class Encoder:
    """H.264, encoded with BT.709's matrix and said so: an untagged stream is shown with BT.709
    or BT.601 by its size, depending on the player, and the wrong one turns greens yellow."""

    codec, default_crf, max_crf, name = "libx264", 18, 51, "H.264"
    even_sides = True  # yuv420p halves the chroma both ways
    min_gap = Fraction(0)  # seconds a frame must come after the last one kept: the rest are dropped

    def __init__(self, out: av.container.OutputContainer, rate: Fraction, crf: int | None, preset: str,
                 on_cpu: bool, time_base: Fraction | None = None) -> None:
        self.stream = out.add_stream(self.codec, rate=rate, options=self.options(crf, preset, on_cpu))
        self.step = 1 / Fraction(rate)  # the encoder's clock: frames go in at multiples of it
        if time_base is not None and time_base < self.step:
            # A variable frame rate keeps the source's clock: at 1/rate, frames closer than that
            # (a phone's in dim light) got one time, which the muxer refused.
            self.step = self.stream.codec_context.time_base = time_base
        self.stream.pix_fmt = "yuv420p"
        cc = self.stream.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = int(Colorspace.ITU709)
        cc.color_range = int(ColorRange.MPEG)
        self.to_yuv = VideoReformatter()  # one for the stream, as the encoder's own: a new one a frame costs 0.4-6 ms more

    def options(self, crf: int | None, preset: str, on_cpu: bool) -> dict[str, str]:
        options = {"crf": self.crf(crf), "preset": preset}
        return options | {"threads": THREADS} if on_cpu else options

    def crf(self, crf: int | None) -> str:
        if crf is not None and not 0 <= crf <= self.max_crf:
            raise ValueError(f"--crf {crf} is outside {self.name}'s 0 to {self.max_crf} (default {self.default_crf})")
        return str(self.default_crf if crf is None else crf)

    def audio(self, out: av.container.OutputContainer, source: av.audio.AudioStream) -> tuple[object, str]:
        """The output's audio stream and "copied" or "re-encoded"."""
        if named(source):
            try:
                return out.add_stream_from_template(source), "copied"
            except (ValueError, av.FFmpegError):
                pass
        return out.add_stream("aac", rate=source.rate, layout=layout(source)), "re-encoded"

    def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        """`frame`: rgb24, its pts and time_base set (on `step`); None flushes."""
        if frame is not None:
            yuv = self.to_yuv.reformat(frame, format="yuv420p", dst_colorspace=Colorspace.ITU709,
                                       dst_color_range=ColorRange.MPEG)
            yuv.pts, yuv.time_base, yuv.duration = frame.pts, frame.time_base, frame.duration
            frame = yuv
        return self.stream.encode(frame)


class VP9(Encoder):
    """What WebM takes, with Opus sound. libvpx's real-time mode at its fastest setting: 11-13 ms
    a 480p frame on one core, where its `good` mode took 81. crf 24 matches H.264's 18 (measured
    on a stylized 480p pan: 6.0 MB and 35.5 dB PSNR against 5.8 MB and 35.9 dB)."""

    codec, default_crf, max_crf, name = "libvpx-vp9", 24, 63, "VP9"

    def options(self, crf: int | None, preset: str, on_cpu: bool) -> dict[str, str]:
        return {"crf": self.crf(crf), "b": "0", "deadline": "realtime",
                "cpu-used": "8", "row-mt": "1", "threads": THREADS if on_cpu else str(CORES)}

    def audio(self, out: av.container.OutputContainer, source: av.audio.AudioStream) -> tuple[object, str]:
        if source.codec_context.name in ("opus", "vorbis") and named(source):
            return out.add_stream_from_template(source), "copied"
        return out.add_stream("libopus", rate=48000, layout=layout(source)), "re-encoded"  # Opus runs at 48 kHz; PyAV resamples


class _Animated(Encoder):
    """What browsers show as an image and loop: no sound, sides as they are, delays counted in
    the format's own unit, and no crf."""

    even_sides = False
    pix_fmt, unit, settings = "", Fraction(1), {}

    def __init__(self, out: av.container.OutputContainer, rate: Fraction, crf: int | None, preset: str,
                 on_cpu: bool, time_base: Fraction | None = None) -> None:
        if crf is not None:
            raise ValueError(f"an animated {type(self).__name__} has no --crf: its quality is set")
        self.stream = out.add_stream(self.codec, rate=rate, options=self.settings)
        self.stream.pix_fmt = self.pix_fmt
        self.stream.time_base = self.stream.codec_context.time_base = self.step = self.unit

    def audio(self, out: av.container.OutputContainer, source: av.audio.AudioStream) -> tuple[None, None]:
        return None, None


class GIF(_Animated):
    """A palette of 256 colours made for each frame (FFmpeg's palettegen and paletteuse), with
    ordered (Bayer) dithering at scale 3: on a stylized 480p pan 34.6 dB PSNR, against 32.4 at
    FFmpeg's scale 2 and 33.9 for error diffusion (sierra2_4a), which took 1.8x as long and
    crawls from frame to frame. One palette for the whole clip, from its first frame, was 3.4x
    faster but turns a clip that fades in from black all black. The palette is made from every
    other pixel both ways: 99 ms a 480p frame against 163, at the same PSNR (31.78 and 31.77 dB
    for the real-time network's output). GIF delays are in hundredths of a second and browsers
    play a delay under 2 as 10: frames closer than 20 ms are dropped."""

    codec, pix_fmt, unit = "gif", "pal8", Fraction(1, 100)
    min_gap = Fraction(1, 50)

    def __init__(self, out: av.container.OutputContainer, rate: Fraction, crf: int | None, preset: str,
                 on_cpu: bool, time_base: Fraction | None = None) -> None:
        super().__init__(out, rate, crf, preset, on_cpu)
        self.graph: av.filter.Graph | None = None
        self.durations: dict[int, int] = {}  # by pts, in hundredths

    def _start(self, width: int, height: int) -> None:
        graph = av.filter.Graph()
        self.source = graph.add_buffer(width=width, height=height, format="rgb24", time_base=self.unit)
        split = graph.add("split")
        palette = graph.add("palettegen", "stats_mode=single:reserve_transparent=0")
        use = graph.add("paletteuse", "new=1:dither=bayer:bayer_scale=3")
        sink = graph.add("buffersink")
        self.source.link_to(split)
        if width >= 64 and height >= 64:  # the colours of every other pixel both ways: the same PSNR, 40% less time
            sample = graph.add("scale", f"w={width // 2}:h={height // 2}:flags=neighbor")
            split.link_to(sample, 0, 0)
            sample.link_to(palette)
        else:
            split.link_to(palette, 0, 0)
        split.link_to(use, 1, 0)
        palette.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()
        self.graph = graph

    def encode(self, frame: av.VideoFrame | None) -> list[av.Packet]:
        if frame is not None:
            if self.graph is None:
                self._start(frame.width, frame.height)
            start, end = (round(t * frame.time_base / self.unit) for t in (frame.pts, frame.pts + (frame.duration or 0)))
            frame.pts, frame.time_base = start, self.unit
            self.durations[start] = max(2, end - start)
        elif self.graph is None:
            return self.stream.encode(None)
        self.source.push(frame)
        packets = [packet for paletted in pulled(self.graph) for packet in self.stream.encode(paletted)]
        for packet in packets:  # the encoder leaves them 0; the muxer takes the last frame's delay from it
            packet.duration = self.durations.pop(packet.pts, 0)
        return packets + (self.stream.encode(None) if frame is None else [])


class WebP(_Animated):
    """An animated WebP, which browsers show as an image: a GIF's use at under half its size. On
    the stylized 480p pan, 30 frames: 4.8 MB at 37.4 dB PSNR in 35 ms a frame (quality 90,
    compression level 2), where the GIF takes 11 MB at 34.6 dB. Frames go in as RGB (bgra), which
    libwebp turns into its own YUV: handed yuv420p it gave 36.3 dB. Browsers show a frame of 10 ms
    or less for 100 ms: such frames are dropped."""

    codec, pix_fmt, unit = "libwebp_anim", "bgra", Fraction(1, 1000)
    settings = {"quality": "90", "compression_level": "2"}
    min_gap = Fraction(11, 1000)

    def __init__(self, out: av.container.OutputContainer, rate: Fraction, crf: int | None, preset: str,
                 on_cpu: bool, time_base: Fraction | None = None) -> None:
        super().__init__(out, rate, crf, preset, on_cpu)
        out.options["loop"] = "0"  # for ever, as a GIF does: FFmpeg's WebP muxer plays once unless told

    def encode(self, frame: av.VideoFrame | None) -> list[av.Packet]:
        if frame is not None:
            bgra = frame.reformat(format="bgra")
            bgra.pts, bgra.time_base = round(frame.pts * frame.time_base / self.unit), self.unit
            if frame.duration:
                bgra.duration = round(frame.duration * frame.time_base / self.unit)
            frame = bgra
        return self.stream.encode(frame)


def named(source: av.audio.AudioStream) -> bool:
    """Whether the track names its channels' layout: PCM from an MKV may say only "2 channels",
    which MP4's muxer refuses when it writes the header (so such a track is re-encoded)."""
    return not source.layout.name.endswith("channels")


def layout(source: av.audio.AudioStream) -> str:
    """The source's channel layout, or the usual one for its number of channels."""
    return source.layout.name if named(source) else {1: "mono", 6: "5.1", 8: "7.1"}.get(source.channels, "stereo")


def encoder_for(suffix: str) -> type[Encoder]:
    return {".webm": VP9, ".gif": GIF, ".webp": WebP}.get(suffix.lower(), Encoder)
