import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import answers_in_a_fresh_process, make_photo
from fast_style.evaluate import main as evaluate
from fast_style import Stylizer
from fast_style.config import LossConfig
from fast_style.images import find_images, open_rgb
from fast_style.pixels import fit_longest, to_tensor
from fast_style.losses import PerceptualLoss, perceptual_loss
from fast_style.optimize import optimize_image
from fast_style.stylize import main as stylize
from fast_style.vgg import VGG16Features

STYLE = Path(__file__).parents[1] / "fast_style" / "styles" / "wave.jpg"


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_optimisation_lowers_the_training_loss(method: str) -> None:
    torch.manual_seed(0)
    loss_fn = PerceptualLoss(VGG16Features("random"), content_weight=1e3, style_weight=1e9)
    stripes = (torch.arange(32) // 4 % 2).float().view(1, 1, 1, 32).expand(1, 3, 32, 32)
    loss_fn.set_style(stripes * torch.tensor([1.0, 0.2, 0.1]).view(1, 3, 1, 1))
    content = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        start = loss_fn(content, content)["total"].item()
    image, losses = optimize_image(loss_fn, content, steps=20, method=method, progress=False)
    assert image.shape == content.shape and 0 <= image.min() and image.max() <= 1
    assert losses["total"] < 0.5 * start, (start, losses)


def test_stylize_optimize_keeps_the_size(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png", (45, 33))
    out = tmp_path / "o.png"
    assert stylize(["--optimize", "--style-image", str(STYLE), str(photo), "-o", str(out), "--steps", "5",
                    "--size", "32", "--vgg-weights", "random", "--style-size", "64"]) == 0
    assert Image.open(out).size == (45, 33)


def test_a_photo_too_large_to_optimise_in_memory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A 12-megapixel photo filled 24 GB and was killed by the kernel after 100 s, without a line."""
    from fast_style import hardware, optimize

    monkeypatch.setattr(hardware, "available_memory", lambda: 24.1e9)
    with pytest.raises(ValueError) as refused:
        optimize.check_memory(3024, 4032, 300, "lbfgs")
    assert str(refused.value) == ("4032x3024 takes about 61 GB to optimise at 4.9 GB a megapixel, measured; 24.1 GB is "
                                  "free: --size 2367 fits")
    with pytest.raises(ValueError, match=r"takes about 40 GB to optimise at 3\.2 GB a megapixel"):  # no history to keep
        optimize.check_memory(3024, 4032, 300, "adam")
    optimize.check_memory(1775, 2367, 300, "lbfgs")  # the size it named
    monkeypatch.setattr(hardware, "available_memory", lambda: None)  # not known (macOS): not refused
    optimize.check_memory(3024, 4032, 300, "lbfgs")

    monkeypatch.setattr(hardware, "available_memory", lambda: 0.5e9)  # through the command: a line each
    photos = [make_photo(tmp_path / "a.png", (45, 33)), make_photo(tmp_path / "b.png", (20, 15))]
    assert stylize(["--optimize", "--style-image", str(STYLE), *map(str, photos), "-o", str(tmp_path / "out"), "--steps",
                    "2", "--vgg-weights", "random", "--style-size", "64"]) == 1
    err = capsys.readouterr().err
    for photo, size in zip(photos, ("45x33", "20x15")):
        assert f"error: {photo}: stylizing failed ({size} takes about 1 GB to optimise at 3.3 GB a megapixel" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_evaluate_says_a_baseline_too_large_for_memory_before_any_work(tiny_model: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_style import hardware

    monkeypatch.setattr(hardware, "available_memory", lambda: 0.5e9)
    photo = make_photo(tmp_path / "photos" / "p.png", (45, 33))
    argv = ["--model", str(tiny_model), "--photos", str(photo.parent), "--style-image", str(STYLE), "--size", "32",
            "--vgg-weights", "random", "--steps", "2"]
    assert evaluate([*argv, "--baseline", "gatys"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {photo}: 32x23 takes about 1 GB to optimise at 3.3 GB a megapixel")
    assert evaluate(argv) == 0  # no baseline: nothing to optimise


def test_optimize_needs_a_style_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        stylize(["--optimize", str(tmp_path / "p.png")])
    assert "--optimize takes one --style-image" in capsys.readouterr().err


def test_evaluate_help_and_a_refused_command_line_answer_without_importing_torch(tmp_path: Path) -> None:
    """Importing torch takes 3 s here: `evaluate --help` took 10 s, as `stylize --help` did."""
    (tmp_path / "m.safetensors").touch()
    argvs = [["--help"], ["--model", "m.safetensors", "--photos", ".", "--size", "0"],
             ["--model", "m.safetensors", "--photos", ".", "--sizee", "3"],
             ["--model", "m.safetensors", "--photos", "nope"], ["--model", "nope.safetensors", "--photos", "."]]
    lines, result = answers_in_a_fresh_process("from fast_style.evaluate import main as call", argvs, tmp_path,
                                                ("torch", "fast_style.stylizer"))
    assert lines == ["0", "2", "2", "2", "2", "[]"], result.stdout[-500:] + result.stderr[-2000:]
    assert result.stderr.splitlines() == ["evaluate: error: --size must be at least 1, not 0",  # and no usage above
                                          "evaluate: error: unrecognized arguments: --sizee 3 (did you mean --size?)",
                                          # said after the VGG had loaded, or failed to download
                                          "evaluate: error: --photos nope: not found",
                                          "evaluate: error: --model nope.safetensors: model file not found"]

def test_evaluate_json_against_gatys(tiny_model: Path, photo_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code = evaluate(["--model", str(tiny_model), "--photos", str(photo_dir), "--style-image", str(STYLE), "--size", "32",
                     "--style-size", "64", "--baseline", "gatys", "--steps", "5", "--json", "--vgg-weights", "random"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 5
    for side in ("model", "baseline"):
        assert set(report[side]) >= {"content", "style", "total", "seconds_per_image"}
        assert report[side]["total"] == pytest.approx(report[side]["content"] + report[side]["style"], rel=1e-4)
    assert report["total_ratio"] == pytest.approx(report["model"]["total"] / report["baseline"]["total"])
    assert report["speedup"] == pytest.approx(report["baseline"]["seconds_per_image"] / report["model"]["seconds_per_image"])
    assert report["baseline"]["total"] < report["model"]["total"]  # 5 steps of Gatys beat an untrained network


def test_evaluate_scores_a_lower_strength_as_stylize_blends_it(tiny_model: Path, photo_dir: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    common = ["--model", str(tiny_model), "--photos", str(photo_dir), "--style-image", str(STYLE), "--size", "32",
              "--style-size", "64", "--json", "--vgg-weights", "random"]
    reports = {}
    for strength in ("0", "0.5", "1"):
        assert evaluate([*common, "--strength", strength]) == 0
        reports[strength] = json.loads(capsys.readouterr().out)
    assert reports["0"]["model"]["content"] == 0 and reports["0"]["strength"] == 0  # the photo itself
    assert 0 < reports["0.5"]["model"]["content"] < reports["1"]["model"]["content"]
    with pytest.raises(SystemExit) as exit:  # a bad value, as stylize refuses it: before the model and VGG load
        evaluate([*common, "--strength", "1.5"])
    assert exit.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1] == (
        "evaluate: error: --strength must be between 0 and 1")


def test_stylize_optimize_takes_strength_and_colour(tmp_path: Path) -> None:
    """Gatys sits behind the same picture pipeline: strength 0 gives the photo back."""
    photo = make_photo(tmp_path / "p.png", (24, 20))
    common = ["--optimize", "--style-image", str(STYLE), str(photo), "--steps", "3", "--vgg-weights", "random",
              "--style-size", "32"]
    assert stylize([*common, "-o", str(tmp_path / "none.png"), "--strength", "0"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "none.png")), np.asarray(Image.open(photo)))
    assert stylize([*common, "-o", str(tmp_path / "full.png")]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "full.png")), np.asarray(Image.open(photo)))


def test_evaluate_reuses_a_baseline_only_for_the_same_setup(tiny_model: Path, photo_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    common = ["--model", str(tiny_model), "--photos", str(photo_dir), "--style-image", str(STYLE), "--style-size", "64",
              "--json", "--vgg-weights", "random"]
    assert evaluate([*common, "--size", "32", "--baseline", "gatys", "--steps", "3"]) == 0
    earlier = tmp_path / "earlier.json"
    earlier.write_text(capsys.readouterr().out)
    assert evaluate([*common, "--size", "32", "--baseline-from", str(earlier)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["baseline"] == json.loads(earlier.read_text())["baseline"]
    assert report["total_ratio"] == pytest.approx(report["model"]["total"] / report["baseline"]["total"])
    assert evaluate([*common, "--size", "48", "--baseline-from", str(earlier)]) == 1
    assert capsys.readouterr().err.strip() == f"error: {earlier}: its baseline was made with other size; run the baseline again"
    assert evaluate([*common, "--size", "32", "--baseline-from", str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.json'}: cannot be read (No such file or directory)"
    earlier.write_text('{"model": {}}')
    assert evaluate([*common, "--size", "32", "--baseline-from", str(earlier)]) == 1
    assert capsys.readouterr().err.strip().startswith(f"error: {earlier}: not the JSON of an `evaluate --baseline gatys")


def test_ctrl_c_in_evaluate_is_one_line(tiny_model: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    from fast_style import evaluate as module

    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "evaluate", ctrl_c)
    assert evaluate(["--model", str(tiny_model), "--photos", str(photo_dir)]) == 130
    assert capsys.readouterr().err == "interrupted: evaluate writes nothing, so nothing is lost\n"


def test_evaluate_measures_what_a_precision_costs(photo_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """The loss evaluate reports at a precision is the training loss of that precision's outputs,
    computed here on its own, and it differs between precisions (how much, with real VGG
    weights: docs/speed.md)."""
    trained = Path(__file__).parents[1] / "checkpoints" / "starry_night_small.safetensors"
    common = ["--model", str(trained), "--photos", str(photo_dir), "--style-image", str(STYLE), "--size", "48",
              "--style-size", "64", "--json", "--vgg-weights", "random"]
    loss_fn = perceptual_loss(STYLE, 64, {"content": 1e5, "style": 1e10, "tv": 0.0}, LossConfig(vgg_weights="random"))
    totals = {}
    for precision in ("fp32", "bf16"):
        assert evaluate([*common, "--precision", precision]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["precision"] == precision
        stylizer, direct = Stylizer.load(trained, device="cpu", precision=precision), []
        for path in find_images(photo_dir):
            x = fit_longest(to_tensor(open_rgb(path))[None], 48)
            with torch.no_grad():
                direct.append(loss_fn(stylizer(x), x)["total"].item())
        assert report["model"]["total"] == pytest.approx(sum(direct) / len(direct), rel=1e-4)
        totals[precision] = report["model"]["total"]
    assert totals["bf16"] != totals["fp32"]  # the network really ran in bf16


def test_evaluate_table_and_bad_folder(tiny_model: Path, photo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    common = ["--model", str(tiny_model), "--photos", str(photo_dir), "--style-image", str(STYLE), "--size", "32",
              "--vgg-weights", "random"]
    assert evaluate([*common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert evaluate(common) == 0
    header, columns, row = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("5 photos, longest side 32 px")
    assert columns.split() == ["content", "style", "total", "seconds_per_image"]
    assert row.split()[0] == "model"
    assert [float(v) for v in row.split()[1:4]] == pytest.approx([report["model"][k] for k in ("content", "style", "total")],
                                                                 rel=1e-3)
    (tmp_path / "none").mkdir()  # a folder without photos (a missing one is refused with the command line)
    assert evaluate(["--model", str(tiny_model), "--photos", str(tmp_path / "none"), "--style-image", str(STYLE),
                     "--vgg-weights", "random"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none'}: no photos found"
    folder = tmp_path / "photos"  # a damaged file among good ones was a traceback after the ones before it were scored
    make_photo(folder / "a.jpg", (40, 30))
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    assert evaluate(["--model", str(tiny_model), "--photos", str(folder), "--style-image", str(STYLE),
                     "--vgg-weights", "random", "--baseline", "gatys", "--steps", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {folder / 'b.jpg'}: cannot be read as an image (") and len(err.splitlines()) == 1
    (folder / "b.jpg").unlink()
    make_photo(folder / "strip.png", (300, 4))  # 32x1 at --size 32: a traceback from VGG's pooling
    assert evaluate(["--model", str(tiny_model), "--photos", str(folder), "--style-image", str(STYLE), "--size", "32",
                     "--vgg-weights", "random"]) == 1
    assert capsys.readouterr().err.strip() == (f"error: {folder / 'strip.png'}: 300x4 at --size 32 is 32x1, too small for "
                                               f"VGG-16's losses (8 pixels or more a side); --size 563 takes it, or move "
                                               f"it out: the scores are over every photo of {folder}")
    assert evaluate(["--model", str(tiny_model), "--photos", str(folder / "strip.png"), "--style-image", str(STYLE),
                     "--size", "563", "--vgg-weights", "random"]) == 0  # as said; 562 is 562x7


def test_evaluate_takes_a_shipped_style_by_name_as_stylize_does_and_one_photo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--model` took a file alone: an installed wheel's user had no checkpoints/ path to give it."""
    photo = make_photo(tmp_path / "one.jpg", (40, 30))
    assert evaluate(["--style", "wave", "--photos", str(photo), "--size", "32", "--vgg-weights", "random", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 1 and report["setup"]["photos"] == ["one.jpg"] and report["setup"]["style_image"] == "wave.jpg"
    with pytest.raises(SystemExit):
        evaluate(["--model", "wave", "--photos", str(photo)])
    assert capsys.readouterr().err.splitlines()[-1] == "evaluate: error: --model wave: model file not found (a shipped style: --style wave)"
    assert evaluate(["--style", "wave,udnie", "--photos", str(photo), "--vgg-weights", "random"]) == 1
    assert capsys.readouterr().err == "error: --style wave,udnie: a mix has no one painting to be scored against; give one style\n"
    with pytest.raises(SystemExit):
        evaluate(["--photos", str(photo)])
    assert capsys.readouterr().err.splitlines()[-1] == ("evaluate: error: which model? --style NAME (a shipped one: "
                                                        "stylize --list-styles) or --model FILE")


def test_evaluate_reads_a_painting_above_pillows_pixel_limit(tiny_model: Path, photo_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """As train and stylize do; Pillow's limit (179 MP) is 1,000 pixels here, so that wave.jpg stands for a scan."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # it was a DecompressionBombError traceback
    assert evaluate(["--model", str(tiny_model), "--photos", str(photo_dir), "--style-image", str(STYLE), "--size", "32",
                     "--vgg-weights", "random", "--json"]) == 0


def test_pictures_too_small_for_vgg_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A pooling's "Output size is too small": a traceback from --optimize, evaluate and train."""
    with pytest.raises(ValueError, match=r"^a 7x9 picture is too small for VGG-16's losses \(8 pixels or more a side\)$"):
        VGG16Features("random")(torch.rand(1, 3, 9, 7), ["relu4_3"])
    assert VGG16Features("random")(torch.rand(1, 3, 8, 8), ["relu4_3"])["relu4_3"].shape == (1, 512, 1, 1)
    small, big = make_photo(tmp_path / "small.png", (5, 5)), make_photo(tmp_path / "big.png", (40, 30))
    assert stylize(["--optimize", "--style-image", str(STYLE), str(small), str(big), "-o", str(tmp_path / "out"),
                    "--steps", "2", "--vgg-weights", "random", "--style-size", "64"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {small}: stylizing failed (a 5x5 picture is too small for VGG-16's losses (8 pixels or more a side))",
        "1 of 2 inputs failed"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["big_wave.png"]


@pytest.mark.parametrize("option, message", [
    (["--size", "0"], "--size must be at least 1, not 0"),  # ran at full size
    (["--style-size", "0"], "--style-size must be at least 1, not 0"),
    (["--baseline", "gatys", "--steps", "0"], "--steps must be at least 1, not 0"),  # ZeroDivisionError
    (["--paintings", "/nowhere"], "--paintings /nowhere: folder not found"),  # searched the recorded paths instead
])
def test_evaluate_refuses_nonsense_in_one_line(tiny_model: Path, photo_dir: Path, capsys: pytest.CaptureFixture,
                                               option: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit:
        evaluate(["--model", str(tiny_model), "--photos", str(photo_dir), "--vgg-weights", "random", *option])
    assert exit.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"evaluate: error: {message}"
