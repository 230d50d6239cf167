"""What users have on their disks: broken files, odd formats, huge and tiny images."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageSequence

from conftest import make_photo
from fast_style import Stylizer, animation
from fast_style.images import open_image
from fast_style.stylize import main


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A 100-byte PNG whose header claims width x height."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_each_bad_input_gets_one_line_and_the_rest_go_on(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    good = make_photo(src / "good.jpg", (64, 48))
    truncated = src / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    empty = src / "empty.jpg"
    empty.touch()
    text = src / "text.jpg"
    text.write_text("this is not a picture\n")
    folder = src / "x.png"
    folder.mkdir()
    bomb = bomb_png(src / "bomb.png", 30000, 30000)
    missing = src / "missing.jpg"
    out = tmp_path / "out"
    inputs = [truncated, empty, text, folder, bomb, missing, good]
    assert main(["--model", str(tiny_model), *map(str, inputs), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"error: {truncated}: cannot be decoded: truncated or corrupt (")
    assert err[1:6] == [
        f"error: {empty}: empty file (0 bytes)",
        f"error: {text}: not an image file Pillow can read",
        f"error: {folder}: is a directory, not an image",
        f"error: {bomb}: refused: 30000x30000 is 900 megapixels, above the limit of 120 (--max-pixels)",
        f"error: {missing}: file not found",
    ]
    assert err[6:] == ["6 of 7 inputs failed"]
    assert [p.name for p in out.iterdir()] == ["good_tiny.jpg"]  # and nothing half-written


def test_pixel_limit_can_be_raised(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photo = make_photo(tmp_path / "p.png", (100, 80))
    assert main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "a.png"), "--max-pixels", "5000"]) == 1
    assert "above the limit of 0.005 (--max-pixels)" in capsys.readouterr().err
    assert main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "a.png"), "--max-pixels", "8000"]) == 0
    # and for the picture --size or --output-size would make (--size 30000, a typo, ran for hours)
    for option in ("--size", "--output-size"):
        assert main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "b.png"), option, "200",
                     "--max-pixels", "8000"]) == 1
        assert capsys.readouterr().err.splitlines()[0] == (
            f"error: {photo}: refused: {option} 200 makes it 0.032 megapixels, above the limit of 0.008 (--max-pixels)")
    assert not (tmp_path / "b.png").exists()


def test_odd_formats_are_read_right(tmp_path: Path) -> None:
    grey16 = np.full((10, 12), 32896, dtype=np.uint16)  # 0.502 of full scale
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert np.asarray(open_image(tmp_path / "g16.png")).mean() == pytest.approx(128, abs=1)
    Image.new("CMYK", (10, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red ink
    r, g, b = np.asarray(open_image(tmp_path / "cmyk.jpg")).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60
    assert open_image(tmp_path / "g16.png").mode == "RGB"
    Image.new("P", (5, 5)).save(tmp_path / "pal.png")
    assert open_image(tmp_path / "pal.png").mode == "RGB"
    Image.new("RGBA", (5, 5), (10, 20, 30, 128)).save(tmp_path / "rgba.png")
    assert open_image(tmp_path / "rgba.png").mode == "RGBA"


def display_p3_profile() -> bytes:
    """An ICC v2 profile with Display P3's primaries (D50-adapted) and the sRGB tone curve, made
    here since no profile file ships: what phones tag their photos with."""
    s15 = lambda v: struct.pack(">i", round(v * 65536))  # noqa: E731
    xyz = lambda x, y, z: b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)  # noqa: E731
    curve = [i / 1023 for i in range(1024)]
    curve = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in curve]
    trc = b"curv" + bytes(4) + struct.pack(">I", 1024) + b"".join(struct.pack(">H", round(v * 65535)) for v in curve)
    name = b"Display P3 (test)"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + bytes(1 + 78)),
            (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
            (b"gXYZ", xyz(0.2919, 0.6922, 0.0419)), (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc), (b"cprt", b"text" + bytes(4) + b"none\0")]
    table, data, start = b"", b"", 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table, data = table + sig + struct.pack(">II", start + len(data), len(body)), data + body
    header = (struct.pack(">II", start + len(data), 0) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249))
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + data


def test_a_photo_tagged_with_another_colour_profile_is_read_in_srgb(tiny_model: Path, tmp_path: Path) -> None:
    colours = np.array([[[200, 30, 30], [30, 170, 60], [40, 60, 200], [230, 200, 40], [128, 128, 128]]], np.uint8)
    srgb = Image.fromarray(colours.repeat(6, 0).repeat(6, 1), "RGB")
    icc = display_p3_profile()
    p3 = ImageCms.profileToProfile(srgb, ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    assert np.abs(np.asarray(p3, int) - np.asarray(srgb, int)).max() > 20  # the same colours are other numbers in P3
    p3.save(tmp_path / "p3.png", icc_profile=icc)
    assert np.abs(np.asarray(open_image(tmp_path / "p3.png"), int) - np.asarray(srgb, int)).max() <= 2
    p3.putalpha(77)
    p3.save(tmp_path / "p3a.png", icc_profile=icc)
    read = np.asarray(open_image(tmp_path / "p3a.png"), int)
    assert (read[..., 3] == 77).all() and np.abs(read[..., :3] - np.asarray(srgb, int)).max() <= 2
    # and so is an image handed to the Python API straight from Image.open (strength 0: the photo)
    stylizer = Stylizer.load(tiny_model, device="cpu", strength=0)
    with Image.open(tmp_path / "p3.png") as tagged:
        assert np.abs(np.asarray(stylizer(tagged), int) - np.asarray(srgb, int)).max() <= 2
    # sRGB's own profile changes nothing; one that cannot be read is ignored, as browsers do
    srgb.save(tmp_path / "srgb.png", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    srgb.save(tmp_path / "broken.png", icc_profile=b"not a profile")
    for name in ("srgb.png", "broken.png"):
        assert np.array_equal(np.asarray(open_image(tmp_path / name)), np.asarray(srgb))


def test_iphone_heic_and_avif_photos_are_found_read_in_srgb_and_written_in_their_format(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """HEIC is what an iPhone takes; before, a folder of them was "no images or videos found"."""
    folder = tmp_path / "phone"
    folder.mkdir()
    colours = np.array([[[200, 30, 30], [30, 170, 60], [40, 60, 200], [230, 200, 40]]], np.uint8).repeat(16, 0).repeat(16, 1)
    srgb = Image.fromarray(colours, "RGB")
    icc = display_p3_profile()
    p3 = ImageCms.profileToProfile(srgb, ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    p3.save(folder / "IMG_0001.HEIC", quality=-1, icc_profile=icc)  # lossless, tagged Display P3 as an iPhone's are
    srgb.save(folder / "IMG_0002.avif", quality=100)
    assert np.abs(np.asarray(open_image(folder / "IMG_0001.HEIC"), int) - colours).max() <= 3
    assert main(["--model", str(tiny_model), str(folder), "-o", str(tmp_path / "out")]) == 0
    for name in ("IMG_0001_tiny.heic", "IMG_0002_tiny.avif"):
        with Image.open(tmp_path / "out" / name) as out:
            assert out.format == ("HEIF" if name.endswith("heic") else "AVIF") and out.size == (64, 16)
    # a truncated one is one line, as any broken picture (libheif's message ends in a newline)
    whole = (folder / "IMG_0001.HEIC").read_bytes()
    (tmp_path / "cut.heic").write_bytes(whole[:-50])  # the picture data, at the end, cut short
    assert main(["--model", str(tiny_model), str(tmp_path / "cut.heic"), "-o", str(tmp_path / "cut_out.heic")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'cut.heic'}: cannot be decoded: truncated or corrupt (") and err.count("\n") == 2


def test_animated_webp_and_png_stickers_stay_animated_with_their_timing_and_transparency(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until session 29 a WebP or PNG came out as a still of its first frame, a GIF without its
    transparency (white)."""
    frames = []
    for i in range(4):
        rgba = np.zeros((30, 40, 4), np.uint8)
        rgba[..., 0], rgba[..., 1] = np.linspace(0, 250, 40)[None], np.linspace(0, 250, 30)[:, None]  # smooth: no codec noise
        rgba[5:20, 5 + 5 * i : 20 + 5 * i] = (250, 30, 30, 255)  # an opaque square that moves
        rgba[20:, :, 3] = 128  # a half-transparent band
        frames.append(Image.fromarray(rgba, "RGBA"))
    folder = tmp_path / "stickers"
    folder.mkdir()
    for name, options in (("s.webp", {"lossless": True}), ("s.png", {}), ("s.gif", {"disposal": 2})):
        frames[0].save(folder / name, save_all=True, append_images=frames[1:], duration=[100, 200, 100, 300], loop=0,
                       **options)
    assert main(["--model", str(tiny_model), str(folder), "-o", str(tmp_path / "out"), "--strength", "0"]) == 0
    assert sorted(capsys.readouterr().out.split("\n")) == [""] + [f"{tmp_path / 'out' / name} (4 frames at 5.71 fps)"
                                                                 for name in ("s_tiny.gif", "s_tiny.png", "s_tiny.webp")]
    for name, tolerance in (("s.png", 1), ("s.webp", 8), ("s.gif", 12)):  # WebP: lossy, as photos are written
        with Image.open(folder / name) as im:  # a GIF's alpha is all or nothing: as it reads
            inputs = [np.asarray(frame.convert("RGBA"), float) for frame in ImageSequence.Iterator(im)]
        with Image.open(tmp_path / "out" / name.replace(".", "_tiny.")) as out:
            assert out.n_frames == 4
            for i, frame in enumerate(ImageSequence.Iterator(out)):
                frame.load()
                assert frame.info["duration"] == [100, 200, 100, 300][i]
                got, want = np.asarray(frame.convert("RGBA"), float), inputs[i]
                assert np.array_equal(got[..., 3], want[..., 3])  # the square's alpha: each frame in its place
                seen = want[..., 3] > 0  # under alpha 0 the colour is no one's (WebP drops it)
                assert np.abs(got - want)[..., :3].max(-1)[seen].mean() <= tolerance, (name, i)
    assert main(["--model", str(tiny_model), str(folder / "s.webp"), "-o", str(tmp_path / "s.jpg")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 's.jpg'}: s.webp is animated, written as .webp .png .gif (animated), not .jpg"
    # --fps: a dropped frame's delay goes to the one before, so the loop keeps its length
    assert main(["--model", str(tiny_model), str(folder / "s.png"), "-o", str(tmp_path / "slow.png"), "--fps", "4"]) == 0
    with Image.open(tmp_path / "slow.png") as out:
        delays = [frame.info["duration"] for frame in ImageSequence.Iterator(out)]
    assert delays == [300, 400]  # frames start at 0, 0.1, 0.3, 0.4 s: the first in each quarter second
    capsys.readouterr()
    monkeypatch.setattr(animation, "HELD_PIXELS", 4000)  # every frame is held: a long 4K one would not fit in memory
    assert main(["--model", str(tiny_model), str(folder / "s.png"), "-o", str(tmp_path / "big.png")]) == 1
    assert capsys.readouterr().err.split("\n")[0] == (f"error: {folder / 's.png'}: refused: 4 frames of 40x30 are 0.0048 megapixels "
                                                     "to hold at once, above 0.004; --output-size makes them smaller")
    assert not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("output", ["out.jpg", "out.png", "out.webp", "out.heic", "-"])  # "-": through a pipe
def test_a_photo_keeps_when_and_with_what_it_was_taken_and_loses_where(tiny_model: Path, tmp_path: Path, output: str,
                                                                        capsysbinary: pytest.CaptureFixture) -> None:
    """Photo libraries sort by the capture date; a stylized picture is made to be shown, so its
    location, and the rest, stay behind. The orientation is applied, so it goes too."""
    exif = Image.Exif()
    exif.update({ExifTags.Base.Make: "Apple", ExifTags.Base.Model: "iPhone 15", ExifTags.Base.Orientation: 6,
                 ExifTags.Base.DateTime: "2026:07:01 10:00:05"})
    exif.get_ifd(ExifTags.IFD.Exif).update({ExifTags.Base.DateTimeOriginal: "2026:07:01 10:00:00",
                                            ExifTags.Base.OffsetTimeOriginal: "+02:00", ExifTags.Base.MakerNote: b"serial"})
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 24.0)})
    photo = make_photo(tmp_path / "IMG_0001.jpg", size=(40, 30))
    Image.open(photo).save(photo, exif=exif.tobytes())
    target = output if output == "-" else str(tmp_path / output)
    assert main(["--model", str(tiny_model), str(photo), "-o", target]) == 0
    data = capsysbinary.readouterr().out if output == "-" else (tmp_path / output).read_bytes()
    with Image.open(io.BytesIO(data)) as out:
        assert out.size == (30, 40)  # turned upright once, and not again by a viewer
        kept = out.getexif()
        assert dict(kept) == {ExifTags.Base.Make: "Apple", ExifTags.Base.Model: "iPhone 15",
                              ExifTags.Base.DateTime: "2026:07:01 10:00:05", ExifTags.Base.ExifOffset: kept[ExifTags.Base.ExifOffset]}
        assert dict(kept.get_ifd(ExifTags.IFD.Exif)) == {ExifTags.Base.DateTimeOriginal: "2026:07:01 10:00:00",
                                                         ExifTags.Base.OffsetTimeOriginal: "+02:00"}
        assert dict(kept.get_ifd(ExifTags.IFD.GPSInfo)) == {}


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "I;16"])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (37, 53)])
def test_every_mode_and_tiny_size_stylizes_to_the_same_size(tiny_model: Path, tmp_path: Path, mode: str, size: tuple) -> None:
    ext = ".jpg" if mode == "CMYK" else ".png"
    src = tmp_path / f"in{ext}"
    Image.new(mode, size).save(src)
    assert main(["--model", str(tiny_model), str(src), "-o", str(tmp_path / f"out{ext}")]) == 0
    out = Image.open(tmp_path / f"out{ext}")
    assert out.size == size
    assert out.mode == ("RGBA" if mode == "RGBA" else "RGB")


def test_alpha_is_kept_in_png_and_flattened_on_white_in_jpeg(tiny_model: Path, tmp_path: Path) -> None:
    alpha = np.zeros((20, 30), dtype=np.uint8)
    alpha[:, 15:] = 255
    rgba = np.dstack([np.full((20, 30, 3), 90, np.uint8), alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert main(["--model", str(tiny_model), str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png"))[..., 3], alpha)
    assert main(["--model", str(tiny_model), str(tmp_path / "a.png"), "-o", str(tmp_path / "o.jpg")]) == 0
    flat = np.asarray(Image.open(tmp_path / "o.jpg"))
    assert flat[:, :12].min() > 240  # transparent half: white


@pytest.mark.slow
def test_a_12_megapixel_phone_photo_goes_through_in_tiles(tiny_model: Path, tmp_path: Path) -> None:
    photo = Image.open(make_photo(tmp_path / "small.jpg", (400, 300))).resize((4000, 3000))  # faster than drawing 12 MP
    stylizer = Stylizer.load(tiny_model, device="cpu")
    out = stylizer(photo)
    assert out.size == (4000, 3000)
