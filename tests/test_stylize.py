import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from conftest import BF16_CPU, answers_in_a_fresh_process, make_photo, make_photo_dir, side_by_side
from fast_style import Stylizer
from fast_style.model_file import load_model, save_model
from fast_style.stylize import main


def test_odd_sizes_come_back_the_same_size(tiny_model: Path, tmp_path: Path) -> None:
    a = make_photo(tmp_path / "in" / "a.jpg", (37, 53))
    b = make_photo(tmp_path / "in" / "b.png", (341, 250))
    out = tmp_path / "out"
    assert main(["--model", str(tiny_model), str(a), str(b), "-o", str(out)]) == 0
    assert Image.open(out / "a_tiny.jpg").size == (37, 53)
    assert Image.open(out / "b_tiny.png").size == (341, 250)


def test_every_page_of_a_tiff_is_stylized_at_its_own_size(tiny_model: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """A scanned document or a fax: the first page alone came out, and the others were dropped, unsaid."""
    from PIL import ImageSequence

    pages = [Image.open(make_photo(tmp_path / f"p{i}.png", size, seed=i)) for i, size in enumerate([(60, 40), (33, 51), (20, 10)])]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    assert main(["--model", str(tiny_model), str(tmp_path / "scan.tif"), str(tmp_path / "p1.png"), "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{tmp_path / 'out' / 'scan_tiny.tif'} (3 pages)"
    with Image.open(tmp_path / "out" / "scan_tiny.tif") as out:
        painted = [np.asarray(page.convert("RGB")) for page in ImageSequence.Iterator(out)]
    assert [p.shape[:2] for p in painted] == [(40, 60), (51, 33), (10, 20)]
    assert np.array_equal(painted[1], np.asarray(Image.open(tmp_path / "out" / "p1_tiny.png")))  # each page as a photo
    assert main(["--model", str(tiny_model), str(tmp_path / "scan.tif"), "-o", str(tmp_path / "scan.jpg")]) == 2
    assert (f"{tmp_path / 'scan.jpg'}: scan.tif has 3 pages, written as .tif .tiff (every page), not .jpg"
            in capsys.readouterr().err)
    data = (tmp_path / "scan.tif").read_bytes()  # written a page at a time: a bad page leaves no file
    (tmp_path / "cut.tif").write_bytes(data[: data.index(pages[2].tobytes()[:64]) + 100])
    assert main(["--model", str(tiny_model), str(tmp_path / "cut.tif"), "-o", str(tmp_path / "cut_out.tif")]) == 1
    assert "cut.tif: cannot be decoded: truncated or corrupt" in capsys.readouterr().err
    assert not list(tmp_path.glob("*cut_out*"))


def test_a_tiff_of_pages_is_written_without_an_error_left_for_the_collector(tmp_path: Path) -> None:
    """Pillow's AppendingTiffWriter closed itself again when collected, on its closed file: under
    Python 3.13 every TIFF of pages printed "Exception ignored ... seek of closed file" after the
    run (3.11 prints it with -X dev, as here)."""
    code = ("import sys; from pathlib import Path; from PIL import Image; from fast_style.files import save_image\n"
            "save_image(Image.new('RGB', (64, 48)), Path(sys.argv[1]), pages=iter([Image.new('RGB', (40, 30))]))\n"
            "with Image.open(sys.argv[1]) as out: print(out.n_frames)")
    result = subprocess.run([sys.executable, "-X", "dev", "-c", code, str(tmp_path / "doc.tif")],
                            capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, "2\n") and "Exception ignored" not in result.stderr, result.stderr


def test_a_device_that_is_not_here_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """torch's own words came late and named no option: `evaluate --device cuda` was a traceback,
    `stylize --serve --device cuda` listened and failed every request, a typo listed 20 device types."""
    from fast_style.evaluate import main as evaluate

    photo = make_photo(tmp_path / "a.jpg", (20, 20))
    absent = "device cuda:99: " + (f"this machine has {torch.cuda.device_count()} (cuda:0 to " if torch.cuda.device_count()
                                   else "no CUDA GPU is visible here; cpu runs anywhere")
    out = ["-o", str(tmp_path / "out")]
    for argv in (["--style", "wave", "--device", "cuda:99", str(photo), *out], ["--serve", "--device", "cuda:99"]):
        assert main(argv) == 2
        assert capsys.readouterr().err.startswith(f"error: {absent}")
    assert evaluate(["--style", "wave", "--device", "cuda:99", "--photos", str(photo), "--vgg-weights", "random"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {absent}")
    assert main(["--style", "wave", "--device", "gpu", str(photo), *out]) == 2
    assert capsys.readouterr().err == "error: device gpu: not a device (cpu, cuda, cuda:N, mps)\n"
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_outputs_get_the_usual_permissions(tiny_model: Path, tmp_path: Path) -> None:
    import os

    a = make_photo(tmp_path / "a.jpg", (20, 20))
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "o.jpg")]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "o.jpg").stat().st_mode & 0o777 == 0o666 & ~umask


def test_size_option_keeps_the_input_size(tiny_model: Path, tmp_path: Path) -> None:
    a = make_photo(tmp_path / "a.jpg", (300, 200))
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "x.png"), "--size", "64"]) == 0
    assert Image.open(tmp_path / "x.png").size == (300, 200)


def test_exif_rotated_photo_comes_out_upright(tiny_model: Path, tmp_path: Path) -> None:
    src = make_photo(tmp_path / "r.png", (40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.open(src).save(tmp_path / "r.jpg", exif=exif)
    assert main(["--model", str(tiny_model), str(tmp_path / "r.jpg"), "-o", str(tmp_path / "o.jpg")]) == 0
    assert Image.open(tmp_path / "o.jpg").size == (30, 40)
    # From Python too: the output keeps no EXIF, so Image.open's sideways pixels stayed sideways
    stylizer = Stylizer.load(tiny_model, device="cpu", precision="fp32")
    with Image.open(tmp_path / "r.jpg") as stored:
        assert stored.size == (40, 30) and stylizer(stored).size == (30, 40)
        assert [im.size for im in stylizer.stylize_batch([stored, Image.new("RGB", (30, 40))])] == [(30, 40)] * 2
        upright = ImageOps.exif_transpose(stored)
        assert np.array_equal(np.asarray(stylizer(stored)), np.asarray(stylizer(upright)))


def test_folder_input_recurses_and_keeps_structure(tiny_model: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--model", str(tiny_model), str(photo_dir), "-o", str(out), "--batch-size", "2"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["nested/deeper/q_tiny.png", "p0_tiny.jpg", "p1_tiny.jpg", "p2_tiny.jpg", "p3_tiny.jpg"]


def test_a_folder_takes_its_videos_tiffs_and_gifs(tiny_model: Path, tmp_path: Path) -> None:
    """Before: a folder's videos, TIFFs and GIFs were skipped without a word (and a folder of
    clips was "no images found"); a still GIF became a one-frame video."""
    from test_video import FP32, make_clip, probe

    folder = tmp_path / "holidays"
    make_photo(folder / "scan.tif", (50, 40))
    (folder / "day1").mkdir()
    make_clip(folder / "day1" / "clip.mov", frames=5)
    still = Image.new("RGB", (30, 20), "teal")
    still.save(folder / "still.gif")
    still.save(folder / "moving.gif", save_all=True, append_images=[Image.new("RGB", (30, 20), c) for c in ("red", "navy", "gold")],
                             duration=100)
    assert main(["--model", str(tiny_model), str(folder), "-o", str(tmp_path / "out"), *FP32]) == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert written == ["day1", "day1/clip_tiny.mp4", "moving_tiny.gif", "scan_tiny.tif", "still_tiny.gif"]
    assert probe(tmp_path / "out" / "day1" / "clip_tiny.mp4")[0] == 5 and probe(tmp_path / "out" / "moving_tiny.gif")[0] == 4
    assert Image.open(tmp_path / "out" / "scan_tiny.tif").size == (50, 40)
    assert Image.open(tmp_path / "out" / "still_tiny.gif").size == (30, 20)


def test_a_folders_hidden_files_are_left_out_unless_named(tiny_model: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """A folder from a Mac's drive: a `._` twin beside each photo (an error each, exit 1), and a
    thumbnail folder that was stylized too."""
    folder = tmp_path / "from_a_mac"
    make_photo(folder / "IMG_1.jpg", (40, 30))
    (folder / "._IMG_1.jpg").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    make_photo(folder / ".thumbnails" / "IMG_1.jpg", (8, 6))
    assert main(["--model", str(tiny_model), str(folder), "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""
    assert [p.name for p in (tmp_path / "out").rglob("*")] == ["IMG_1_tiny.jpg"]
    assert main(["--model", str(tiny_model), str(folder / ".thumbnails" / "IMG_1.jpg"), "-o", str(tmp_path / "t.jpg")]) == 0


def test_a_folder_with_nothing_to_stylize_says_so(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "notes.txt").write_text("no picture")
    assert main(["--model", str(tiny_model), str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: no images or videos found"


def test_outputs_inside_the_input_folder_are_not_stylized_again(tiny_model: Path, photo_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`stylize photos/ -o photos/out/` twice, or `stylize .` twice with the default ./stylized:
    the second run stylized the first one's outputs (out/out/p0_tiny_tiny.jpg)."""
    for _ in range(2):
        main(["--model", str(tiny_model), str(photo_dir), "-o", str(photo_dir / "out")])
    assert sorted(p.name for p in (photo_dir / "out").rglob("*.jpg")) == [f"p{i}_tiny.jpg" for i in range(4)]
    monkeypatch.chdir(make_photo_dir(tmp_path / "more"))
    for _ in range(2):
        main(["--model", str(tiny_model), "."])
    assert len(list(Path("stylized").rglob("*_tiny.*"))) == 5 and not list(Path("stylized").rglob("*_tiny_tiny.*"))
    # -o the input folder itself: the outputs go beside the inputs, nested ones too
    photos = make_photo_dir(tmp_path / "beside")
    assert main(["--model", str(tiny_model), str(photos), "-o", str(photos)]) == 0
    assert (photos / "p0_tiny.jpg").is_file() and (photos / "nested" / "deeper" / "q_tiny.png").is_file()


def test_a_folder_linked_into_the_input_folder_is_part_of_it(tiny_model: Path, tmp_path: Path) -> None:
    """rglob left a linked folder of photos out, silently; a link to a folder above is walked once."""
    from fast_style.images import find_images

    photos, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    make_photo(photos / "own" / "a.png", (20, 16))
    make_photo(elsewhere / "b.png", (20, 16))
    (photos / "linked").symlink_to(elsewhere, target_is_directory=True)
    (photos / "own" / "up").symlink_to(photos, target_is_directory=True)  # a loop
    (photos / "zz_again").symlink_to(elsewhere, target_is_directory=True)  # a second way to the same folder
    assert find_images(photos) == [photos / "linked" / "b.png", photos / "own" / "a.png"]
    assert main(["--model", str(tiny_model), str(photos), "-o", str(tmp_path / "out")]) == 0
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == [
        "linked/b_tiny.png", "own/a_tiny.png"]


def test_a_picture_named_without_its_suffix_keeps_its_format(tiny_model: Path, tmp_path: Path) -> None:
    """`photo` (a download) was a KeyError from the writer; `shot.png.bak` another."""
    photo = make_photo(tmp_path / "a.jpg", (20, 16)).rename(tmp_path / "photo")
    shot = make_photo(tmp_path / "b.png", (24, 16)).rename(tmp_path / "shot.png.bak")
    assert main(["--model", str(tiny_model), str(photo), str(shot), "-o", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "photo_tiny.jpg").format == "JPEG"
    assert Image.open(tmp_path / "out" / "shot.png_tiny.png").size == (24, 16)
    folder = tmp_path / "downloads"  # a browser saves some JPEGs as .jfif: a folder's walk left them out
    folder.mkdir()
    make_photo(tmp_path / "c.jpg", (20, 16)).rename(folder / "c.jfif")
    assert main(["--model", str(tiny_model), str(folder), "-o", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "c_tiny.jfif").format == "JPEG"


def test_a_pipe_named_as_an_input_is_read_once(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`stylize <(curl -s URL) -o out.jpg`: a pipe's size is 0, and it said "empty file (0 bytes)".
    A device is refused unread: `stylize /dev/video0` would read a camera for ever."""
    import os
    import threading

    from fast_style import files

    monkeypatch.setattr(files, "PIPE_BYTES", 10_000)
    data = make_photo(tmp_path / "a.jpg", (20, 16)).read_bytes()
    fifo = tmp_path / "fifo"
    for payload, code in ((data, 0), (b"", 1), (bytes(20_000), 1)):
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(payload,), daemon=True)  # blocks until read
        writer.start()
        assert main(["--model", str(tiny_model), str(fifo), "-o", str(tmp_path / f"out{code}.jpg")]) == code
        writer.join(30)
        fifo.unlink()
    assert Image.open(tmp_path / "out0.jpg").size == (20, 16)
    err = capsys.readouterr().err
    assert f"error: {fifo}: empty input (0 bytes)" in err and f"error: {fifo}: refused: more than 0 MB from a pipe" in err
    assert main(["--model", str(tiny_model), "/dev/null", "-o", str(tmp_path / "null.jpg")]) == 1
    assert capsys.readouterr().err.splitlines()[0] == "error: /dev/null: a device, not a picture file (a camera is read with --live)"


def test_a_long_name_is_cut_to_fit_with_its_style(tiny_model: Path, tmp_path: Path) -> None:
    """83 Japanese characters are 249 bytes: with `_tiny.jpg` the name passed the file system's 255,
    and at 246 bytes the output's name fitted but not the temporary file's beside it."""
    night, plain = ("東京の夜景" * 17)[:83], "b" * 246
    for stem in (night, plain):
        make_photo(tmp_path / "in" / f"{stem}.jpg", (20, 16))
    assert main(["--model", str(tiny_model), str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"{plain}_tiny.jpg", f"{night[:82]}_tiny.jpg"]
    assert [len(n.encode()) for n in names] == [255, 255]
    assert main(["--model", str(tiny_model), str(tmp_path / "in" / f"{plain}.jpg"), "-o", str(tmp_path / f"{plain}.jpg")]) == 0


def test_glob_input(tiny_model: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--model", str(tiny_model), str(photo_dir / "p[01].jpg"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p0_tiny.jpg", "p1_tiny.jpg"]


def test_a_glob_takes_the_pictures_in_what_it_matches_as_a_folder_does(tiny_model: Path, photo_dir: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`'holidays/**'` took each folder it matched for a picture, failed on notes.txt, and put
    every output in one folder (two of one name were refused); the shell's `holidays/*` walked
    the folders it named."""
    make_photo(photo_dir / "nested" / "p0.jpg", (20, 16))  # a name the top folder has too (and notes.txt is there)
    every = ["nested/deeper/q_tiny.png", "nested/p0_tiny.jpg", "p0_tiny.jpg", "p1_tiny.jpg", "p2_tiny.jpg", "p3_tiny.jpg"]
    for pattern in ("**", "*"):
        out = tmp_path / f"out{len(pattern)}"
        assert main(["--model", str(tiny_model), str(photo_dir / pattern), "-o", str(out)]) == 0
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == every
    monkeypatch.setenv("HOME", str(photo_dir.parent))  # quoted, as for a glob: '~/photos/*.jpg' matched nothing
    assert main(["--model", str(tiny_model), "~/photos/p[01].jpg", "-o", "~/home_out"]) == 0
    assert sorted(p.name for p in (photo_dir.parent / "home_out").iterdir()) == ["p0_tiny.jpg", "p1_tiny.jpg"]
    inside = photo_dir / "stylized"  # a second run leaves the first one's outputs
    for _ in range(2):
        assert main(["--model", str(tiny_model), str(photo_dir / "**"), "-o", str(inside), "--overwrite"]) == 0
    assert sorted(p.relative_to(inside).as_posix() for p in inside.rglob("*") if p.is_file()) == every


def test_never_overwrites_without_the_flag(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = make_photo(tmp_path / "a.jpg", (40, 40))
    target = tmp_path / "keep.jpg"
    target.write_bytes(b"precious")
    assert main(["--model", str(tiny_model), str(a), "-o", str(target)]) == 1
    assert target.read_bytes() == b"precious"
    assert f"error: {a}: output {target} exists (pass --overwrite to replace it)" in capsys.readouterr().err
    assert main(["--model", str(tiny_model), str(a), "-o", str(target), "--overwrite"]) == 0
    assert Image.open(target).size == (40, 40)


def test_a_file_made_meanwhile_under_the_output_name_is_kept(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    """Two runs writing one name each found it free; the later one's rename removed the other's output."""
    import fast_style.files

    a, target = make_photo(tmp_path / "a.jpg", (40, 40)), tmp_path / "out" / "a_tiny.jpg"
    encode = fast_style.files._save

    def another_run_first(image: Image.Image, tmp: Path, *args: object, **kwargs: object) -> None:
        target.write_bytes(b"the other run's")
        encode(image, tmp, *args, **kwargs)

    monkeypatch.setattr(fast_style.files, "_save", another_run_first)
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "out")]) == 1
    assert target.read_bytes() == b"the other run's" and sorted(p.name for p in target.parent.iterdir()) == ["a_tiny.jpg"]
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: {a}: output {target} appeared while this run wrote it (another run?); kept it (pass --overwrite to replace it)")
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "out"), "--overwrite"]) == 0
    assert Image.open(target).size == (40, 40)


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_atomic_write_without_replace_creates_only_a_new_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              links: bool) -> None:
    """Where the file system has no hard links (FAT, some shares), a check and a rename."""
    from fast_style.atomic import atomic_write

    if not links:
        monkeypatch.setattr("os.link", lambda *args: (_ for _ in ()).throw(PermissionError(1, "Operation not permitted")))
    with atomic_write(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("mine")
    with pytest.raises(FileExistsError, match="new.txt appeared while this run wrote it"), \
            atomic_write(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("second")
    assert (tmp_path / "new.txt").read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["new.txt"]


def test_bad_inputs_are_reported_and_the_rest_go_on(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = make_photo(tmp_path / "good.jpg", (32, 24))
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    out = tmp_path / "out"
    code = main(["--model", str(tiny_model), str(text), str(tmp_path / "missing.jpg"), str(good), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        f"error: {text}: not an image file Pillow can read",
        f"error: {tmp_path / 'missing.jpg'}: file not found",
        "2 of 3 inputs failed",
    ]
    assert [p.name for p in out.iterdir()] == ["good_tiny.jpg"]


def test_unknown_style_names_the_available_ones(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    make_photo(tmp_path / "a.jpg", (8, 8))
    assert main(["--style", "no_such_style", str(tmp_path / "a.jpg")]) == 2
    assert "no trained model named 'no_such_style' (available:" in capsys.readouterr().err
    assert main(["--style", "wave=0.5,starry_nite=0.5", str(tmp_path / "a.jpg")]) == 2  # a typo gets a guess
    assert "no trained model named 'starry_nite' (did you mean starry_night? available:" in capsys.readouterr().err
    assert main(["--style", "wave=1e400", str(tmp_path / "a.jpg")]) == 2  # a traceback (an infinite weight)
    assert capsys.readouterr().err.endswith("'wave=1e400' is not NAME=WEIGHT (a name, a finite weight)\n")
    assert main(["--style", "wave=0.5,monet=0.5", str(tmp_path / "a.jpg")]) == 2  # the painter alone
    assert "no trained model named 'monet' (did you mean monet_water_lilies? available:" in capsys.readouterr().err
    assert main(["--style", "WAVE", str(tmp_path / "a.jpg")]) == 2  # in capitals
    assert "no trained model named 'WAVE' (did you mean wave? available:" in capsys.readouterr().err


def test_python_api_takes_pil_and_tensors(tiny_model: Path) -> None:
    stylizer = Stylizer.load(tiny_model, device="cpu")
    image = Image.new("RGB", (45, 31), (200, 30, 40))
    out = stylizer(image)
    assert isinstance(out, Image.Image) and out.size == (45, 31)
    x = torch.rand(3, 29, 33)
    y = stylizer(x)
    assert y.shape == (3, 29, 33) and y.min() >= 0 and y.max() <= 1
    assert stylizer(torch.rand(2, 3, 16, 20)).shape == (2, 3, 16, 20)
    # uint8, as torchvision.io.read_image gives: the same picture, back in uint8 (it was taken as 0-255 floats)
    u8 = (x * 255).round().to(torch.uint8)
    assert stylizer(u8).dtype == torch.uint8
    assert (stylizer(u8).float() / 255 - stylizer(u8.float() / 255)).abs().max() <= 0.5 / 255 + 1e-6
    for dtype in (torch.float16, torch.bfloat16, torch.float64):  # they came back float32
        assert stylizer(x.to(dtype)).dtype == dtype and stylizer(torch.rand(0, 3, 4, 4, dtype=dtype)).dtype == dtype
    for bad, message in [(x * 255, r"float pixels go from 0 to 1, not [\d.]+ to 25[\d.]+ \(0-255\? divide by 255\)"),
                         (x.permute(1, 2, 0), r"takes RGB tensors shaped \(3, H, W\) or \(B, 3, H, W\), not \(29, 33, 3\)"),
                         (x[:1], r"not \(1, 29, 33\)"), (x.double().long(), "takes float pixels in \\[0, 1\\] or uint8 ones"),
                         (x.index_fill(2, torch.tensor([5]), float("nan")), "and these include NaN"),  # was a NaN picture
                         (x[:, :0], "an image has no pixels: 33x0")]:
        with pytest.raises(ValueError, match=message):
            stylizer(bad)
    with pytest.raises(ValueError, match="size must be at least 1, not 0"):
        stylizer(x, 0)
    with pytest.raises(ValueError, match="max_pass_pixels must be at least 1, or None"):  # -5: every picture in tiles
        Stylizer.load(tiny_model, device="cpu", max_pass_pixels=-5)
    with pytest.raises(ValueError, match="an image has no pixels: 0x0"):
        stylizer(Image.new("RGB", (0, 0)))
    # a pipeline's last batch, filtered empty: an empty answer, as a conv gives
    assert stylizer(torch.rand(0, 3, 16, 20)).shape == (0, 3, 16, 20) and stylizer.stylize_batch([]) == []
    with pytest.raises(TypeError, match=r"takes a PIL image or a tensor, not ndarray \(Image.fromarray"):
        stylizer(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(TypeError, match=r"not str \(Image.open\(path\) opens a file; fast_style.images.open_image"):
        stylizer("photo.jpg")


def test_python_api_reads_a_picture_as_its_file_is_read(tiny_model: Path, tmp_path: Path) -> None:
    """A 16-bit grey scan came out white where brighter than 1/257 (Pillow's convert clips it) and
    a GIF frame's transparency was lost, from Python only: the file path read both right."""
    stylizer = Stylizer.load(tiny_model, device="cpu", precision="fp32")
    grey = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) % 256
    scan = Image.fromarray(grey * 257)  # I;16, as Image.open gives a 16-bit PNG or TIFF
    assert scan.mode == "I;16"
    assert np.array_equal(np.asarray(stylizer(scan)), np.asarray(stylizer(Image.fromarray(grey.astype(np.uint8)))))
    sticker = Image.fromarray(grey.astype(np.uint8)).convert("P")
    sticker.info["transparency"] = 0
    sticker.save(tmp_path / "sticker.gif")
    assert main(["--model", str(tiny_model), "--precision", "fp32", str(tmp_path / "sticker.gif"),
                 "-o", str(tmp_path / "sticker.png")]) == 0
    from_file = np.asarray(Image.open(tmp_path / "sticker.png"))
    from_python = np.asarray(stylizer(Image.open(tmp_path / "sticker.gif")))
    assert from_python.shape == (30, 40, 4) and (from_python[..., 3] == 0).any()
    assert np.array_equal(from_python, from_file)
    keyed = Image.fromarray(np.dstack([grey.astype(np.uint8)] * 3))  # RGB, black transparent
    keyed.info["transparency"] = (0, 0, 0)
    assert stylizer(keyed).mode == "RGBA" and keyed.mode == "RGB"  # the caller's image untouched


def test_python_api_loads_a_shipped_style_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_style.model_file import ModelFileError

    monkeypatch.chdir(tmp_path)  # as a script run elsewhere, or an installed wheel: no checkpoints/ here
    (tmp_path / "wave").mkdir()  # a folder of the name does not hide the style
    root = Path(__file__).parent.parent / "checkpoints"
    photo = torch.rand(3, 24, 32)
    by_name = Stylizer.load("wave", device="cpu")
    assert torch.equal(by_name(photo), Stylizer.load(root / "wave.safetensors", device="cpu")(photo))
    monet = Stylizer.load("monet_water_lilies", device="cpu")  # a style inside the gallery file
    assert monet.style == "monet_water_lilies" and len(monet.styles) == 16
    assert Stylizer.load("starry_night=0.6,wave=0.4", device="cpu").style == {"starry_night": 0.6, "wave": 0.4}
    with pytest.raises(ModelFileError, match="no trained model named 'starry_nite' \\(did you mean starry_night\\? available: "):
        Stylizer.load("starry_nite")
    with pytest.raises(ModelFileError, match="starry_nite.safetensors: model file not found"):
        Stylizer.load("starry_nite.safetensors")


def test_lightning_checkpoint_is_accepted(tmp_path: Path) -> None:
    from fast_style.transformer import TransformerConfig, TransformerNet

    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    ckpt = {
        "state_dict": {f"transformer.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {"model": {"channels": 8, "res_blocks": 1}, "style": {"name": "wave"}},
        "global_step": 7,
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    stylizer = Stylizer.load(tmp_path / "last.ckpt", device="cpu")
    assert stylizer.name == "wave" and stylizer.record.steps == 7


def test_inference_imports_neither_lightning_nor_hydra_nor_torchvision(tiny_model: Path, tmp_path: Path) -> None:
    """torchvision took 4.6 s to import (its ops import torch._dynamo): half of `stylize
    --style-image` on a photo, which reads the painting with VGG-16."""
    photo, painting = make_photo(tmp_path / "a.jpg", (20, 20)), make_photo(tmp_path / "p.jpg", (40, 30), seed=1)
    code = (
        "import sys; from fast_style.stylize import main; import fast_style.video, fast_style.sheet, fast_style.export; "
        f"main(['--model', {str(tiny_model)!r}, {str(photo)!r}, '-o', {str(tmp_path / 'b.jpg')!r}]); "
        f"main(['--style-image', {str(painting)!r}, '--vgg-weights', 'random', {str(photo)!r}, '-o', {str(tmp_path / 'c.jpg')!r}]); "
        "bad = [m for m in ('lightning', 'hydra', 'omegaconf', 'torchvision') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "b.jpg").exists() and (tmp_path / "c.jpg").exists()


def test_help_and_a_refused_command_line_answer_without_importing_torch(tmp_path: Path) -> None:
    """Importing torch takes 3 s here: --help, a bad option and a folder of nothing answered after it."""
    (tmp_path / "empty").mkdir()
    make_photo(tmp_path / "c.jpg", (8, 8))
    argvs = [["--help"], ["--style", "wave", "--size", "0", "a.jpg"], ["--style", "wave", "empty"],
             ["--style", "wave", "a.jpg", "b.jpg"],  # not there: typos
             ["--list-styles"], ["--style", "starry_nite", "c.jpg"],  # the shipped files' headers alone
             ["--model", "nope.safetensors", "c.jpg"], ["--style-image", "nope.jpg", "c.jpg"],
             # a URL: "https:/x.org/a.jpg: file not found", a slash lost; -o made a folder named https:
             ["--style", "wave", "https://x.org/a.jpg"], ["--style-image", "https://x.org/p.jpg", "c.jpg"],
             ["--model", "http://x.org/m.safetensors", "c.jpg"], ["--style", "wave", "c.jpg", "-o", "https://x.org/o.jpg"]]
    heavy = ("torch", "fast_style.stylizer")
    lines, result = answers_in_a_fresh_process("from fast_style.stylize import main as call", argvs, tmp_path, heavy)
    assert lines == ["0", "2", "1", "1", "0", "2", "2", "2", "2", "2", "2", "2", "[]"], result.stdout[-500:] + result.stderr[-2000:]
    assert result.stderr.splitlines()[-4:] == [f"stylize: error: {where}{url}: a URL; fast_style reads files and folders: download it first" for where, url in (
        ("", "https://x.org/a.jpg"), ("argument --style-image: ", "https://x.org/p.jpg"),
        ("argument --model: ", "http://x.org/m.safetensors"), ("argument -o/--output: ", "https://x.org/o.jpg"))]
    assert not (tmp_path / "https:").exists()
    assert "starry_night_realtime8" in result.stdout.splitlines()
    errors = result.stderr.splitlines()
    assert errors[-10:-7] == ["error: a.jpg: file not found", "error: b.jpg: file not found", "2 of 2 inputs failed"]
    assert errors[-7].startswith("error: no trained model named 'starry_nite' (did you mean starry_night?")
    assert errors[-6:-4] == ["error: nope.safetensors: model file not found",
                             "error: nope.jpg: style image not found (--style-image)"]
    assert "error: empty: no images or videos found" in result.stderr


def test_two_inputs_never_write_the_same_output(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = make_photo(tmp_path / "one" / "a.jpg", (20, 20))
    b = make_photo(tmp_path / "two" / "a.jpg", (20, 20), seed=1)
    assert main(["--model", str(tiny_model), str(a), str(b), "-o", str(tmp_path / "out")]) == 1
    assert "would be written twice" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_tiny.jpg"]


def test_several_inputs_and_a_file_name_for_output_is_refused(tiny_model: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    a, b = make_photo(tmp_path / "a.jpg", (20, 20)), make_photo(tmp_path / "b.jpg", (20, 20), seed=1)
    assert main(["--model", str(tiny_model), str(a), str(b), "-o", str(tmp_path / "out.jpg")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: -o {tmp_path / 'out.jpg'}: names a file, but 2 inputs were given; name a folder for them")
    assert not (tmp_path / "out.jpg").exists()  # it was made a folder, the outputs inside
    (tmp_path / "out.jpg").mkdir()  # a folder that happens to have such a name is a folder
    assert main(["--model", str(tiny_model), str(a), str(b), "-o", str(tmp_path / "out.jpg")]) == 0
    assert sorted(p.name for p in (tmp_path / "out.jpg").iterdir()) == ["a_tiny.jpg", "b_tiny.jpg"]


def test_an_output_with_an_unknown_suffix_is_refused_unless_it_is_a_folder(tiny_model: Path, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    a = make_photo(tmp_path / "a.jpg", (20, 20))
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "shots.v2")]) == 2
    assert "a folder of that name must exist first" in capsys.readouterr().err
    assert not (tmp_path / "shots.v2").exists()
    (tmp_path / "shots.v2").mkdir()
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "shots.v2")]) == 0
    assert [p.name for p in (tmp_path / "shots.v2").iterdir()] == ["a_tiny.jpg"]


def test_unwritable_output_is_one_line(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = make_photo(tmp_path / "a.jpg", (20, 20))
    (tmp_path / "file").write_text("x")
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "file" / "sub")]) == 1
    [line, summary] = capsys.readouterr().err.strip().splitlines()
    assert summary == "1 of 1 inputs failed"  # mkdir's own words were "[Errno 17] File exists: '.../file'"
    assert line == f"error: {a}: cannot write {tmp_path / 'file' / 'sub' / 'a_tiny.jpg'}: {tmp_path / 'file'} is a file, not a folder"


def test_a_folder_that_takes_no_files_is_one_line_naming_the_output(tiny_model: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(dir: str, prefix: str, suffix: str) -> tuple[int, str]:  # a read-only folder, for root too
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}x70ob1i{suffix}")

    a = make_photo(tmp_path / "a.jpg", (20, 20))
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "out" / "b.jpg")]) == 1
    line = capsys.readouterr().err.splitlines()[0]
    assert line == f"error: {a}: cannot write {tmp_path / 'out' / 'b.jpg'} (Permission denied)"


def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(tiny_model: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_style import files

    def full(image: Image.Image, target: Path, *args: object, **kwargs: object) -> None:
        Path(target).write_bytes(b"\xff\xd8 half")
        raise OSError(28, "No space left on device")  # Pillow's write, as on a full tmpfs

    a = make_photo(tmp_path / "a.jpg", (20, 20))
    monkeypatch.setattr(files, "_save", full)
    assert main(["--model", str(tiny_model), str(a), "-o", str(tmp_path / "out")]) == 1
    line = capsys.readouterr().err.splitlines()[0]  # it was "[Errno 28] No space left on device"
    assert line == f"error: {a}: cannot write {tmp_path / 'out' / 'a_tiny.jpg'} (No space left on device)"
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("writer", ["stdin", "sheet", "export"])
def test_every_writer_says_a_full_disk_in_one_line(tiny_model: Path, tmp_path: Path, writer: str,
                                                   capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture piped in, the sheet and the export were tracebacks on a full disk."""
    import io

    from fast_style import files

    def full(*args: object, **kwargs: object) -> None:
        Path(str(args[1])).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "_save", full)
    monkeypatch.setattr(torch.jit, "save", full)
    photo, out = make_photo(tmp_path / "a.png", (20, 20)), tmp_path / "out"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(photo.read_bytes())))
    target, args, named = {"stdin": (out / "a.png", ["-"], "stdin"), "sheet": (out / "s.png", ["--sheet", str(photo)], photo),
                           "export": (out / "n.pt", ["--export"], None)}[writer]
    assert main(["--model", str(tiny_model), *args, *(["-o"] if writer != "export" else []), str(target)]) == 1
    said = f"{named}: " if named else ""
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {said}cannot write {target} (No space left on device)"
    assert list(out.iterdir()) == []


def test_bf16_stays_close_to_fp32(tiny_model: Path) -> None:
    x = torch.rand(1, 3, 40, 56)
    fp32 = Stylizer.load(tiny_model, device="cpu")(x)
    bf16 = Stylizer.load(tiny_model, device="cpu", precision="bf16")(x)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert fp32.std() > 0.05  # a picture, not a flat colour
    assert (bf16 - fp32).abs().mean() < 0.02
    # auto: bf16 only where the CPU has bf16 instructions (AVX512-bf16, AMX); emulated elsewhere
    assert Stylizer.load(tiny_model, device="cpu", precision="auto").precision == ("bf16" if BF16_CPU else "fp32")
    with pytest.raises(ValueError, match="precision must be auto or one of"):
        Stylizer.load(tiny_model, device="cpu", precision="int4")


@pytest.mark.parametrize("options", [{"channels_last": True}, pytest.param({"compile": True}, marks=pytest.mark.slow)])
def test_fast_paths_give_the_same_picture(tiny_model: Path, options: dict) -> None:
    x = torch.rand(2, 3, 37, 53)
    plain = Stylizer.load(tiny_model, device="cpu")(x)
    fast = Stylizer.load(tiny_model, device="cpu", **options)
    assert (fast(x) - plain).abs().max() < 1e-4
    assert fast(x[:1, :, :20, :30]).shape == (1, 3, 20, 30)  # another size: not fixed to the first


def test_the_conv_out_is_a_space_to_depth_conv_only_where_it_measured_faster(tiny_model: Path) -> None:
    """Eager fp32 on a CPU (AVX2 Zen 3: 1075 -> 914-948 ms a 480p frame); compiled or in int8 it
    measured slower (docs/cpus.md), and on CUDA it was never measured."""
    from fast_style.transformer import SpaceToDepthConv

    def conv_out(**options: object) -> torch.nn.Module:
        return Stylizer.load(tiny_model, device="cpu", **options).engine._network(None)[0].decoder[-1]

    assert isinstance(conv_out(precision="fp32"), SpaceToDepthConv)
    assert not isinstance(conv_out(precision="fp32", compile=True), SpaceToDepthConv)
    assert not isinstance(conv_out(precision="bf16"), SpaceToDepthConv)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert not isinstance(conv_out(precision="int8"), SpaceToDepthConv)


def test_sheet_shows_the_photo_in_every_shipped_style(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    import shutil

    from fast_style import models

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in ("wave", "my_painting"):  # a user's own style counts too
        shutil.copy(tiny_model, shipped / f"{name}.safetensors")
    net, _ = load_model(tiny_model)  # a variant of a style is not a style of its own
    save_model(shipped / "wave_small.safetensors", net, {"style": "wave_small", "style_image": "wave.jpg"})
    monkeypatch.setattr(models, "CHECKPOINT_DIRS", [shipped])
    photo = make_photo(tmp_path / "p.jpg", (400, 300))
    assert main(["--sheet", str(photo), "-o", str(tmp_path / "sheet.png"), "--size", "100"]) == 0
    assert Image.open(tmp_path / "sheet.png").size == (3 * 100 + 2 * 8, 75 + 24)
    # A thumbnail with transparency: tiles of --size still (they were its size, names cut to "…"),
    # the transparent part white (its hidden black showed)
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert main(["--sheet", str(tmp_path / "clear.png"), "-o", str(tmp_path / "small.png"), "--size", "100"]) == 0
    with Image.open(tmp_path / "small.png") as sheet:
        assert sheet.size == (3 * 100 + 2 * 8, 75 + 24) and sheet.getpixel((50, 24 + 37)) == (255, 255, 255)

    # A shipped file that cannot be read: one line, exit 1, and the sheet of the others.
    (shipped / "broken.safetensors").write_bytes(b"\x00" * 64)
    capsys.readouterr()
    assert main(["--sheet", str(photo), "-o", str(tmp_path / "sheet2.png"), "--size", "100"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {shipped / 'broken.safetensors'}: not a readable safetensors file")
    assert Image.open(tmp_path / "sheet2.png").size == (3 * 100 + 2 * 8, 75 + 24)


def test_strength_and_colour_are_per_call(tiny_model: Path) -> None:
    """One Stylizer serves a slider: each call may set its own strength."""
    x = torch.rand(1, 3, 24, 32)
    shared = Stylizer.load(tiny_model, device="cpu")
    assert torch.equal(shared(x, strength=0.4), Stylizer.load(tiny_model, device="cpu", strength=0.4)(x))
    assert torch.equal(shared(x, strength=0), x)
    assert not torch.equal(shared(x), x) and torch.equal(shared(x), shared(x, strength=1))
    assert torch.equal(shared(x, preserve_color=True), Stylizer.load(tiny_model, device="cpu", preserve_color=True)(x))
    with pytest.raises(ValueError, match="strength must be between 0 and 1"):
        shared(x, strength=1.5)


@pytest.mark.parametrize("options", [{}, {"strength": 0.5}, {"strength": 0}, {"preserve_color": True}, {"size": 16}])
def test_the_callers_pixels_are_never_written(tiny_model: Path, options: dict) -> None:
    """Outputs are made in place to spare a copy of the picture (1.2 GB at 102 megapixels), never
    in the caller's tensor."""
    from fast_style.pixels import to_pil

    stylizer = Stylizer.load(tiny_model, device="cpu")
    for x in [torch.rand(1, 3, 24, 32), (torch.rand(1, 3, 24, 32) * 255).round().to(torch.uint8)]:
        kept = x.clone()
        y = stylizer(x, **options)
        assert torch.equal(x, kept) and y.dtype == x.dtype
        to_pil(y[0].float() / 255 if y.dtype == torch.uint8 else y[0])
        assert torch.equal(stylizer(x, **options), y)  # y itself untouched by to_pil


def _chroma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("YCbCr"), dtype=np.float32)[..., 1:]


def test_preserve_color_keeps_the_photo_colours(tmp_path: Path) -> None:
    model = str(Path(__file__).parents[1] / "checkpoints" / "starry_night_small.safetensors")
    photo = make_photo(tmp_path / "p.png", (64, 48))
    assert main(["--model", model, str(photo), "-o", str(tmp_path / "plain.png")]) == 0
    assert main(["--model", model, str(photo), "-o", str(tmp_path / "kept.png"), "--preserve-color"]) == 0
    original, plain, kept = (Image.open(tmp_path / n) for n in ("p.png", "plain.png", "kept.png"))
    kept_change, plain_change = (np.abs(_chroma(im) - _chroma(original)).mean() for im in (kept, plain))
    assert plain_change > 10 and kept_change < 0.2 * plain_change, (kept_change, plain_change)  # the photo's colours
    luma = lambda im: np.asarray(im.convert("L"), dtype=np.float32)  # noqa: E731
    assert np.abs(luma(kept) - luma(plain)).mean() < 0.2 * np.abs(luma(plain) - luma(original)).mean()  # stylized light


def test_images_reach_the_network_in_same_size_batches_once(tiny_model: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI groups by size, the one place that batches: no re-batching behind it."""
    sizes = {"a1": (40, 30), "b1": (30, 40), "a2": (40, 30), "b2": (30, 40), "a3": (40, 30)}
    inputs = [str(make_photo(tmp_path / "in" / f"{n}.png", size, seed=i)) for i, (n, size) in enumerate(sizes.items())]
    calls = []
    real = Stylizer.stylize_batch

    def spy(self: Stylizer, images: list, *args: object, **kwargs: object) -> list:
        calls.append([im.size for im in images])
        return real(self, images, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "stylize_batch", spy)
    assert main(["--model", str(tiny_model), *inputs, "-o", str(tmp_path / "out"), "--batch-size", "2"]) == 0
    assert calls == [[(40, 30), (40, 30)], [(30, 40), (30, 40)], [(40, 30)]]
    assert len(list((tmp_path / "out").iterdir())) == 5
    with pytest.raises(ValueError, match="takes images of one size"):
        Stylizer.load(tiny_model, device="cpu").stylize_batch([Image.new("RGB", (4, 4)), Image.new("RGB", (5, 4))])


@pytest.mark.parametrize("argv, message", [
    (["--model", "m.safetensors", "a.jpg", "--steps", "5"], "--steps: applies to --optimize only"),
    (["--model", "m.safetensors", "a.jpg", "--steps", "5", "--method", "adam"], "--steps --method: apply to --optimize only"),
    (["--serve", "--size", "3", "--strength", "1"], "--size --strength: do not apply to --serve"),
    (["--style", "wave", "a.jpg", "--style-image", "p.jpg"], "--style: does not apply to --style-image"),
    (["--model", "m.safetensors", "a.jpg", "--mix", "0.3"], "--mix: applies to two --style-image paintings only"),
    (["--model", "m.safetensors", "a.jpg", "--vgg-weights", "random"], "--vgg-weights: applies to --optimize and --style-image only"),
    (["--optimize", "--style-image", "p.jpg", "--style-image", "q.jpg", "a.jpg"], "--optimize takes one --style-image"),
    (["--model", "m.safetensors", "a.jpg", "--live-format", "v4l2"], "--live-format: applies to --live only"),
    (["--model", "m.safetensors", "a.jpg", "--live-option", "framerate=30"], "--live-option: applies to --live only"),
    (["--model", "m.safetensors", "--live", "/dev/video0", "--live-option", "1280x720"],
     "--live-option 1280x720: give KEY=VALUE, as video_size=1280x720"),
    (["--optimize", "--style-image", "p.jpg", "a.jpg", "--compile"], "--compile: does not apply to --optimize"),
    (["--optimize", "--style-image", "p.jpg", "a.jpg", "--precision", "bf16"], "--precision: does not apply to --optimize"),
    (["--model", "m.safetensors", "--export", "m.onnx", "--strength", "0.5"], "--strength: does not apply to --export"),
    (["--model", "m.safetensors", "--live", "/dev/video0", "--batch-size", "2"], "--batch-size: does not apply to --live"),
    (["--model", "m.safetensors", "--live", "/dev/video0", "-o", "cam.jpg"],
     "--live writes a video (-o OUT.mp4 OUT.mov OUT.mkv OUT.m4v OUT.avi OUT.webm OUT.gif OUT.webp) or, without -o, shows a window"),
    (["--sheet", "a.jpg", "-o", "s.png", "--frames", "3"], "--frames: does not apply to --sheet"),
    (["--model", "m.safetensors", "--live", "/dev/video0", "--fps", "10"], "--fps: applies to what --live writes to -o, not to its window"),
    (["--model", "m.safetensors", "a.mp4", "--fps", "0"], "--fps must be above 0, and finite, not 0"),
    (["--model", "m.safetensors", "a.mp4", "--fps", "inf"], "--fps must be above 0, and finite, not inf"),  # a traceback
    (["--sheet", "a.jpg", "-o", "sheet"], "--sheet takes one photo and -o SHEET.png (or .jpg .jpeg .jfif .png .webp .bmp .tif .tiff .heic .heif .avif)"),
    (["--sheet", "clip.mp4", "-o", "s.png"], "--sheet takes one photo: clip.mp4 is a video"),  # said of -o: "s.png: clip.mp4 is a video, written as .mp4 ..."
    (["--model", "m.safetensors", "a.jpg", "--size", "0"], "--size must be at least 1, not 0"),
    (["--list-styles", "--size", "3"], "--list-styles takes nothing else (not size)"),
    (["--model", "m.safetensors", "-", "a.jpg", "-o", "-"], "- (an image on stdin) is the only input"),
    (["--model", "m.safetensors", "a.jpg", "b.jpg", "-o", "-"], "-o - writes one image to stdout"),
    (["--model", "m.safetensors", "a.jpg", "-o", "-", "--json"], "-o - writes one image to stdout"),
    (["--model", "m.safetensors", "a.jpg", "--format", "png"], "--format applies to -o - and to a piped input"),
    (["--model", "m.safetensors", "a.jpg", "--skip-existing", "--overwrite"],
     "--skip-existing keeps existing outputs, --overwrite replaces them: give one"),
    (["--model", "m.safetensors", "--live", "/dev/video0", "-o", "c.mp4", "--skip-existing"],
     "--skip-existing applies to input files and folders: not with --live, --sheet, --export or -"),
    (["--model", "m.safetensors", "--devices", "1", "in", "-o", "out", "--skip-existing"],
     "--skip-existing: does not apply to a dataset run (existing outputs are kept and skipped: it resumes)"),
    (["--model", "m.safetensors", "--live", "testsrc2", "--live-format", "nosuchfmt"],  # was av's traceback
     "--live-format nosuchfmt: this FFmpeg has no such input format (cameras: v4l2 on Linux, "),
    # dataset runs: Lightning's traceback, a bare int() error, and silently accepted
    (["--model", "m.safetensors", "--devices", "0", "in", "-o", "out"], "--devices must be a number of processes or GPUs (at least 1), or auto, not 0"),
    (["--model", "m.safetensors", "--devices", "abc", "in", "-o", "out"], "or auto, not abc"),
    (["--model", "m.safetensors", "--devices", "2", "--num-nodes", "0", "in", "-o", "out"], "--num-nodes must be at least 1, not 0"),
    (["--model", "m.safetensors", "--devices", "1", "--workers", "-1", "in", "-o", "out"], "--workers must be 0 or more, not -1"),
    (["--model", "m.safetensors", "--devices", "1", "--seed", "3", "in", "-o", "out"], "--seed: only with --style-per-image random"),
    (["--style", "wave", "--strenght", "0.5", "a.jpg"], "unrecognized arguments: --strenght (did you mean --strength?)"),
    (["--style", "wave", "--zzz", "a.jpg"], "unrecognized arguments: --zzz (stylize --help lists the options)"),
    (["--style", "wave", "--precision", "int4", "a.jpg"], "argument --precision: invalid choice: 'int4' (choose from "),
])
def test_options_that_do_not_apply_are_refused_in_one_line(argv: list[str], message: str,
                                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()  # argparse's 17 lines of usage above it were noise
    assert line.startswith("stylize: error: ") and message in line


def test_frames_without_a_video_is_refused(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photo = make_photo(tmp_path / "a.jpg", (20, 20))
    assert main(["--model", str(tiny_model), str(photo), "--frames", "3", "-o", str(tmp_path / "o.jpg")]) == 2
    assert capsys.readouterr().err.strip() == "error: --frames: applies to videos, animations and --live only"
    assert not (tmp_path / "o.jpg").exists()


def test_list_styles_and_style_names_inside_a_gallery(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    import shutil

    from fast_style import models
    from fast_style.gallery import GalleryConfig, GalleryNet

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(tiny_model, shipped / "wave.safetensors")
    torch.manual_seed(0)
    gallery = GalleryNet(GalleryConfig(styles=("monet", "klimt"), channels=8, res_blocks=1, output_scale=1.0))
    with torch.no_grad():
        gallery.shifts.normal_(0, 0.5)
    save_model(shipped / "gallery.safetensors", gallery, {"style": "gallery"})
    monkeypatch.setattr(models, "CHECKPOINT_DIRS", [shipped])
    assert main(["--list-styles"]) == 0
    assert capsys.readouterr().out.split() == ["klimt", "monet", "wave"]
    photo = make_photo(tmp_path / "p.png", (40, 30))
    assert main(["--sheet", str(photo), "-o", str(tmp_path / "sheet.png"), "--size", "40"]) == 0
    assert Image.open(tmp_path / "sheet.png").size == (4 * 40 + 3 * 8, 30 + 24)  # the photo, then 3 styles
    assert main(["--sheet", str(photo), "-o", str(tmp_path / "g.png"), "--size", "40",
                 "--model", str(shipped / "gallery.safetensors"), "--style", "monet=1,klimt=1"]) == 0
    assert Image.open(tmp_path / "g.png").size == (4 * 40 + 3 * 8, 30 + 24)  # the photo, the 2 styles, their mix

    out = tmp_path / "out"
    assert main(["--style", "klimt", str(photo), "-o", str(out)]) == 0
    assert main(["--style", "monet=1,klimt=3", str(photo), "-o", str(out)]) == 0
    assert main(["--model", str(shipped / "gallery.safetensors"), "--style", "monet", str(photo), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p_klimt.png", "p_monet.png", "p_monet25_klimt75.png"]
    mixed, klimt, monet = (np.asarray(Image.open(out / n), dtype=np.float32)
                           for n in ("p_monet25_klimt75.png", "p_klimt.png", "p_monet.png"))
    assert np.abs(mixed - klimt).mean() < np.abs(mixed - monet).mean()  # 3 parts klimt to 1 of monet
    capsys.readouterr()
    assert main(["--style", "monet=0.5,wave=0.5", str(photo), "-o", str(out)]) == 2
    assert "these styles live in different files" in capsys.readouterr().err
    assert main(["--model", str(shipped / "gallery.safetensors"), "--style", "wave", str(photo), "-o", str(out)]) == 2
    assert "no style 'wave' (its styles: monet, klimt)" in capsys.readouterr().err
    for gallery in (["--style", "gallery"], ["--model", str(shipped / "gallery.safetensors")]):  # painted its first, unasked
        assert main([*gallery, str(photo), "-o", str(out / "first.png")]) == 2
        assert capsys.readouterr().err == (f"error: {shipped / 'gallery.safetensors'}: a gallery of 2 styles: pick one or a "
                                           "mix with --style (its styles: monet, klimt)\n")
    assert not (out / "first.png").exists()
    # A single-style file named like a gallery's style wins for the name alone; a mix is the gallery's.
    shutil.copy(tiny_model, shipped / "klimt.safetensors")
    assert models.resolve_style("klimt") == (shipped / "klimt.safetensors", None)
    assert models.resolve_style("monet=1,klimt=1") == (shipped / "gallery.safetensors", {"monet": 1.0, "klimt": 1.0})


def test_a_closed_stdout_stops_the_run_quietly(tiny_model: Path, tmp_path: Path) -> None:
    """`stylize DIR --json | head -1`: the second line's BrokenPipeError was reported as that
    input's failure (its file written all the same), then a traceback. The three ways of writing
    to stdout, each a process of its own, side by side (one after the other: 15 s on an AVX2 CPU)."""
    import os

    photos = tmp_path / "photos"
    for i, size in enumerate([(20, 16), (24, 16), (28, 16)]):  # one batch each
        make_photo(photos / f"p{i}.png", size)
    runs = {}
    for output, args in {"json": [str(photos), "-o", str(tmp_path / "json"), "--json"],
                         "names": [str(photos), "-o", str(tmp_path / "names")],
                         "picture": [str(photos / "p0.png"), "-o", "-"]}.items():
        read, write = os.pipe()
        os.close(read)  # the reader gone before the first line
        runs[output] = subprocess.Popen([sys.executable, "-m", "fast_style.stylize", "--model", str(tiny_model), *args],
                                        stdout=write, stderr=subprocess.PIPE, text=True)
        os.close(write)
    for output, (status, stderr) in side_by_side(runs, timeout=120).items():
        assert (output, status, stderr) == (output, 141, "")
        if output != "picture":
            assert [p.name for p in (tmp_path / output).iterdir()] == ["p0_tiny.png"]  # written, then the run stopped


def test_an_image_piped_in_comes_out_on_stdout_in_its_format(tiny_model: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsysbinary: pytest.CaptureFixture) -> None:
    import io

    def pipe(data: bytes, *args: str) -> tuple[int, bytes, bytes]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        code = main(["--model", str(tiny_model), "-", *args])
        out, err = capsysbinary.readouterr()
        return code, out, err

    png = make_photo(tmp_path / "a.png", (37, 29)).read_bytes()
    code, out, _ = pipe(png, "-o", "-")
    assert code == 0 and Image.open(io.BytesIO(out)).format == "PNG" and Image.open(io.BytesIO(out)).size == (37, 29)
    code, out, _ = pipe(png, "-o", "-", "--format", "jpg")
    assert code == 0 and Image.open(io.BytesIO(out)).format == "JPEG"
    code, out, err = pipe(b"not an image", "-o", "-")
    assert (code, out) == (1, b"") and err.decode().strip() == "error: stdin: not an image file Pillow can read"
    ts = (b"\x47" + bytes(187)) * 2  # an MPEG transport stream's first packets, as ffmpeg pipes video
    for video in (b"\x00\x00\x00\x20ftypisom" + bytes(20), b"\x1a\x45\xdf\xa3" + bytes(20), ts):  # MP4, MKV, TS
        code, out, err = pipe(video, "-o", "-")  # each said "not an image file Pillow can read"
        assert (code, out) == (1, b"") and err.decode().strip() == (
            "error: stdin: a video: stdin takes one picture; give the video as a file (stylize clip.mp4 -o out.mp4)")
    code, out, _ = pipe(png, "-o", str(tmp_path / "piped.webp"))
    assert code == 0 and Image.open(tmp_path / "piped.webp").format == "WEBP"
    code, _, err = pipe(png, "-o", str(tmp_path / "piped.webp"))  # exists: kept
    assert code == 1 and "exists (pass --overwrite" in err.decode()


def test_json_prints_one_object_a_line_per_input(tiny_model: Path, photo_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    import json

    code = main(["--model", str(tiny_model), str(photo_dir), str(tmp_path / "missing.jpg"), "--json", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1 and len(lines) == 6 and set(lines[0]) == {"input", "output", "seconds", "error", "skipped"}
    [bad] = [line for line in lines if line["error"]]
    assert bad == {"input": str(tmp_path / "missing.jpg"), "output": None, "seconds": bad["seconds"], "error": "file not found",
                   "skipped": False}
    assert all(Path(line["output"]).is_file() and line["seconds"] >= 0 for line in lines if not line["error"])
    assert f"error: {tmp_path / 'missing.jpg'}: file not found" in captured.err
    # Every input missing: said before the model loads, in the same lines.
    assert main(["--model", str(tiny_model), str(tmp_path / "missing.jpg"), "--json"]) == 1
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [
        {"input": str(tmp_path / "missing.jpg"), "output": None, "seconds": None, "error": "file not found", "skipped": False}]
    assert captured.err.splitlines() == [f"error: {tmp_path / 'missing.jpg'}: file not found", "1 of 1 inputs failed"]


def test_skip_existing_goes_on_where_a_stopped_run_ended(tiny_model: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    """After Ctrl-C the same command said "exists" for each output made, as failures, and exited 1."""
    import json

    photos, out = tmp_path / "photos", tmp_path / "out"
    for name in ("a", "b", "c"):
        make_photo(photos / f"{name}.png", (24, 16))
    out.mkdir()
    (out / "b_tiny.png").write_bytes(b"made before the stop")
    assert main(["--model", str(tiny_model), str(photos), "-o", str(out), "--skip-existing", "--json"]) == 0
    lines = {Path(line["input"]).name: line for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert lines["b.png"] == {"input": str(photos / "b.png"), "output": str(out / "b_tiny.png"), "seconds": 0,
                              "error": None, "skipped": True}
    assert not lines["a.png"]["skipped"] and not lines["c.png"]["skipped"]
    assert (out / "b_tiny.png").read_bytes() == b"made before the stop"
    assert Image.open(out / "a_tiny.png").size == Image.open(out / "c_tiny.png").size == (24, 16)
    assert main(["--model", str(tiny_model), str(photos), "-o", str(out), "--skip-existing"]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == [f"{out / n}_tiny.png (exists; skipped)" for n in "abc"]
    assert main(["--model", str(tiny_model), str(photos), "-o", str(out)]) == 1  # without it, as before
    assert capsys.readouterr().err.splitlines()[-1] == "3 of 3 inputs failed"


def test_a_sheet_of_many_styles_comes_in_rows() -> None:
    from fast_style.sheet import COLUMNS, GAP, LABEL, make_sheet

    styles = {f"a_rather_long_style_name_{i}": (lambda im: im) for i in range(COLUMNS + 1)}  # the photo + 7: 2 rows
    sheet = make_sheet(Image.new("RGB", (80, 60), "red"), styles, tile=40)
    assert sheet.size == (COLUMNS * (40 + GAP) - GAP, 2 * (30 + LABEL + GAP) - GAP)


def test_compiling_on_a_cpu_with_a_cuda_build_of_torch_does_not_warn_of_cuda(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import fast_style.engine  # noqa: F401 - what a compiled or int8 run imports first

    # What torch.utils.cpp_extension logs when Inductor's C++ build imports it: it landed mid-progress bar.
    logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found, using CUDA_HOME='/usr/local'")
    logging.getLogger("torch.utils.cpp_extension").warning("another warning")
    assert "No CUDA runtime" not in caplog.text and "another warning" in caplog.text
