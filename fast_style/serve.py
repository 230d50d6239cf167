"""`stylize --serve`: a local page over the same engine: a photo, the webcam, a video file.

A small page of our own (fast_style/web/index.html) over Python's standard HTTP server, rather
than Gradio: a webcam frame is one POST of a JPEG and one JPEG back, with two frames in flight,
and nothing between the page and the engine (docs/serve.md has the measurement). Each request
carries all of its settings, so tabs never share state; the only state kept is what is bounded:
each model loaded once, the last paintings uploaded for the arbitrary-style network, and the video
jobs, one at a time, in a temporary folder of the server's own."""

from __future__ import annotations

import functools
import hashlib
import io
import ipaddress
import json
import shutil
import socket
import sys
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse, urlsplit

from PIL import Image

from fast_style.files import ANIMATIONS, KEPT_VIDEO_FORMATS, QUALITY, InputError, encode_image, is_animation, is_video, load_input_bytes
from fast_style.images import DEFAULT_MAX_PIXELS, VIDEO_EXTENSIONS, enlarged, painting_rgb
from fast_style.engine import named_device
from fast_style.lanes import CORES, thread_count, trace_inductors_dummy_once
from fast_style.model_file import ModelFileError, read_model
from fast_style.models import file_styles, resolve_style, shipped_models, style_index
from fast_style.stylizer import Stylizer

PAGE = Path(__file__).parent / "web" / "index.html"
MAX_IMAGE_BYTES = 64 * 2**20  # an upload above this is refused before it is read
MAX_VIDEO_BYTES = 1024 * 2**20
PAINTINGS_KEPT = 16  # uploaded paintings, by content hash
JOBS_KEPT = 8  # finished video jobs whose results can still be downloaded
STREAMS_KEPT = 8  # webcam streams whose noise filters are held (`denoise`), the least recent dropped
FRAME_QUALITY = 85  # webcam frames back to the page (photos: 95, as the command line writes them)
VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif"}  # what a video job gives back
ANIMATED = {Image.registered_extensions()[suffix]: suffix for suffix in ANIMATIONS}  # Pillow format -> suffix


class RequestError(Exception):
    """A bad request: answered with its message (HTTP 400), the server goes on."""


class Studio:
    """What every tab shares: the models (each loaded once), paintings, video jobs."""

    def __init__(self, models: list[Path] | None = None, device: str | None = None, precision: str = "auto",
                 max_pixels: int = DEFAULT_MAX_PIXELS, vgg_weights: str = "imagenet") -> None:
        named_device(device)  # said at start, not as every request's error
        for path in models or []:  # a damaged file given was left out unsaid: a page with no style
            read_model(path, weights=False)
        self.device, self.precision, self.max_pixels = device, precision, max_pixels
        self.vgg_weights = vgg_weights  # what an arbitrary-style model reads paintings with
        self.models = models  # None: the shipped ones
        self._stylizers: dict[tuple[Path, bool], Stylizer] = {}  # (model, for streams)
        self._made: dict[tuple, bool] = {}  # webcam settings: whether the stream path's network is made
        self._making: tuple | None = None  # the settings whose network is being made, one at a time
        self._paintings: OrderedDict[str, Image.Image] = OrderedDict()
        self._jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._streams: OrderedDict[str, list] = OrderedDict()  # stream id -> [GridLock, Denoise, last frame number]
        self._lock = threading.Lock()
        self._video_lock = threading.Lock()  # one video at a time: the CPU is shared with the page
        self._cores = _Cores(CORES)
        self.workdir = Path(tempfile.mkdtemp(prefix="fast_style_serve_"))
        # Networks may run beside one being compiled: Inductor's one trace goes first, in a thread of
        # its own, so that the page listens meanwhile (importing Inductor is 3 s of a 6.6 s start);
        # every network waits for it in stylizer().
        self._traced = threading.Thread(target=trace_inductors_dummy_once if precision in ("auto", "int8") else None,
                                        name="fast_style-inductor-trace", daemon=True)
        self._traced.start()

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def choices(self) -> dict[str, Any]:
        """What the page is told: every style with the name of its model (styles of one model
        mix), and whether a painting of one's own can be used. No paths."""
        catalogue = self.catalogue()
        return {"styles": [{"name": name, "model": Path(path).stem} for name, path in catalogue["styles"].items()],
                "arbitrary": catalogue["arbitrary"] is not None}

    @functools.cached_property
    def _catalogue(self) -> dict[str, Any]:
        return self._read_catalogue()

    def catalogue(self) -> dict[str, Any]:
        """Every style name and the file it lives in, and the arbitrary-style model's file, if
        any: read once, when the first request comes."""
        with self._lock:
            return self._catalogue

    def _read_catalogue(self) -> dict[str, Any]:
        styles: dict[str, str] = {}
        galleries: dict[str, list[str]] = {}  # what mixes: each gallery file's styles
        arbitrary = []
        if self.models is None:
            index, _ = style_index()
            styles = {name: str(path) for name, (path, _) in index.items()}
        for path in self.models or shipped_models().values():
            try:
                model = read_model(path, weights=False)
            except ModelFileError:
                continue  # a shipped one: style_index has said so; the others are served (a given one: __init__)
            if model.architecture == "arbitrary":
                arbitrary.append(path)
                continue
            if model.architecture == "gallery":
                galleries[str(path)] = list(model.config["styles"])
            if self.models is not None:  # the files given, each with its styles (models.file_styles)
                styles.update({name: str(path) for name in file_styles(path)})
        return {"styles": styles, "galleries": galleries, "arbitrary": str(arbitrary[0]) if arbitrary else None}

    @functools.cached_property
    def stream_path(self) -> tuple[str, bool] | None:
        """(precision, compile) for webcam frames and videos under `auto`: what `stylize` takes for
        streams (int8 on x86 CPUs, else the photo precision compiled). None for a given precision."""
        if self.precision != "auto":
            return None
        from fast_style.stylize import stream_defaults

        return stream_defaults(self.device, compile=False)

    def stylizer(self, path: Path, stream: bool = False) -> Stylizer:
        """The model's Stylizer for photos, or (`stream`) for frames and videos."""
        stream = stream and self.stream_path is not None
        precision, compile = self.stream_path if stream else (self.precision, False)
        self._traced.join()  # no network runs while Inductor's trace has nn.Module.__call__ replaced
        with self._lock:
            if (path, stream) not in self._stylizers:
                try:
                    self._stylizers[path, stream] = Stylizer.load(path, device=self.device, precision=precision,
                                                                  compile=compile, vgg_weights=self.vgg_weights)
                except (ModelFileError, ValueError, RuntimeError) as e:
                    raise RequestError(f"{path.name}: {e}") from None
            return self._stylizers[path, stream]

    def frame_stylizer(self, path: Path, image: Image.Image, size: int | None, options: dict[str, Any],
                       cores: int) -> Stylizer:
        """The stream path's Stylizer once its network is made for these settings; until then the
        photos' one, while it is made in the background: made on the first frame, an int8 network
        would stop the webcam for 6-12 s at each new style, size or thread count."""
        if self.stream_path is None:
            return self.stylizer(path)
        # What makes another network: the strength and colour blends come after it (a slider's
        # every value would otherwise send frames back to the photos' path while it is "made").
        net_options = {k: v for k, v in options.items() if k not in ("strength", "preserve_color")}
        key = (path, image.size, size, cores, tuple((k, repr(v)) for k, v in sorted(net_options.items())))
        with self._lock:
            made = self._made.get(key)
            start = made is None and self._making is None
            if start:
                self._making = key
        if made:
            return self.stylizer(path, stream=True)
        if start:
            threading.Thread(target=self._make, args=(key, path, image, size, options, cores), daemon=True).start()
        return self.stylizer(path)

    def _make(self, key: tuple, path: Path, image: Image.Image, size: int | None, options: dict[str, Any],
              cores: int) -> None:
        made = False
        try:  # outside the frames' share of the cores (_Cores): seconds of compiling beside them
            with thread_count(cores):  # an int8 network is made for the thread count it runs on
                self.stylizer(path, stream=True)(image, size, **options)
            made = True
        except (RequestError, ValueError, RuntimeError):
            pass  # these settings stay on the photos' path
        finally:
            with self._lock:
                self._made[key], self._making = made, None

    def resolve(self, params: dict[str, str]) -> tuple[Path, dict[str, Any]]:
        """The model and the call's options for a request's settings."""
        options: dict[str, Any] = {"strength": _number(params, "strength", 1.0, 0, 1),
                                   "preserve_color": params.get("preserve_color") in ("1", "true", "on")}
        size = params.get("size")
        options["size"] = int(_number(params, "size", 0, 16, 8192)) if size not in (None, "", "full") else None
        catalogue = self.catalogue()
        if params.get("painting"):
            if catalogue["arbitrary"] is None:
                raise RequestError("no arbitrary-style model is available for a painting of your own")
            with self._lock:
                painting = self._paintings.get(params["painting"])
            if painting is None:
                raise RequestError("that painting is no longer held; upload it again")
            options["style_image"] = painting
            return Path(catalogue["arbitrary"]), options
        spec = params.get("style") or next(iter(catalogue["styles"]), None)
        if spec is None:
            raise RequestError("no style models are available")
        try:
            names = [part.partition("=")[0].strip() for part in spec.split(",")]
            unknown = [n for n in names if n not in catalogue["styles"]]
            if unknown:
                raise RequestError(f"no style {unknown[0]!r}")
            if "=" in spec or len(names) > 1:  # a mix: the gallery that has all of them, though single-style files share names
                files = [path for path, offered in catalogue["galleries"].items() if set(names) <= set(offered)]
                if not files:
                    raise RequestError("a mix takes the styles of one gallery model")
                path, style = resolve_style(spec, Path(files[0]))
            else:
                path, style = resolve_style(spec, Path(catalogue["styles"][spec]))
        except (ModelFileError, ValueError) as e:
            raise RequestError(str(e)) from None
        options["style"] = style
        return path, options

    def stylize(self, data: bytes, params: dict[str, str]) -> tuple[bytes, str, dict[str, str]]:
        """An uploaded image, stylized at its own size: (file bytes, content type, headers: the
        precision it ran in). Frames ask for `format=jpeg` and come as the canvas's pixels
        (`pixels=WxH`); a photo comes back in its own format, an animated one (a sticker, a GIF)
        animated, as the command line writes it."""
        if "pixels" in params:
            image, in_format = raw_frame(data, params["pixels"], self.max_pixels), None
        elif params.get("frame") != "1" and (suffix := _animated(data)):
            return self._stylize_animated(data, suffix, params)
        else:
            try:
                image, in_format = load_input_bytes(data, self.max_pixels)
            except InputError as e:
                raise RequestError(str(e)) from None
        path, options = self.resolve(params)
        size = options.pop("size")
        stylizer, frame = self.stylizer(path), params.get("frame") == "1"
        if frame and params.get("denoise") == "1":
            image = self.denoised(image, params)
        # A webcam frame of a light network takes one core, beside the next frame (fast_style.lanes);
        # anything else takes every core, alone.
        lanes = stylizer.lanes_for(image.height, image.width, size) if frame else 1
        cores = 1 if lanes > 1 else CORES
        if frame:
            stylizer = self.frame_stylizer(path, image, size, options, cores)
        try:
            with self._cores.hold(cores), thread_count(cores):
                result = stylizer(image, size, **options)
        except (ValueError, RuntimeError) as e:
            raise RequestError(str(e).splitlines()[0]) from None
        fmt = {"jpeg": "JPEG", "png": "PNG"}.get(params.get("format", ""), in_format)
        if fmt not in ("JPEG", "PNG", "WEBP"):
            fmt = "PNG"
        # A webcam frame is seen for 40 ms and then replaced: a lighter JPEG is half the time to
        # encode here and to decode in the browser, on cores the network shares.
        quality = FRAME_QUALITY if frame else QUALITY
        return encode_image(result, fmt, quality=quality, exif=image.info.get("exif")), Image.MIME[fmt], {"X-Precision": stylizer.precision}

    def denoised(self, image: Image.Image, params: dict[str, str]) -> Image.Image:
        """A webcam frame with the camera's noise filtered out, as `stylize --denoise` does
        (fast_style.denoise): the page's frames come one request at a time, two in flight, so each
        stream (`stream`, the page's id for it) keeps its filter here and `seq` orders its frames;
        one overtaken by a later frame goes as it came."""
        import numpy as np

        from fast_style.denoise import Denoise
        from fast_style.motion import GridLock

        stream, seq = params.get("stream", ""), params.get("seq", "")
        if not (0 < len(stream) <= 64 and seq.isdigit()):
            raise RequestError("denoise needs the frame's stream (an id) and seq (its number in the stream)")
        array = np.asarray(image.convert("RGB"))
        with self._lock:  # milliseconds a frame: the filter runs in the frames' order
            entry = self._streams.pop(stream, None) or [GridLock(), Denoise(), -1]
            self._streams[stream] = entry
            while len(self._streams) > STREAMS_KEPT:
                self._streams.popitem(last=False)
            lock, denoise, last = entry
            if int(seq) <= last:
                return image
            entry[2] = int(seq)
            return Image.fromarray(denoise(array, lock(array)))

    def _stylize_animated(self, data: bytes, suffix: str, params: dict[str, str]) -> tuple[bytes, str, dict[str, str]]:
        """Through a temporary file, as `stylize` takes it: an opaque GIF by the video path (FFmpeg's
        palettes, the stream precision), a WebP, an APNG or a GIF with transparency by
        fast_style.animation; every core, as a photo takes them."""
        from fast_style.animation import stylize_animation
        from fast_style.video import VideoError, stylize_video

        path, options = self.resolve(params)
        size = options.pop("size")
        with tempfile.TemporaryDirectory(dir=self.workdir) as folder:
            source, target = Path(folder) / f"input{suffix}", Path(folder) / f"output{suffix}"
            source.write_bytes(data)
            video = is_video(source)
            if not video and not is_animation(source):
                raise RequestError("an animation that cannot be decoded")
            stylizer = self.stylizer(path, stream=video).with_defaults(**options)
            try:
                with self._cores.hold(CORES), thread_count(CORES):
                    if video:
                        stylize_video(stylizer, source, target, size=size, progress=False, max_pixels=self.max_pixels)
                    else:
                        stylize_animation(stylizer, source, target, size=size, max_pixels=self.max_pixels)
            except (InputError, VideoError, OSError, RuntimeError, ValueError) as e:
                raise RequestError(str(e).strip().splitlines()[0]) from None
            fmt = Image.registered_extensions()[suffix]
            return target.read_bytes(), Image.MIME[fmt], {"X-Precision": stylizer.precision}

    def add_painting(self, data: bytes, name: str = "the painting") -> dict[str, str]:
        """The painting held under a key for the page's requests, and a note where the
        arbitrary-style network reads it enlarged (a blur: images.painting_at)."""
        try:
            image, _ = load_input_bytes(data, self.max_pixels)
        except InputError as e:
            raise RequestError(str(e)) from None
        try:
            image = painting_rgb(image)
        except ValueError as e:
            raise RequestError(str(e)) from None
        key = hashlib.sha1(data).hexdigest()[:16]
        with self._lock:
            self._paintings[key] = image
            self._paintings.move_to_end(key)
            while len(self._paintings) > PAINTINGS_KEPT:
                self._paintings.popitem(last=False)
        answer = {"painting": key}
        arbitrary = self.catalogue()["arbitrary"]
        if arbitrary and (note := enlarged(image, read_model(arbitrary, weights=False).config["style_size"], name)):
            answer["note"] = note
        return answer

    def start_video(self, data: bytes, name: str, params: dict[str, str]) -> str:
        suffix = Path(name).suffix.lower()
        if suffix not in VIDEO_EXTENSIONS:
            raise RequestError(f"{Path(name).name}: not a video file ({', '.join(VIDEO_EXTENSIONS)})")
        path, options = self.resolve(params)  # a bad setting is answered now, not after the upload waits
        stylizer = self.stylizer(path, stream=True)  # as `stylize` runs a video
        job = uuid.uuid4().hex[:12]
        folder = self.workdir / job
        folder.mkdir()
        (folder / f"input{suffix}").write_bytes(data)
        out = suffix if suffix in KEPT_VIDEO_FORMATS else ".mp4"  # as `stylize` names it
        state = {"state": "queued", "frames": 0, "total": None, "error": None,
                 "name": f"{Path(name).stem}_stylized{out}", "output": f"output{out}"}
        with self._lock:
            self._jobs[job] = state
            while len(self._jobs) > JOBS_KEPT:
                old, _ = self._jobs.popitem(last=False)
                shutil.rmtree(self.workdir / old, ignore_errors=True)
        threading.Thread(target=self._run_video, args=(job, stylizer, options), daemon=True).start()
        return job

    def _run_video(self, job: str, stylizer: Stylizer, options: dict[str, Any]) -> None:
        from fast_style.video import VideoError, stylize_video

        state, folder = self._jobs[job], self.workdir / job
        source = next(folder.glob("input.*"))

        def progress(done: int, total: int | None) -> None:
            state["frames"], state["total"] = done, total

        # a thread of its own: it takes every core, whatever count the frames' threads left behind
        with self._video_lock, thread_count(CORES):
            state["state"] = "running"
            try:
                size = options.pop("size")
                stylize_video(stylizer.with_defaults(**options), source, folder / state["output"], size=size,
                              progress=False, on_frames=progress)
                state["state"] = "done"
            except (VideoError, OSError, RuntimeError, ValueError) as e:
                state["state"], state["error"] = "failed", str(e).strip().splitlines()[0]

    def job(self, job: str) -> dict[str, Any]:
        with self._lock:
            if job not in self._jobs:
                raise RequestError("no such video job")
            return dict(self._jobs[job])

    def result(self, job: str) -> Path:
        state = self.job(job)
        if state["state"] != "done":
            raise RequestError("the video is not done")
        return self.workdir / job / state["output"]


class _Cores:
    """The network's share of the CPU: frames hold one core each, a photo holds them all (and
    goes before frames that come after it)."""

    def __init__(self, cores: int) -> None:
        self.cores, self.busy, self.waiting = cores, 0, 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, n: int) -> Iterator[None]:
        with self._cond:
            whole = n >= self.cores
            self.waiting += whole
            self._cond.wait_for(lambda: self.busy + n <= self.cores and (whole or not self.waiting))
            self.waiting -= whole
            self.busy += n
        try:
            yield
        finally:
            with self._cond:
                self.busy -= n
                self._cond.notify_all()


def raw_frame(data: bytes, size: str, max_pixels: int) -> Image.Image:
    """A webcam frame as the page's canvas holds it (`pixels=WxH`: RGBA bytes, row by row). Not a
    JPEG: the network's strokes follow differences below one 8-bit step, and a JPEG's differ with
    the camera's noise in every frame (docs/serve.md, Frames as the camera gives them)."""
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise RequestError(f"pixels={size!r}: expected the frame's WIDTHxHEIGHT")
    w, h = int(width), int(height)
    if w * h > max_pixels:
        raise RequestError(f"refused: a {w}x{h} frame is above the limit of {max_pixels} pixels")
    if len(data) != 4 * w * h:
        raise RequestError(f"a {w}x{h} frame is {4 * w * h} bytes of RGBA; {len(data)} came")
    return Image.frombuffer("RGBA", (w, h), data, "raw", "RGBA", 0, 1).convert("RGB")


def _animated(data: bytes) -> str | None:
    """The suffix of an animated GIF, WebP or PNG (APNG), from its bytes; None for anything else."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return ANIMATED.get(im.format) if getattr(im, "is_animated", False) else None
    except (OSError, SyntaxError, ValueError):
        return None  # load_input_bytes says what is wrong with it


def attachment(name: str) -> str:
    """A Content-Disposition for any file name (RFC 6266): headers are Latin-1, so "東京.mp4"
    dropped the connection; an ASCII fallback, and the name itself percent-encoded in UTF-8."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name)}"


def _number(params: dict[str, str], key: str, default: float, low: float, high: float) -> float:
    if params.get(key) in (None, ""):
        return default
    try:
        value = float(params[key])
    except ValueError:
        raise RequestError(f"{key} must be a number, not {params[key]!r}") from None
    if not low <= value <= high:
        raise RequestError(f"{key} must be between {low:g} and {high:g}, not {value:g}")
    return value


class Handler(BaseHTTPRequestHandler):
    """Routes: the page, and /api/{styles,stylize,painting,video}. Nothing else is reachable."""

    studio: Studio
    loopback = False  # listening on 127.0.0.1 or ::1 (make_server): requests by name are refused
    quiet = True
    protocol_version = "HTTP/1.1"  # keep-alive: a webcam frame is a request, not a connection

    def setup(self) -> None:
        super().setup()
        # Headers and body are two writes: without this, Nagle's algorithm holds the body back
        # until the client acknowledges the headers, which it delays (40 ms a frame on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        if self._refused():
            return None
        try:
            if url.path == "/":
                return self._send(PAGE.read_bytes(), "text/html; charset=utf-8")
            if url.path == "/api/styles":
                return self._json(self.studio.choices())
            parts = url.path.strip("/").split("/")
            if len(parts) == 3 and parts[:2] == ["api", "video"]:
                return self._json(self.studio.job(parts[2]))
            if len(parts) == 4 and parts[:2] == ["api", "video"] and parts[3] == "result":
                state = self.studio.job(parts[2])
                result = self.studio.result(parts[2])
                return self._send(result.read_bytes(), VIDEO_TYPES[result.suffix],
                                  {"Content-Disposition": attachment(state["name"])})
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        except RequestError as e:
            self._json({"error": str(e)}, HTTPStatus.BAD_REQUEST)

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self._refused():
            return None
        try:
            if url.path == "/api/stylize":
                return self._send(*self.studio.stylize(self._body(MAX_IMAGE_BYTES), params))
            if url.path == "/api/painting":
                name = Path(params.get("name", "")).name or "the painting"
                return self._json(self.studio.add_painting(self._body(MAX_IMAGE_BYTES), name))
            if url.path == "/api/video":
                data = self._body(MAX_VIDEO_BYTES)
                return self._json({"job": self.studio.start_video(data, params.get("name", "video.mp4"), params)})
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        except RequestError as e:
            self._json({"error": str(e)}, HTTPStatus.BAD_REQUEST)

    def _refused(self) -> bool:
        """Another web site's request, answered 403 unread. Any page the browser shows can send
        requests to 127.0.0.1, and through DNS rebinding (a name of its own made to resolve to
        127.0.0.1) read the answers too. So a server on a loopback address takes only requests
        addressed to an IP address or to localhost, and a POST only from a page it served."""
        host, origin = self.headers.get("Host"), self.headers.get("Origin")
        why = None
        if host and _by_name(host) and self.loopback:
            why = f"refused: a request addressed to {host}; this server answers its IP address or localhost"
        if why is None and self.command == "POST" and origin is not None and _other_site(origin, host):
            why = f"refused: a request from the page of another site ({origin})"
        if why is not None:
            self.close_connection = True  # its body, if any, is not read
            self._json({"error": why}, HTTPStatus.FORBIDDEN)
        return why is not None

    def _body(self, limit: int) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError("a Content-Length is needed") from None
        if length < 0:  # read(-1) waits for the client to close the connection
            self.close_connection = True
            raise RequestError(f"Content-Length: {length} is not a length")
        if length > limit:
            self.close_connection = True  # the body is not read: this connection cannot go on
            raise RequestError(f"the upload is {length / 2**20:.0f} MB, above the limit of {limit / 2**20:.0f} MB")
        return self.rfile.read(length)

    def _json(self, value: dict, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(value).encode(), "application/json", status=status)

    def _send(self, body: bytes, content_type: str, headers: dict[str, str] | None = None,
              status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the tab went away mid-answer: nothing to tell it
            self.close_connection = True


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _other_site(origin: str, host: str | None) -> bool:
    """Whether a request's Origin is not the page's own (the server its Host names)."""
    try:
        return urlsplit(origin).netloc.lower() != (host or "").lower()
    except ValueError:
        return True


def _by_name(host: str) -> bool:
    """Whether a Host header names the server by a name other than localhost, not by address."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:  # "[::1", no address at all
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name != "localhost"
    return False


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """IPv4 or IPv6, as the host resolves (`--host ::1`, `--host ::` was 'Address family for
    hostname not supported')."""
    family, *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    handler = type("StudioHandler", (Handler,), {"studio": studio, "loopback": _is_loopback(str(address[0]))})
    server = type("StudioServer", (ThreadingHTTPServer,), {"address_family": family})((host, port), handler)
    server.daemon_threads = True
    return server


def where(host: str, port: int) -> str:
    """The page's address as a browser takes it. `--host 0.0.0.0` printed http://0.0.0.0:7860,
    which browsers refuse to open (Chrome since 2025); from another machine it is this one's name."""
    if not _is_unspecified(host):
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"  # an IPv6 address in a URL
    here = "[::1]" if ":" in host else "127.0.0.1"
    return f"every address of this machine: http://{here}:{port} here, http://{socket.gethostname()}:{port} from others"


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name
        return False


def serve(studio: Studio, host: str, port: int) -> int:
    """Until Ctrl-C or SIGTERM (raised here by the command: fast_style.stylize._stops). The
    studio is closed however it ends: its folder was left behind by a port in use, and by a
    SIGTERM that came as the address was printed (a signal is handled as print returns)."""
    try:
        try:
            server = make_server(studio, host, port)
        except OSError as e:  # a name that does not resolve is no port's fault
            hint = "--host ADDRESS" if isinstance(e, socket.gaierror) else "--port N"
            print(f"error: cannot listen on {host}:{port} ({e.strerror}); pass {hint}", file=sys.stderr)
            return 1
        with server:  # closed, then the studio
            print(f"serving on {where(host, server.server_address[1])}  (Ctrl-C stops it)", flush=True)
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        studio.close()
    return 0
