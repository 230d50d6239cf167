"""The arbitrary-style network: any painting read at run time, its file, its training, its command."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import as_stored, make_photo, make_photo_dir, metadata, run_train_many, scalars
from fast_style.arbitrary import ArbitraryConfig, ArbitraryNet, StyleReader, split_paintings
from fast_style.model_file import load_model, save_model
from fast_style.stylizer import Stylizer
from test_train import FAST, val_photos

ARTISTS = {"a1": "Ann", "a2": "Ann", "b1": "Bob", "c1": "Cy", "d1": "Di"}


def painting_dir(root: Path) -> Path:
    for i, name in enumerate(ARTISTS):
        make_photo(root / f"{name}.jpg", (70 + 7 * i, 60 - 3 * i), seed=20 + i)
    rows = "".join(f"{name}.jpg\t{artist}\tuntitled\n" for name, artist in ARTISTS.items())
    (root / "SOURCES.tsv").write_text("file\tartist\ttitle\n" + rows)
    return root


def arbitrary(seed: int = 0) -> ArbitraryNet:
    torch.manual_seed(seed)
    net = ArbitraryNet(ArbitraryConfig(channels=8, res_blocks=1, output_scale=1.0, style_size=64))
    with torch.no_grad():  # as if trained: the painting decides the norms
        net.to_norms.weight.normal_(0, 0.3)
    return net.eval()


def test_whole_artists_are_held_out(tmp_path: Path) -> None:
    learned, held = split_paintings(painting_dir(tmp_path / "p"), every=2)
    # Artists in name order: Ann, Bob, Cy, Di; every 2nd (Bob, Di) held out, Ann's two paintings together.
    assert [p.stem for p in learned] == ["a1", "a2", "c1"] and [p.stem for p in held] == ["b1", "d1"]
    (tmp_path / "p" / "SOURCES.tsv").unlink()  # without sources, each file is its own artist
    assert [p.stem for p in split_paintings(tmp_path / "p", every=2)[1]] == ["a2", "c1"]
    assert split_paintings(tmp_path / "p", every=0)[1] == []
    with pytest.raises(FileNotFoundError, match="painting folder not found"):
        split_paintings(tmp_path / "nowhere", every=2)
    with pytest.raises(FileNotFoundError, match="a1.jpg: a file, not a folder"):  # "painting folder not found"
        split_paintings(tmp_path / "p" / "a1.jpg", every=2)


def test_a_painting_code_is_a_single_style_network_and_codes_mix_linearly(tmp_path: Path) -> None:
    net, x = arbitrary(), torch.rand(2, 3, 30, 42)
    reader = StyleReader(net, vgg_weights="random")
    red, blue = Image.new("RGB", (80, 60), (220, 30, 30)), make_photo(tmp_path / "blue.png", (50, 90), seed=3)
    a, b = reader.code(red), reader.code(blue)
    assert a.shape == (100,) and (a - b).abs().max() > 0
    with torch.no_grad():
        assert (net.single(a)(x) - net(x, a)).abs().max() < 1e-5
        assert (net(x, a) - net(x, b)).abs().mean() > 0.01  # the paintings differ
    assert torch.allclose(reader.mix([(red, 1), (blue, 3)]), 0.25 * a + 0.75 * b, atol=1e-6)
    with pytest.raises(ValueError, match="not all 0"):
        reader.mix([(red, 0)])
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must be finite, 0 or more"):
            reader.mix([(red, 1), (blue, bad)])


def test_a_painting_file_is_read_once_for_every_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stylizer = Stylizer(arbitrary(), device="cpu", vgg_weights="random")
    painting = make_photo(tmp_path / "painting.jpg", (64, 48), seed=5)
    reads = []
    original = StyleReader.statistics
    monkeypatch.setattr(StyleReader, "statistics", lambda self, p, name: reads.append(1) or original(self, p, name))
    frames = [stylizer(torch.rand(3, 21, 35), style_image=painting) for _ in range(3)]
    assert len(reads) == 1 and frames[0].shape == (3, 21, 35)
    photo = Image.open(make_photo(tmp_path / "photo.jpg", (61, 33)))
    assert stylizer(photo, style_image=str(painting)).size == (61, 33)  # any size, same size out
    with pytest.raises(ValueError, match="give style_image"):
        stylizer(photo)
    with pytest.raises(ValueError, match="nope.jpg: style image not found"):
        stylizer(photo, style_image=tmp_path / "nope.jpg")


def test_a_16_bit_grey_painting_from_python_is_read_as_its_8_bits(tmp_path: Path) -> None:
    """Pillow's convert made it white wherever brighter than 1/257: another painting."""
    reader = StyleReader(arbitrary(), vgg_weights="random")
    grey = np.asarray(Image.open(make_photo(tmp_path / "p.png", (64, 48), seed=4)).convert("L"))
    scan = Image.fromarray(grey.astype(np.uint16) * 257)
    assert torch.equal(reader.code(scan), reader.code(Image.fromarray(grey)))


def test_an_arbitrary_file_round_trips_with_its_input_statistics(tmp_path: Path) -> None:
    net = arbitrary()
    net.fit_inputs(torch.rand(5, 1920) * 10)
    path = save_model(tmp_path / "any.safetensors", net, {"style": "any", "held_out": ["b1.jpg"]})
    assert metadata(path)["architecture"] == "arbitrary"
    loaded, record = load_model(path)
    assert isinstance(loaded, ArbitraryNet) and record.held_out == ["b1.jpg"]
    assert torch.equal(loaded.input_mean, net.input_mean) and torch.equal(loaded.input_std, net.input_std)
    stats = torch.rand(1920)
    assert torch.equal(loaded.embed(stats), as_stored(net).embed(stats))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """`train style=any` on five paintings (two artists held out), 4 steps; then a gallery-started one."""
    root = tmp_path_factory.mktemp("any")
    photos, paintings = make_photo_dir(root / "photos"), painting_dir(root / "paintings")
    held = val_photos(root / "held", 2)
    common = [f"data.root={photos}", "style=any", "style.images=null", f"style.folder={paintings}",
              "style.holdout_every=2", "preview.every_n_steps=2", "trainer.log_every_n_steps=1"]
    runs = run_train_many([
        (root, [*FAST, *common, "trainer.max_steps=4", f"data.val_root={held}", "trainer.val_check_interval=2"]),
        (root, [*FAST, "style=gallery", "style.images=[wave.jpg,udnie.jpg]", f"data.root={photos}", "trainer.max_steps=1",
                f"data.val_root={held}"]),
        (root, [*FAST, *common, "trainer.max_steps=1", "init_weights=checkpoints/gallery.safetensors",
                "export_dir=from_gallery"]),
    ])
    assert [r.returncode for r in runs] == [0, 0, 0], runs[0].stderr[-2000:] + runs[2].stderr[-2000:]
    return root, photos, paintings


def test_training_learns_every_painting_but_the_held_out_artists(trained: tuple) -> None:
    root, _, paintings = trained
    header = metadata(root / "checkpoints" / "any.safetensors")
    assert header["architecture"] == "arbitrary" and header["config"]["style_size"] == 64
    record = header["record"]
    assert record["held_out"] == [str(paintings / "b1.jpg"), str(paintings / "d1.jpg")]
    assert record["style_folder"] == str(paintings) and record["steps"] == 4 and "style_image" not in record
    # Validation: the photos never trained on, each in each painting never learned; one curve for them all.
    first = sorted((root / "runs" / "any").iterdir())[0]
    assert [step for step, _ in scalars(first, "val/total")] == [0, 2, 4]
    assert record["val_losses"]["total"] == pytest.approx(scalars(first, "val/total")[-1][1], rel=1e-4)
    assert not scalars(first, "val/b1/total")
    # A gallery's validation: every painting it learns, with a curve each and their mean.
    [gallery_run] = (root / "runs" / "gallery").iterdir()
    both = [scalars(gallery_run, f"val/{name}/total")[-1][1] for name in ("wave", "udnie")]
    assert scalars(gallery_run, "val/total")[-1][1] == pytest.approx(sum(both) / 2, rel=1e-5)
    # From a gallery of the same body: its convolutions, and the mean of its paintings' norms.
    gallery, _ = load_model(root / "checkpoints" / "gallery.safetensors")
    started, started_record = load_model(root / "from_gallery" / "any.safetensors")
    assert started_record.steps == 2 and started_record.init_weights == "checkpoints/gallery.safetensors"
    assert not torch.equal(started.body.encoder[0][0][1].weight, load_model(root / "checkpoints" / "any.safetensors")[0]
                           .body.encoder[0][0][1].weight)


def stylize(cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """`stylize ARGS` run in `cwd`, in this process: (exit status, stderr)."""
    from fast_style import models
    from fast_style.stylize import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(models, "CHECKPOINT_DIRS", [cwd / "checkpoints"])  # its any.safetensors is the shipped one
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse refusals
        code = e.code
    return code, capsys.readouterr().err


def test_stylize_style_image_in_one_pass_and_a_mix_of_two(trained: tuple, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    root, photos, paintings = trained
    run = lambda *args: stylize(root, monkeypatch, capsys, *args)  # noqa: E731
    odd = make_photo(root / "odd.jpg", (101, 67), seed=4)
    code, err = run("--style-image", str(paintings / "b1.jpg"), "--vgg-weights", "random", str(odd), "-o", "one.png")
    assert code == 0, err
    assert Image.open(root / "one.png").size == (101, 67)  # checkpoints/any.safetensors of this folder, full size
    vivid = save_model(root / "vivid.safetensors", arbitrary(), {"style": "any"})  # paintings that differ after 4 steps
    monkeypatch.setenv("HOME", str(paintings.parent))  # quoted: "~/paintings/b1.jpg cannot be read"
    alone = run("--model", str(vivid), "--style-image", f"~/{paintings.name}/b1.jpg", "--vgg-weights", "random",
                str(odd), "-o", "alone.png")
    mixed = run("--model", str(vivid), "--style-image", str(paintings / "b1.jpg"), "--style-image",
                str(paintings / "d1.jpg"), "--mix", "0.3", "--vgg-weights", "random", str(odd), "-o", "mixed")
    assert alone[0] == mixed[0] == 0, alone[1] + mixed[1]
    [written] = (root / "mixed").iterdir()
    assert written.name == "odd_b170_d130.jpg"
    one, two = (np.asarray(Image.open(p), dtype=float) for p in (root / "alone.png", written))
    assert np.abs(one - two).mean() > 2  # the mix is not the first painting alone
    code, err = run("--style-image", str(paintings / "b1.jpg"), "--mix", "0.3", str(odd))
    assert code == 2 and "--mix W takes exactly two --style-image" in err
    code, err = run("--model", "checkpoints/gallery.safetensors", "--style-image", str(paintings / "b1.jpg"),
                    "--vgg-weights", "random", str(odd))
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        "error: this model has its own styles; a painting of your own (style_image) needs an arbitrary-style model")


def test_an_arbitrary_network_without_a_painting_is_one_line_and_writes_nothing(
        trained: tuple, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`--style any` with no --style-image, a sheet or a style name of it, a dataset run: each
    was a traceback or a wrong message (a dataset run read "." as the painting)."""
    root, photos, paintings = trained
    photo, model = make_photo(root / "lone.jpg", (40, 30), seed=5), "checkpoints/any.safetensors"
    for args in (["--style", "any", str(photo), "-o", "lone.png"], ["--model", model, str(photo), "-o", "lone.png"],
                 ["--model", model, "--sheet", str(photo), "-o", "lone.png"],
                 ["--model", model, "--style", "wave", str(photo), "-o", "lone.png"],
                 ["--model", model, "--export", "lone.onnx"],
                 ["--model", model, "--devices", "1", str(photos), "-o", "lone"]):
        code, err = stylize(root, monkeypatch, capsys, *args)
        assert (code, err.count("\n")) == (2, 1), (args, err)
        assert err.startswith("error: ") and "any.safetensors: an arbitrary-style network: give it a painting (--style-image" in err
    code, err = stylize(root, monkeypatch, capsys, "--model", "checkpoints/gallery.safetensors", "--style-image",
                        str(paintings / "b1.jpg"), "--devices", "1", str(photos), "-o", "lone")
    assert code == 2 and err == ("error: checkpoints/gallery.safetensors: this model has its own styles; "
                                 "--style-image needs an arbitrary-style model\n")
    assert not [p for p in root.iterdir() if p.name.startswith("lone") and p != photo]  # nothing written, no folder made


def test_evaluate_scores_the_held_out_paintings_beside_another_tool(trained: tuple, capsys: pytest.CaptureFixture) -> None:
    from fast_style.evaluate import main as evaluate
    from fast_style.images import find_images

    root, photos, paintings = trained
    other = root / "identity"  # a "tool" that returns the photo: no content loss, all style loss
    for painting in ("b1", "d1"):
        for photo in find_images(photos):
            target = other / painting / photo.relative_to(photos).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.open(photo).convert("RGB").resize((32, 32)).save(target)  # any size: scaled to the photo's
    model = root / "checkpoints" / "any.safetensors"
    args = ["--model", str(model), "--photos", str(photos), "--size", "32", "--vgg-weights", "random"]
    assert evaluate([*args, "--against", str(other), "--json"]) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    assert list(report["styles"]) == ["b1", "d1"] and report["photos"] == 5  # the held-out artists' paintings
    row = report["styles"]["b1"]
    assert row["against"]["content"] < 0.05 * row["model"]["content"] and row["against_ratio"] > 0
    assert evaluate([*args, "--paintings", str(paintings), "--max-paintings", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["a1", "a2", "b1", "mean"]
    (root / "empty").mkdir()
    assert evaluate([*args, "--against", str(root / "empty")]) == 1
    assert "no picture of this pair in --against" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no such folder: refused before anything loads
        evaluate([*args, "--against", str(root / "nowhere")])
    assert capsys.readouterr().err.strip().endswith(f"--against {root / 'nowhere'}: folder not found")
