"""A folder across processes with Lightning's prediction loop: each output exactly once."""

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from conftest import make_photo, stop_group
from fast_style.dataset import Item, _Images, batches, plan, random_style
from fast_style.images import DEFAULT_MAX_PIXELS
from fast_style.gallery import GalleryConfig, GalleryNet
from fast_style.model_file import save_model
from fast_style.stylize import main


def folder(root: Path) -> Path:
    for i in range(7):
        make_photo(root / ("a" if i % 2 else "b") / f"{i}.jpg", (40, 30) if i % 3 else (30, 44), seed=i)
    (root / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def stylize(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fast_style.stylize", *args], cwd=cwd, capture_output=True, text=True)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_the_plan_does_not_depend_on_the_process_count(tmp_path: Path) -> None:
    root = folder(tmp_path / "in")
    items, done, bad = plan(root, tmp_path / "out", ["x", "y", "z"], "random", seed=3)
    assert len(items) == 8 and done == [] and bad == ["b/broken.jpg"]
    assert [i.style for i in items] == [random_style(["x", "y", "z"], 3, i.relative) for i in items]
    assert len({i.style for i in items}) > 1 and random_style(["x", "y", "z"], 4, "a/1.jpg") in "xyz"
    cut = batches(items, 2)
    assert sorted(i for b in cut for i in b) == list(range(8))  # every item once
    assert all(len({(items[i].size, items[i].style) for i in b}) == 1 for b in cut)  # one size, one style a batch


def test_outputs_inside_the_input_folder_are_not_planned_as_inputs(tmp_path: Path) -> None:
    root = folder(tmp_path / "in")
    make_photo(root / "out" / "a" / "1.jpg", (40, 30))  # an earlier run's output, written inside the input folder
    items, done, _ = plan(root, root / "out", ["x"], "same", seed=0)
    assert done == ["a/1.jpg"] and len(items) == 7 and not any(i.relative.startswith("out/") for i in items)



@pytest.mark.parametrize("where, message", [("in", "the output folder is the input folder; write to another (-o OUT_FOLDER)"),
                                            ("in/a/1.jpg", "a file; a dataset run takes a folder of images")])
def test_a_dataset_run_needs_an_input_folder_apart_from_its_outputs(tiny_model: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture, where: str,
                                                                     message: str) -> None:
    folder(tmp_path / "in")
    out = tmp_path / "in" if where == "in" else tmp_path / "out"
    assert main(["--model", str(tiny_model), "--devices", "1", str(tmp_path / where), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_an_output_folder_that_cannot_be_made_is_one_line(tiny_model: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    """A file named as the output folder, and a read-only disk (tried on a read-only tmpfs), were tracebacks."""
    folder(tmp_path / "in")
    (tmp_path / "taken").write_text("a file")
    assert main(["--model", str(tiny_model), "--devices", "1", str(tmp_path / "in"), "-o", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.strip() == f"error: -o {tmp_path / 'taken'} is a file; a dataset run writes into a folder"

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["--model", str(tiny_model), "--devices", "1", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: cannot write {tmp_path / 'out'} (Read-only file system)"


def test_a_size_past_the_pixel_limit_fails_each_image_in_the_manifest(tiny_model: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    root = folder(tmp_path / "in")
    assert main(["--model", str(tiny_model), "--devices", "1", str(root), "-o", str(tmp_path / "out"),
                 "--size", "300", "--max-pixels", "8000"]) == 1
    out, err = capsys.readouterr()
    assert "0 written, 0 already there, 8 failed" in out
    lines = err.strip().splitlines()  # each failed image named, as when not a dataset run
    assert len(lines) == 8 and f"error: {root / 'b' / 'broken.jpg'}: not an image file Pillow can read" in lines
    errors = {line["error"] for line in manifest(tmp_path / "out") if line["input"] != "b/broken.jpg"}
    assert errors == {"refused: --size 300 makes it 0.0675 megapixels, above the limit of 0.008 (--max-pixels)",
                      "refused: --size 300 makes it 0.0614 megapixels, above the limit of 0.008 (--max-pixels)"}


def test_a_portrait_photo_stored_sideways_gets_a_batch_of_its_own_size(tiny_model: Path, tmp_path: Path) -> None:
    """A phone stores a portrait photo sideways, with an EXIF orientation. Planned by its stored
    size, it went into a batch with landscape photos: a traceback from the stack of the two."""
    root = tmp_path / "in"
    for i in range(3):
        photo = Image.open(make_photo(root / f"p{i}.jpg", (40, 30), seed=i))
        photo.load()
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6 if i == 1 else 1  # a quarter turn clockwise
        photo.save(root / f"p{i}.jpg", exif=exif.tobytes())
    assert [item.size for item in plan(root, tmp_path / "out", [""], "same", seed=0)[0]] == [(40, 30), (30, 40), (40, 30)]
    assert main(["--model", str(tiny_model), "--devices", "1", "--workers", "0", str(root), "-o", str(tmp_path / "out")]) == 0
    assert [Image.open(tmp_path / "out" / f"p{i}.jpg").size for i in range(3)] == [(40, 30), (30, 40), (40, 30)]
    images = _Images(root, [Item("p0.jpg", (30, 40), "")], DEFAULT_MAX_PIXELS, None)  # replaced since it was listed
    assert images[0]["error"] == "changed while the run went on (30x40 when listed, 40x30 now); the same command takes it again"


def test_an_error_ends_a_dataset_run_with_its_loader_workers(tiny_model: Path, tmp_path: Path) -> None:
    """The loader's workers ignore SIGTERM, a scheduler's stop being the main process's to save,
    and Python's exit ends them with SIGTERM: an error left the run waiting for them for good."""
    root, out = folder(tmp_path / "in"), tmp_path / "out"
    script = ("import sys\nfrom fast_style import dataset\nfrom fast_style.stylize import main\n"
              "def boom(samples):\n    raise RuntimeError('boom')\n"
              "dataset._collate = boom\n"  # in a worker, at the first batch: as a stack of two sizes failed
              f"sys.exit(main(['--model', {str(tiny_model)!r}, '--devices', '1', {str(root)!r}, '-o', {str(out)!r}]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)  # it hung for good
    assert result.returncode == 2 and "RuntimeError: boom" in result.stderr, result.stderr[-2000:]


def test_videos_in_the_folder_are_said_to_be_left_out(tiny_model: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "in"
    make_photo(root / "a.jpg", (40, 30))
    (root / "clips").mkdir()
    (root / "clips" / "clip.mp4").write_bytes(b"")  # by its name: a dataset run does not open it
    assert main(["--model", str(tiny_model), "--devices", "1", str(root), "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == (f"{tmp_path / 'out'}: 1 written, 0 already there, 0 failed, "
                                               f"1 video left out (a dataset run takes images) (manifest: "
                                               f"{tmp_path / 'out' / 'manifest.jsonl'})")


@pytest.mark.slow  # two processes over gloo
def test_two_processes_write_what_one_does_once_and_a_rerun_writes_nothing(tiny_model: Path, tmp_path: Path,
                                                                         recwarn: pytest.WarningsRecorder) -> None:
    root = folder(tmp_path / "in")
    # One process: this one (a new one would spend most of its time importing torch and Lightning).
    level = logging.getLogger("lightning.pytorch").level
    assert main(["--model", str(tiny_model), "--devices", "1", str(root), "-o", str(tmp_path / "one")]) == 1  # the broken one
    assert logging.getLogger("lightning.pytorch").level == level  # quiet for the run only: a caller may train next
    assert not [w for w in recwarn if "custom batch sampler" in str(w.message)]  # Lightning's doubt: every index is once
    two = stylize("--model", str(tiny_model), "--devices", "2", "--batch-size", "2", str(root), "-o",
                  str(tmp_path / "two"), cwd=tmp_path)
    assert two.returncode == 1, two.stderr[-2000:]
    assert "custom batch sampler" not in two.stderr and "LeafSpec" not in two.stderr
    assert two.stdout.strip().endswith("7 written, 0 already there, 1 failed (manifest: " + str(tmp_path / "two" / "manifest.jsonl") + ")")
    outputs = sorted(p.relative_to(tmp_path / "two").as_posix() for p in (tmp_path / "two").rglob("*.jpg"))
    assert outputs == sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg") if p.name != "broken.jpg")
    lines = manifest(tmp_path / "two")
    assert sorted(line["input"] for line in lines) == sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    [failed] = [line for line in lines if line["status"] == "failed"]
    assert failed["input"] == "b/broken.jpg" and "Pillow" in failed["error"]
    for name in outputs:  # the same batches on 1 process and 2: the same pixels
        a, b = (np.asarray(Image.open(tmp_path / run / name)) for run in ("one", "two"))
        assert np.array_equal(a, b), name

    # A rerun writes nothing; what a killed run leaves (an output missing, its half-written
    # temporary file, its manifest part with a line cut short) is mended, and only that output is
    # written. With the broken photo taken out, one batch is left for two processes: the idle one
    # joins, and says nothing.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "two").rglob("*.jpg")}
    (tmp_path / "two" / "a" / "1.jpg").unlink()
    (tmp_path / "two" / "a" / ".1.k1lled_9.jpg").write_bytes(b"\xff\xd8\xff\xe0 half")
    killed = json.dumps({"input": "a/3.jpg", "status": "written"})
    (tmp_path / "two" / ".manifest.jsonl.dead.rank3").write_text(killed + '\n{"input": "a/1.j')
    (root / "b" / "broken.jpg").unlink()
    before = len(manifest(tmp_path / "two"))
    again = stylize("--model", str(tiny_model), "--devices", "2", str(root), "-o", str(tmp_path / "two"), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip().startswith(f"{tmp_path / 'two'}: 1 written, 6 already there, 0 failed"), \
        again.stderr[-2000:]
    changed = [p for p, t in stamps.items() if not p.exists() or p.stat().st_mtime_ns != t]
    assert changed == [tmp_path / "two" / "a" / "1.jpg"] and (tmp_path / "two" / "a" / "1.jpg").exists()
    assert sorted(p.name for p in (tmp_path / "two").rglob(".*")) == []  # no temporary file, no part left
    lines = manifest(tmp_path / "two")[before:]
    assert lines[0] == json.loads(killed) and len(lines) == 1 + 7  # the killed run's whole line, then this run's 7


def test_random_styles_of_a_gallery_are_recorded_and_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    net = GalleryNet(GalleryConfig(styles=("red", "blue", "green"), channels=8, res_blocks=1, output_scale=1.0))
    with torch.no_grad():
        net.shifts.normal_(0, 0.5)
    model = save_model(tmp_path / "g.safetensors", net, {"style": "gallery"})
    root = folder(tmp_path / "in")
    from fast_style.stylize import main

    args = ["--model", str(model), "--style-per-image", "random", "--seed", "7", "--workers", "0", str(root)]
    assert main([*args, "-o", str(tmp_path / "r1")]) == 1
    assert main([*args, "-o", str(tmp_path / "r2")]) == 1
    first, second = manifest(tmp_path / "r1"), manifest(tmp_path / "r2")
    styles = {line["input"]: line["style"] for line in first if line["status"] == "written"}
    assert styles == {line["input"]: line["style"] for line in second if line["status"] == "written"}
    assert set(styles.values()) <= {"red", "blue", "green"} and len(set(styles.values())) > 1
    assert all(line["seed"] == 7 for line in first if line["status"] == "written")
    with pytest.raises(SystemExit):
        main(["--model", str(model), "--style-per-image", "random", "--style", "red", str(root), "-o", str(tmp_path / "x")])
    capsys.readouterr()
    assert main(["--model", str(model), "--devices", "1", str(root), "-o", str(tmp_path / "x")]) == 2  # red alone, unasked
    assert capsys.readouterr().err == f"error: {model}: a gallery of 3 styles: pick one or a mix with --style (its styles: red, blue, green)\n"
    assert not (tmp_path / "x").exists()


@pytest.mark.slow  # a process of its own, to be stopped
def test_sigterm_stops_a_dataset_run_which_the_same_command_finishes(tiny_model: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    # Lightning's prediction loop noted the SIGTERM and went on to the end of the folder; sent to
    # the whole process group (a scheduler's stop), it killed the decoding workers first.
    root = tmp_path / "in"
    for i in range(600):
        make_photo(root / f"{i:03d}.jpg", (64, 48), seed=i)
    args = ["--model", str(tiny_model), "--devices", "1", "--batch-size", "1", "--workers", "2", str(root), "-o", "out"]
    proc = subprocess.Popen([sys.executable, "-m", "fast_style.stylize", *args], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def first_output() -> None:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "out").glob("*.jpg")) and time.monotonic() < deadline:
            time.sleep(0.05)

    _, err = stop_group(proc, first_output)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == ("error: stopped by SIGTERM; the outputs written are kept, and the same "
                                            "command goes on from them (out)")
    written = len(list((tmp_path / "out").glob("*.jpg")))
    assert 0 < written < 600
    monkeypatch.chdir(tmp_path)  # the same command, in this process (a new one would spend most of its time importing)
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"out: {600 - written} written, {written} already there")
