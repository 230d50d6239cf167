"""`stylize --serve`: the page's API over HTTP, and the page itself in headless Chromium."""

import io
import json
import shutil
import socket
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from conftest import make_photo
from fast_style.gallery import GalleryConfig, GalleryNet
from fast_style.model_file import save_model
from fast_style.serve import RequestError, Studio, make_server, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A page over a tiny single-style model and a tiny two-painting gallery, on a free port."""
    root = tmp_path_factory.mktemp("serve")
    torch.manual_seed(0)
    gallery = GalleryNet(GalleryConfig(styles=("red", "blue"), channels=8, res_blocks=1, output_scale=1.0))
    with torch.no_grad():
        gallery.shifts[0].fill_(0.5)
        gallery.shifts[1].fill_(-0.5)
    from test_arbitrary import arbitrary

    from fast_style.transformer import TransformerConfig, TransformerNet

    single = TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0))
    models = [save_model(root / "gallery.safetensors", gallery, {"style": "gallery"}),
              save_model(root / "any.safetensors", arbitrary(), {"style": "any"}),
              save_model(root / "red.safetensors", single, {"style": "red"})]  # a single-style file named like a gallery style
    studio = Studio(models, device="cpu", precision="fp32", vgg_weights="random")
    httpd = make_server(studio, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()  # its listening socket, else open until the interpreter exits
    studio.close()


def post(url: str, data: bytes) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["Content-Type"]


def test_a_damaged_model_given_is_refused_at_start(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """It was left out without a word: the page came up with no style at all."""
    from fast_style.stylize import main

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(tiny_model.read_bytes()[:1000])
    import tempfile

    from fast_style import serve

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(serve, "serve", lambda studio, host, port: studio.close() or 0)  # were it let through: no wait
    assert main(["--serve", "--model", str(bad), "--port", "0"]) == 2
    assert capsys.readouterr().err == (f"error: {bad}: not a readable safetensors file (Error while deserializing header: "
                                       "invalid header length)\n")
    assert not list(tmp_path.glob("fast_style_serve_*"))  # no folder made


def test_a_port_or_host_that_cannot_be_listened_on_is_one_line_naming_what_to_change(
        capsys: pytest.CaptureFixture) -> None:
    from fast_style.stylize import main

    with pytest.raises(SystemExit):  # a traceback from bind()
        main(["--serve", "--port", "99999"])
    assert "error: --port must be from 0 (any free port) to 65535, not 99999" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        closed: list[int] = []
        studio = types.SimpleNamespace(close=lambda: closed.append(1))  # no request is reached
        assert serve(studio, "127.0.0.1", port) == 1  # type: ignore[arg-type]
        assert capsys.readouterr().err == f"error: cannot listen on 127.0.0.1:{port} (Address already in use); pass --port N\n"
        assert closed == [1]  # its folder of video results was left in /tmp
    assert serve(studio, "nope.invalid", 0) == 1  # type: ignore[arg-type]  # it said --port N
    assert capsys.readouterr().err.endswith("; pass --host ADDRESS\n")
    if socket.has_ipv6:  # --host ::1 was "Address family for hostname not supported"
        server = make_server(None, "::1", 0)  # type: ignore[arg-type]
        assert server.address_family == socket.AF_INET6
        server.server_close()


def test_the_address_printed_opens_in_a_browser() -> None:
    """`--host 0.0.0.0` printed http://0.0.0.0:7860, which browsers refuse to open."""
    from fast_style.serve import where

    name = socket.gethostname()
    assert where("0.0.0.0", 7860) == f"every address of this machine: http://127.0.0.1:7860 here, http://{name}:7860 from others"
    assert where("::", 80) == f"every address of this machine: http://[::1]:80 here, http://{name}:80 from others"
    assert [where(host, 8000) for host in ("127.0.0.1", "::1", "localhost", "192.168.1.20")] == [
        "http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost:8000", "http://192.168.1.20:8000"]


@pytest.mark.slow  # a process of its own: 5 s of imports
def test_kill_stops_the_server_as_ctrl_c_does_and_leaves_no_folder(tiny_model: Path, tmp_path: Path) -> None:
    """`kill PID` (a service manager's stop) ended the process where it was: its folder of video
    results stayed in /tmp (18 of them here, from servers stopped so)."""
    import os
    import signal
    import subprocess
    import sys

    temp = tmp_path / "tmp"
    temp.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "fast_style.stylize", "--serve", "--port", "0", "--model",
                               str(tiny_model), "--precision", "fp32"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "TMPDIR": str(temp)})
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("serving on http://127.0.0.1:")
        assert [p.name[:17] for p in temp.iterdir() if p.name.startswith("fast_style")] == ["fast_style_serve_"]
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert (server.returncode, err.splitlines()[-1]) == (
        143, "stopped by SIGTERM: the server is closed, and its folder of video results removed"), err
    assert not [p for p in temp.iterdir() if p.name.startswith("fast_style_serve_")]


def test_the_api_stylizes_at_full_size_and_answers_bad_requests(server: str, tmp_path: Path) -> None:
    choices = json.loads(urllib.request.urlopen(f"{server}/api/styles").read())
    assert choices == {"styles": [{"name": "red", "model": "red"}, {"name": "blue", "model": "gallery"}],
                       "arbitrary": True}
    png = make_photo(tmp_path / "a.png", (67, 41)).read_bytes()
    status, body, kind = post(f"{server}/api/stylize?style=red&strength=0.8", png)
    assert (status, kind) == (200, "image/png") and Image.open(io.BytesIO(body)).size == (67, 41)
    for query, data, error in [("style=red", b"junk", "not an image file Pillow can read"),
                               ("style=green", png, "no style 'green'"),
                               ("style=red&strength=2", png, "strength must be between 0 and 1, not 2")]:
        status, body, _ = post(f"{server}/api/stylize?{query}", data)
        assert status == 400 and json.loads(body) == {"error": error}
    assert post(f"{server}/../../etc/passwd", b"")[0] == 404
    status, body, _ = post(f"{server}/api/stylize?style=red=0.3,blue=0.7", png)  # a mix: the gallery's red
    assert status == 200, body
    status, body, _ = post(f"{server}/api/stylize?style=red,blue", png)  # in even parts: it was a KeyError, a 500
    assert status == 200, body
    status, body, _ = post(f"{server}/api/stylize?style=red=nan,blue=1", png)
    assert status == 400 and json.loads(body)["error"].endswith("'red=nan' is not NAME=WEIGHT (a name, a finite weight)")
    assert post(f"{server}/api/stylize?style=red", png)[0] == 200  # and it goes on


def test_a_painting_of_ones_own_through_the_arbitrary_model(server: str, tmp_path: Path) -> None:
    import io

    status, body, _ = post(f"{server}/api/painting", make_photo(tmp_path / "p.png", (60, 50), seed=8).read_bytes())
    assert status == 200 and "note" not in json.loads(body)  # the network's style size is 64
    painting = json.loads(body)["painting"]
    status, body, _ = post(f"{server}/api/painting?name=..%2Fsmall.png", make_photo(tmp_path / "s.png", (40, 30)).read_bytes())
    assert status == 200 and json.loads(body)["note"].startswith("small.png is 40x30, enlarged 1.6x to the style size of 64 px")
    status, body, _ = post(f"{server}/api/stylize?painting={painting}", make_photo(tmp_path / "a.jpg", (45, 31)).read_bytes())
    assert status == 200 and Image.open(io.BytesIO(body)).size == (45, 31)
    status, body, _ = post(f"{server}/api/stylize?painting=0123456789abcdef", make_photo(tmp_path / "b.jpg", (9, 9)).read_bytes())
    assert status == 400 and json.loads(body)["error"] == "that painting is no longer held; upload it again"
    clear = io.BytesIO()
    Image.new("RGBA", (30, 20)).save(clear, "PNG")
    status, body, _ = post(f"{server}/api/painting", clear.getvalue())
    assert status == 400 and json.loads(body)["error"] == "the painting is transparent all over"


def test_tabs_at_once_get_their_own_frames(server: str, tmp_path: Path) -> None:
    """Each request carries its settings: two 'tabs' with other styles, interleaved, never mix."""
    import io

    jpeg = make_photo(tmp_path / "f.jpg", (48, 32)).read_bytes()
    results: dict[str, list] = {"red": [], "blue": []}

    def tab(style: str) -> None:
        for _ in range(4):
            _, body, _ = post(f"{server}/api/stylize?style={style}&format=jpeg", jpeg)
            results[style].append(np.asarray(Image.open(io.BytesIO(body)), dtype=float).mean())

    threads = [threading.Thread(target=tab, args=(s,)) for s in results]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert max(results["red"]) - min(results["red"]) < 1 and max(results["blue"]) - min(results["blue"]) < 1
    assert abs(np.mean(results["red"]) - np.mean(results["blue"])) > 10  # the two styles differ


def test_an_upload_above_the_limit_is_refused_unread(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_style import serve

    monkeypatch.setattr(serve, "MAX_IMAGE_BYTES", 1000)
    status, body, _ = post(f"{server}/api/stylize?style=red", b"x" * 5000)
    assert status == 400 and "above the limit of" in json.loads(body)["error"]


def raw(server: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request with exactly these headers (urllib would add its own Host)."""
    import http.client

    connection = http.client.HTTPConnection(urllib.parse.urlsplit(server).netloc, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        connection.putheader(key, value)
    connection.endheaders(body or None)
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


def test_another_sites_requests_are_refused_unread(server: str, tmp_path: Path) -> None:
    """Any web page can POST to 127.0.0.1, and read the answers through DNS rebinding (a name of
    its own made to resolve to 127.0.0.1): the page answered both."""
    own = urllib.parse.urlsplit(server).netloc  # 127.0.0.1:PORT
    port = own.rsplit(":", 1)[1]
    photo = make_photo(tmp_path / "p.png", (20, 16)).read_bytes()
    for host in (own, f"localhost:{port}", "127.0.0.1"):
        assert raw(server, "GET", "/api/styles", {"Host": host})[0] == 200
    for host in (f"attacker.example:{port}", f"localhost.attacker.example:{port}", "[::1"):
        status, body = raw(server, "GET", "/api/styles", {"Host": host})
        assert status == 403 and json.loads(body)["error"] == (
            f"refused: a request addressed to {host}; this server answers its IP address or localhost")
    size = {"Content-Length": str(len(photo))}
    assert raw(server, "POST", "/api/stylize?style=red", {"Host": own, "Origin": f"http://{own}", **size}, photo)[0] == 200
    assert raw(server, "POST", "/api/stylize?style=red", {"Host": own, **size}, photo)[0] == 200  # curl sends no Origin
    for origin in ("https://attacker.example", "null", f"http://localhost:{port}"):
        status, body = raw(server, "POST", "/api/stylize?style=red", {"Host": own, "Origin": origin, **size}, photo)
        assert status == 403 and json.loads(body)["error"] == f"refused: a request from the page of another site ({origin})"


def test_a_negative_content_length_is_refused_at_once(server: str) -> None:
    """read(-1) waited for the client to close its connection: the request hung."""
    own = urllib.parse.urlsplit(server).netloc
    status, body = raw(server, "POST", "/api/stylize?style=red", {"Host": own, "Content-Length": "-1"})
    assert status == 400 and json.loads(body)["error"] == "Content-Length: -1 is not a length"


def wait_for(server: str, job: str) -> dict:
    for _ in range(300):
        state = json.loads(urllib.request.urlopen(f"{server}/api/video/{job}").read())
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    return state


def test_a_video_upload_is_stylized_with_its_audio_and_progress(server: str, tmp_path: Path) -> None:
    from test_video import make_clip, probe

    clip = make_clip(tmp_path / "clip.mp4", frames=8).read_bytes()
    # a name outside Latin-1, which HTTP headers are: the download dropped the connection
    status, body, _ = post(f"{server}/api/video?style=blue&name={urllib.parse.quote('holiday 東京.mp4')}", clip)
    assert status == 200
    job = json.loads(body)["job"]
    state = wait_for(server, job)
    assert state["state"] == "done" and state["frames"] == 8 and state["name"] == "holiday 東京_stylized.mp4", state
    with urllib.request.urlopen(f"{server}/api/video/{job}/result") as response:
        (tmp_path / "out.mp4").write_bytes(response.read())
        assert response.headers["Content-Disposition"] == (
            "attachment; filename=\"holiday ___stylized.mp4\"; filename*=UTF-8''holiday%20%E6%9D%B1%E4%BA%AC_stylized.mp4")
    frames, _, audio, size = probe(tmp_path / "out.mp4")
    assert (frames, audio, size) == (8, 1, (64, 48))
    status, body, _ = post(f"{server}/api/video?style=blue&name=notes.txt", b"hello")
    assert status == 400 and "not a video file" in json.loads(body)["error"]


def test_a_webm_or_gif_video_upload_keeps_its_format(server: str, tmp_path: Path) -> None:
    """As `stylize` writes them; the page gave back an MP4 for every video until session 30."""
    from test_video import make_clip

    make_clip(tmp_path / "clip.mp4", frames=6, audio=False)
    frames = [Image.fromarray(np.full((21, 31, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "meme.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    import av

    with av.open(str(tmp_path / "clip.mp4")) as src, av.open(str(tmp_path / "clip.webm"), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in src.decode(video=0):
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    for name, kind, frame_count in (("clip.webm", "video/webm", 6), ("meme.gif", "image/gif", 4)):
        status, body, _ = post(f"{server}/api/video?style=blue&name={name}", (tmp_path / name).read_bytes())
        assert status == 200, body
        state = wait_for(server, json.loads(body)["job"])
        stem, suffix = name.split(".")
        assert state["state"] == "done" and state["name"] == f"{stem}_stylized.{suffix}", state
        with urllib.request.urlopen(f"{server}/api/video/{json.loads(body)['job']}/result") as response:
            assert response.headers["Content-Type"] == kind
            (tmp_path / f"out.{suffix}").write_bytes(response.read())
        with av.open(str(tmp_path / f"out.{suffix}")) as result:
            assert (result.format.name.split(",")[0], sum(1 for _ in result.decode(video=0))) == (
                {"webm": "matroska", "gif": "gif"}[suffix], frame_count)


def test_an_animated_photo_upload_comes_back_animated(server: str, tmp_path: Path) -> None:
    """A sticker (animated WebP with transparency) or a GIF dropped as a photo came back as a
    still of its first frame until session 30; now as `stylize` writes it, timing and alpha kept."""
    frames = []
    for i in range(3):
        rgba = np.zeros((30, 40, 4), np.uint8)
        rgba[5:20, 5 + 5 * i : 20 + 5 * i] = (250, 30, 30, 255)
        rgba[20:, :, 3] = 128
        frames.append(Image.fromarray(rgba, "RGBA"))
    sticker, gif = io.BytesIO(), io.BytesIO()
    frames[0].save(sticker, "WEBP", save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0,
                   lossless=True)
    opaque = [f.convert("RGB") for f in frames]
    opaque[0].save(gif, "GIF", save_all=True, append_images=opaque[1:], duration=[100, 200, 300], loop=0)
    for data, kind, alpha in ((sticker.getvalue(), "image/webp", True), (gif.getvalue(), "image/gif", False)):
        status, body, got = post(f"{server}/api/stylize?style=red", data)
        assert (status, got) == (200, kind), body
        with Image.open(io.BytesIO(body)) as out:
            assert (out.size, out.n_frames) == ((40, 30), 3)
            durations = []
            for frame in ImageSequence.Iterator(out):
                frame.load()
                durations.append(frame.info["duration"])
            assert durations == [100, 200, 300]
            if alpha:
                assert np.array_equal(np.asarray(out.convert("RGBA"))[..., 3], np.asarray(frames[-1])[..., 3])
    status, body, got = post(f"{server}/api/stylize?style=red&frame=1&format=jpeg", sticker.getvalue())
    assert (status, got) == (200, "image/jpeg")  # a webcam frame is one picture, whatever it is


browser = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def page(server: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox"])
        tab = chromium.new_page()
        tab.goto(server)
        tab.wait_for_function("document.querySelectorAll('#style option').length == 2")
        yield tab
        chromium.close()


@browser
def test_the_page_stylizes_a_dropped_photo_at_its_size(page, tmp_path: Path) -> None:  # noqa: ANN001
    photo = make_photo(tmp_path / "holiday.jpg", (123, 77))
    page.set_input_files("#photo", str(photo))
    page.wait_for_selector("#download:not([hidden])")
    assert page.eval_on_selector("#result", "img => [img.naturalWidth, img.naturalHeight]") == [123, 77]
    assert page.get_attribute("#download", "download") == "holiday_stylized.jpg"
    # a format the page cannot show comes back as PNG, and its download says so (it said .tif)
    page.set_input_files("#photo", str(make_photo(tmp_path / "scan.tif", (40, 30))))
    page.wait_for_function("document.getElementById('download').download == 'scan_stylized.png'")
    assert page.eval_on_selector("#result", "img => [img.naturalWidth, img.naturalHeight]") == [40, 30]
    # an animated GIF comes back a GIF, its download named so (it said .gif for a still PNG)
    frames = [Image.new("RGB", (31, 21), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "meme.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    page.set_input_files("#photo", str(tmp_path / "meme.gif"))
    page.wait_for_function("document.getElementById('download').download == 'meme_stylized.gif'")
    assert page.eval_on_selector("#result", "img => [img.naturalWidth, img.naturalHeight]") == [31, 21]
    page.set_input_files("#photo", {"name": "bad.jpg", "mimeType": "image/jpeg", "buffer": b"junk"})
    page.wait_for_function("document.getElementById('message').textContent.includes('bad.jpg')")


@browser
def test_the_page_says_when_a_painting_uploaded_is_read_as_a_blur(page, tmp_path: Path) -> None:  # noqa: ANN001
    """Said in the server's log only, which the page's user does not see."""
    page.set_input_files("#painting", str(make_photo(tmp_path / "thumb.png", (40, 30))))
    page.wait_for_function("document.getElementById('message').textContent.startsWith('thumb.png is 40x30, enlarged 1.6x')")
    assert page.is_checked("#usePainting")
    page.set_input_files("#painting", str(make_photo(tmp_path / "large.png", (60, 50))))
    page.wait_for_function("document.getElementById('message').textContent == ''")
    page.uncheck("#usePainting")


@browser
def test_a_page_without_the_camera_says_why_instead_of_a_script_error(page, server: str) -> None:  # noqa: ANN001
    """Over plain http from another device (--host) browsers give no navigator.mediaDevices: Start
    said "webcam: Cannot read properties of undefined (reading 'getUserMedia')" (tried from
    192.0.2.2 with Chromium). Here the same page with mediaDevices taken away."""
    context = page.context.browser.new_context()
    try:
        tab = context.new_page()
        tab.add_init_script("Object.defineProperty(Navigator.prototype, 'mediaDevices', { get: () => undefined })")
        tab.goto(server)
        tab.wait_for_function("document.querySelectorAll('#style option').length == 2")
        assert tab.is_disabled("#camStart") and tab.is_visible("#camNote")
        assert "only to https pages and to this machine's own page (localhost)" in tab.inner_text("#camNote")
    finally:
        context.close()
    assert not page.is_visible("#camNote")  # where the camera is there, no note


@browser
def test_the_page_shows_stylized_webcam_frames(page) -> None:  # noqa: ANN001
    with page.expect_response(lambda r: "frame=1" in r.url) as answered:
        page.click("#camStart")
    page.wait_for_function("window.cameraStats().shown >= 3", timeout=60_000)
    page.click("#camStop")
    # The fake camera's 640x480, sent at the network size the page asks for (384), shown at 640 px.
    assert page.eval_on_selector("#live", "c => [c.width, c.height, c.style.width]") == [384, 288, "640px"]
    # sent as the canvas's pixels, not as a JPEG: the server takes exactly 384x288x4 bytes for it
    assert "pixels=384x288" in answered.value.url and answered.value.status == 200


@browser
def test_the_page_stylizes_each_camera_frame_once(page) -> None:  # noqa: ANN001
    """The fake camera gives 20 frames a second and a tiny network answers far faster: the page
    waits for the camera's next frame rather than sending the same one again."""
    page.click("#camStart")
    page.wait_for_function("window.cameraStats().shown >= 3", timeout=60_000)
    before = page.evaluate("window.cameraStats()")
    page.wait_for_timeout(2000)
    after = page.evaluate("window.cameraStats()")
    page.click("#camStop")
    camera, sent = after["camera"] - before["camera"], after["frames"] - before["frames"]
    assert camera >= 10 and sent <= camera + 1


def test_a_webcam_frame_as_the_canvas_pixels_is_the_frame_itself(tiny_model: Path) -> None:
    photo = Image.open(Path(__file__).parents[1] / "data" / "examples" / "chicago.jpg").resize((96, 64))
    png = io.BytesIO()
    photo.save(png, "PNG")
    rgba = photo.convert("RGBA").tobytes()  # as a canvas's getImageData gives it, row by row
    studio = Studio([tiny_model], device="cpu", precision="fp32")
    try:
        params = {"style": "tiny", "frame": "1", "format": "png", "size": "full"}
        as_png = np.asarray(Image.open(io.BytesIO(studio.stylize(png.getvalue(), params)[0])))
        as_pixels = np.asarray(Image.open(io.BytesIO(studio.stylize(rgba, {**params, "pixels": "96x64"})[0])))
        assert as_pixels.shape == (64, 96, 3) and np.array_equal(as_pixels, as_png)
        with pytest.raises(RequestError, match=r"^a 96x64 frame is 24576 bytes of RGBA; 24572 came$"):
            studio.stylize(rgba[:-4], {**params, "pixels": "96x64"})
        with pytest.raises(RequestError, match="pixels='96': expected the frame's WIDTHxHEIGHT"):
            studio.stylize(rgba, {**params, "pixels": "96"})
        with pytest.raises(RequestError, match="refused: a 100000x100000 frame is above the limit"):
            studio.stylize(rgba, {**params, "pixels": "100000x100000"})
    finally:
        studio.close()


def test_frames_share_the_cores_and_a_photo_waits_for_them_then_goes_first() -> None:
    from fast_style.serve import _Cores

    cores, order, release = _Cores(2), [], threading.Event()

    def take(n: int, name: str) -> None:
        with cores.hold(n):
            order.append(name)
            release.wait(5)

    frames = [threading.Thread(target=take, args=(1, f"frame {i}"), daemon=True) for i in (1, 2)]
    for t in frames:
        t.start()
    time.sleep(0.1)
    assert sorted(order) == ["frame 1", "frame 2"]  # side by side, one core each
    photo = threading.Thread(target=take, args=(2, "photo"), daemon=True)
    photo.start()
    time.sleep(0.1)
    late = threading.Thread(target=take, args=(1, "late frame"), daemon=True)
    late.start()
    time.sleep(0.1)
    assert len(order) == 2  # the photo waits for every core; the late frame waits behind the photo
    release.set()
    for t in (*frames, photo, late):
        t.join(5)
    assert order[2:] == ["photo", "late frame"]


@browser
def test_the_page_asks_for_its_webcam_frames_denoised_as_one_numbered_stream(page) -> None:  # noqa: ANN001
    page.check("#denoise")
    with page.expect_request(lambda r: "denoise=1" in r.url and "seq=2" in r.url) as asked:
        page.click("#camStart")
    page.wait_for_function("window.cameraStats().shown >= 3", timeout=60_000)
    page.click("#camStop")
    page.uncheck("#denoise")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(asked.value.url).query)
    assert query["frame"] == ["1"] and len(query["stream"][0]) >= 4


def test_webcam_frames_asked_denoised_have_the_cameras_noise_filtered(tiny_model: Path) -> None:
    """The page's frames come one request at a time: each stream's filter (fast_style.denoise) is
    kept between them, in the order of the frames' numbers."""
    rng = np.random.default_rng(0)
    photo = np.asarray(Image.open(Path(__file__).parents[1] / "data" / "examples" / "chicago.jpg").resize((96, 64)))
    frames = []
    for _ in range(8):
        buffer = io.BytesIO()  # PNG: the noise kept as the camera made it
        Image.fromarray(np.clip(photo + rng.normal(0, 2, photo.shape).round(), 0, 255).astype(np.uint8)).save(buffer, "PNG")
        frames.append(buffer.getvalue())
    studio = Studio([tiny_model], device="cpu", precision="fp32")
    try:
        params = {"style": "tiny", "frame": "1", "format": "png", "size": "full"}

        def answers(extra: dict) -> list[np.ndarray]:
            return [np.asarray(Image.open(io.BytesIO(studio.stylize(f, {**params, **extra(i)})[0]))).astype(int)
                    for i, f in enumerate(frames)]

        plain = answers(lambda i: {})
        calm = answers(lambda i: {"denoise": "1", "stream": "tab1", "seq": str(i)})
        change = lambda outs: np.mean([np.abs(a - b).mean() for a, b in pairwise(outs[3:])])
        assert change(calm) < 0.6 * change(plain)
        # a frame overtaken by a later one of its stream goes as it came; another stream starts afresh
        late = np.asarray(Image.open(io.BytesIO(studio.stylize(frames[2], {**params, "denoise": "1", "stream": "tab1",
                                                                          "seq": "2"})[0]))).astype(int)
        assert np.array_equal(late, plain[2])
        first = np.asarray(Image.open(io.BytesIO(studio.stylize(frames[5], {**params, "denoise": "1", "stream": "tab2",
                                                                           "seq": "0"})[0]))).astype(int)
        assert np.array_equal(first, plain[5])
        with pytest.raises(RequestError, match="denoise needs the frame's stream"):
            studio.stylize(frames[0], {**params, "denoise": "1"})
    finally:
        studio.close()


def test_the_page_listens_while_inductors_trace_runs_and_networks_wait_for_it(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing Inductor for its one trace was 3 s of the page's 6.6 s start: it runs in a thread,
    and no network may run until it is done (fx replaces nn.Module.__call__ while it traces)."""
    from fast_style import serve

    release, traced = threading.Event(), threading.Event()

    def slow_trace() -> None:
        release.wait(30)
        traced.set()

    monkeypatch.setattr(serve, "trace_inductors_dummy_once", slow_trace)
    studio = Studio([tiny_model], device="cpu", precision="auto")  # returns with the trace still running
    try:
        got: list[bool] = []
        asker = threading.Thread(target=lambda: got.append(studio.stylizer(tiny_model) is not None and traced.is_set()))
        asker.start()
        asker.join(0.5)
        assert asker.is_alive() and not got  # waiting for the trace
        release.set()
        asker.join(30)
        assert got == [True]
    finally:
        release.set()
        studio.close()


def test_webcam_frames_go_eagerly_until_the_stream_network_is_made_then_through_it(tiny_model: Path) -> None:
    """`auto` on an x86 CPU: int8 for frames and videos, as `stylize` streams. Its network takes
    seconds to make, so frames are answered in the photos' precision meanwhile, not held."""
    studio = Studio([tiny_model], device="cpu", precision="auto")
    if studio.stream_path != ("int8", False):
        pytest.skip(f"streams take {studio.stream_path} here, not int8 (an x86 CPU's)")
    frame = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG")
    params = {"style": "tiny", "frame": "1", "format": "jpeg"}
    photo = studio.stylizer(tiny_model).precision
    answers = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not answers or answers[-1][0] != "int8"):
            data, kind, headers = studio.stylize(buffer.getvalue(), params)
            answers.append((headers["X-Precision"], Image.open(io.BytesIO(data)).size))
            time.sleep(0.05)
        # The strength slider blends after the network: a new value needs no new one.
        _, _, headers = studio.stylize(buffer.getvalue(), {**params, "strength": "0.5", "preserve_color": "1"})
        assert headers["X-Precision"] == "int8"
    finally:
        studio.close()
    assert answers[0] == (photo, (40, 30)) and photo != "int8"  # the first frame did not wait for int8
    assert answers[-1] == ("int8", (40, 30)), answers[-3:]
    assert studio.stylizer(tiny_model, stream=True).precision == "int8"  # what a video upload runs in
