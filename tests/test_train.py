"""Training end to end through the `train` entry point, with random VGG weights for speed."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import as_stored, make_photo, metadata, record, run_train, run_train_many, scalars
from fast_style.model_file import load_model, read_model
from fast_style.styles import STYLES_DIR

FAST = [
    "style=wave",
    "style.size=64",
    "loss.vgg_weights=random",
    "model.channels=8",
    "model.res_blocks=1",
    "data.image_size=32",
    "data.num_workers=0",
    "batch_size=2",
    "trainer.max_epochs=-1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
]


def train(cwd: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_train(cwd, *FAST, *overrides, check=check)


def test_fast_dev_run_smoke(tmp_path: Path, photo_dir: Path) -> None:
    result = train(tmp_path, f"data.root={photo_dir}", "trainer=debug")
    assert "Running in `fast_dev_run` mode" in result.stderr + result.stdout
    assert not (tmp_path / "checkpoints").exists()


def test_training_logs_checkpoints_exports_and_resumes(tmp_path: Path, photo_dir: Path) -> None:
    train(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=30", "optim.lr=1e-2", "preview.every_n_steps=10",
          "checkpoint_every_n_steps=10", "trainer.log_every_n_steps=1")
    [run] = list((tmp_path / "runs" / "wave").iterdir())

    # TensorBoard: every loss term as a scalar, and preview grids as images.
    [events] = list((run / "tensorboard").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert {"loss/content", "loss/style", "loss/tv", "loss/total", "img_per_s"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Images("preview")] == [1, 10, 20, 30]  # the end of training (step 30) once
    totals = [e.value for e in acc.Scalars("loss/total")]
    assert sum(totals[-3:]) < 0.5 * sum(totals[:3]), totals

    # A Lightning checkpoint without the frozen VGG.
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 30
    assert not [k for k in ckpt["state_dict"] if not k.startswith("transformer.")]

    # The exported model, with its config and training summary.
    exported = tmp_path / "checkpoints" / "wave.safetensors"
    header = metadata(exported)
    assert (header["format_version"], header["architecture"]) == (1, "johnson")
    assert header["config"] == {"channels": 8, "res_blocks": 1, "output_scale": 1 / 255, "layout": "johnson"}
    info = header["record"]
    assert info["style"] == "wave" and info["steps"] == 30 and info["images_seen"] == 60
    assert info["style_image"] == "wave.jpg"
    # The checkpoint tells evaluate the same painting and loss weights as the export does.
    ckpt = read_model(run / "checkpoints" / "last.ckpt").record
    assert (ckpt.style_image, ckpt.style_size, ckpt.weights) == ("wave.jpg", info["style_size"], info["weights"])
    assert set(info["final_losses"]) == {"content", "style", "tv", "total"}
    before = exported.read_bytes()

    # Resume: the step count goes on from the checkpoint; the exported model is not replaced.
    # Its progress, into a pipe as into a log file, comes in lines, not as a bar's \r-joined updates.
    result = run_train(tmp_path, *[a for a in FAST if "progress_bar" not in a], f"data.root={photo_dir}",
                       "trainer.max_steps=34", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                       "hydra.run.dir=runs/resumed")  # not timestamped: the first run's second may still be this one
    assert "exists; kept it" in result.stderr + result.stdout
    assert "\r" not in result.stderr + result.stdout
    steps = re.findall(r"step (\d+) of 34, 0:00:\d\d(, about \d+:\d\d:\d\d left)?, loss/total [\d.e+]+",
                       result.stderr + result.stdout)
    # the first step, then a minute apart, and the last; the time left at this run's pace, but at the end
    assert [(step, bool(left)) for step, left in steps] == [("31", True), ("34", False)], result.stderr + result.stdout
    assert "LeafSpec" not in result.stderr + result.stdout and "litlogger" not in result.stderr + result.stdout
    assert exported.read_bytes() == before
    # Exported into the run's own folder: one file, no warning about keeping it.
    result = train(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=1", "hydra.run.dir=here", "export_dir=here")
    assert (tmp_path / "here" / "wave.safetensors").is_file()
    assert "kept it" not in result.stderr + result.stdout
    assert record(tmp_path / "runs" / "resumed" / "wave.safetensors")["steps"] == 34


def test_missing_photo_folder_fails_at_start_with_one_line(tmp_path: Path) -> None:
    result = train(tmp_path, f"data.root={tmp_path / 'nowhere'}", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (f"error: {tmp_path / 'nowhere'}: training photo folder "
                                                       "not found (data.root=DIR: any folder of photos; MS-COCO in data/README.md)")


def val_photos(folder: Path, count: int = 3) -> Path:
    """Photos never trained on, of other sizes than the training crops."""
    for i, size in enumerate([(50, 40), (36, 60), (64, 64), (45, 45)][:count]):
        make_photo(folder / f"v{i}.png", size, seed=20 + i)
    return folder


def evaluated_total(model: Path, photos: Path) -> float:
    from fast_style.evaluate import evaluate

    return evaluate(model, photos, size=32, vgg_weights="random", progress=False)["model"]["total"]


def test_validation_scores_photos_never_trained_on_as_evaluate_does(tmp_path: Path, photo_dir: Path) -> None:
    held = val_photos(tmp_path / "held")
    first = train(tmp_path, f"data.root={photo_dir}", f"data.val_root={held}", "trainer.max_steps=5",
                  "trainer.val_check_interval=2", "optim.lr=1e-2")
    [run] = list((tmp_path / "runs" / "wave").iterdir())
    # Before the first step, every val_check_interval steps, and the exported network at the end.
    totals = scalars(run, "val/total")
    assert [step for step, _ in totals] == [0, 2, 4, 5]
    assert totals[-1][1] < totals[0][1], totals
    assert {tag for tag in ("val/content", "val/style", "val/tv") if scalars(run, tag)} == {"val/content", "val/style", "val/tv"}
    lines = re.findall(r"val at step (\d+): total [\d.e+]+ \(content [\d.e+]+, style [\d.e+]+\), 3 photo\(s\) x 1 painting\(s\)",
                       first.stderr + first.stdout)
    assert lines == ["0", "2", "4", "5"]
    # The model file keeps the last: the number `evaluate` prints for that folder and size.
    exported = tmp_path / "checkpoints" / "wave.safetensors"
    info = record(exported)
    assert info["val_root"] == str(held) and set(info["val_losses"]) == {"content", "style", "tv", "total"}
    assert info["val_losses"]["total"] == pytest.approx(evaluated_total(exported, held), rel=1e-4)
    # A resumed run does not validate its first step again, nor twice at its last. Step 5 is in
    # the middle of an epoch (2 steps), which the checkpoint keeps: no Lightning warning about it,
    # nor about the run's new folder.
    result = train(tmp_path, f"data.root={photo_dir}", f"data.val_root={held}", "trainer.max_steps=8",
                   "trainer.val_check_interval=2", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                   "hydra.run.dir=runs/resumed")  # its own folder: a timestamped one may be the first run's, in the same second
    assert [step for step, _ in scalars(tmp_path / "runs" / "resumed", "val/total")] == [6, 8]
    assert "not resumable" not in result.stderr and "dirpath has changed" not in result.stderr, result.stderr


def test_without_val_root_nothing_is_validated(tmp_path: Path, photo_dir: Path) -> None:
    train(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=2", "trainer.val_check_interval=1",
          "trainer.log_every_n_steps=1")
    [run] = list((tmp_path / "runs" / "wave").iterdir())
    assert scalars(run, "val/total") == [] and scalars(run, "loss/total")
    assert "val_losses" not in record(tmp_path / "checkpoints" / "wave.safetensors")


def test_validation_photos_bad_missing_or_trained_on_are_said_in_one_line(tmp_path: Path, photo_dir: Path) -> None:
    held = val_photos(tmp_path / "held")
    (held / "broken.jpg").write_bytes(b"not a jpeg")
    result = train(tmp_path, f"data.root={photo_dir}", f"data.val_root={held}", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (f"error: {held / 'broken.jpg'}: cannot be read as an image "
                                                       f"(data.val_root); move it out of {held}")
    assert not list((tmp_path / "runs").glob("*/*/checkpoints/*"))
    # Photos that are training photos too: said, once.
    result = train(tmp_path, f"data.root={photo_dir}", f"data.val_root={photo_dir / 'nested'}", "trainer=debug")
    assert (f"1 of the 1 photos of data.val_root ({photo_dir / 'nested'}) are training photos too: val/ is not held out"
            in result.stdout + result.stderr)
    result = train(tmp_path, f"data.root={photo_dir}", f"data.val_root={tmp_path / 'nowhere'}", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (f"error: {tmp_path / 'nowhere'}: no validation photos there "
                                                       "(data.val_root: a folder of photos never trained on, or null)")


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tmp_path: Path, photo_dir: Path) -> None:
    # In a process of its own: Lightning's DDP launcher starts the second one from sys.argv.
    held = val_photos(tmp_path / "held")  # three photos for two processes: none may be scored twice
    overrides = [*FAST, f"data.root={photo_dir}", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                 "trainer.max_steps=2", f"data.val_root={held}"]
    result = subprocess.run([sys.executable, "-m", "fast_style.train", *overrides], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    exported = tmp_path / "checkpoints" / "wave.safetensors"
    info = record(exported)
    assert info["steps"] == 2 and info["images_seen"] == 2 * 2 * 2  # steps x batch x processes
    assert info["val_losses"]["total"] == pytest.approx(evaluated_total(exported, held), rel=1e-4)
    assert (result.stdout + result.stderr).count("3 photo(s) x 1 painting(s)") == 2  # at the start and the end, once each
    assert (result.stdout + result.stderr).count("`Trainer.fit` stopped") == 1  # Lightning's lines, once: not Hydra's too


def train_in_turn(cwd: Path, *runs: list[str]) -> list[subprocess.CompletedProcess]:
    """Several runs one after the other in one process (one import of torch and Lightning)."""
    return run_train_many([(cwd, [*FAST, *overrides]) for overrides in runs])


def test_init_weights_continues_an_exported_model(tmp_path: Path, photo_dir: Path) -> None:
    first = tmp_path / "checkpoints" / "wave.safetensors"
    second = tmp_path / "runs" / "second" / "checkpoints" / "last.ckpt"
    once, again, wrong, onwards, resumed = train_in_turn(
        tmp_path,
        [f"data.root={photo_dir}", "trainer.max_steps=3"],
        [f"data.root={photo_dir}", "trainer.max_steps=2", f"init_weights={first}", "overwrite_export=true",
         "hydra.run.dir=runs/second"],
        [f"data.root={photo_dir}", "model.channels=16", f"init_weights={first}"],
        [f"data.root={photo_dir}", "trainer.max_steps=1", f"init_weights={second}", "export_dir=third"],
        [f"data.root={photo_dir}", "trainer.max_steps=3", f"ckpt_path={second}", "export_dir=resumed"],  # init_weights left out
    )
    assert once.returncode == again.returncode == onwards.returncode == resumed.returncode == 0, \
        once.stderr + again.stderr + onwards.stderr + resumed.stderr
    info = record(first)
    assert info["steps"] == 5 and info["images_seen"] == 10 and info["init_weights"] == str(first)
    assert wrong.returncode == 1 and "differs from this run's" in wrong.stderr.strip().splitlines()[-1]
    # A checkpoint counts the training its run started from, as the run's export does; so do a
    # model trained on from it and a resume of it without init_weights: 5 steps, then one more.
    saved = load_model(second)[1]
    assert (saved.steps, saved.images_seen) == (5, 10)
    for folder in ("third", "resumed"):
        info = record(tmp_path / folder / "wave.safetensors")
        assert (info["steps"], info["images_seen"]) == (6, 12), folder


def test_a_shallower_network_starts_from_a_deeper_ones_first_residual_blocks(tmp_path: Path) -> None:
    """The way to a faster network without training from scratch (docs/realtime.md, session 21)."""
    from fast_style.config import LossConfig
    from fast_style.model_file import ModelRecord, save_model
    from fast_style.module import StyleTransferModule
    from fast_style.fit import warm_start
    from fast_style.transformer import TransformerConfig, TransformerNet

    deep = tmp_path / "deep.safetensors"
    save_model(deep, TransformerNet(TransformerConfig(channels=8, res_blocks=3, layout="realtime8")),
               ModelRecord(style="wave", steps=7))
    style = {"name": "wave", "image": "wave.jpg", "size": 32, "weight": 1e10}
    loss = {**LossConfig(vgg_weights="random").__dict__}

    def module(**model: int | str) -> StyleTransferModule:
        return StyleTransferModule({"channels": 8, "layout": "realtime8", **model}, style, loss, {"lr": 1e-3})

    shallow = module(res_blocks=2)
    assert warm_start(shallow, str(deep)).steps == 7
    weights = load_model(deep)[0].state_dict()
    assert "residuals.2.conv1.1.weight" in weights and len(shallow.transformer.state_dict()) < len(weights)
    assert all(torch.equal(v, weights[k]) for k, v in shallow.transformer.state_dict().items())
    for other in ({"res_blocks": 4}, {"res_blocks": 2, "channels": 16}, {"res_blocks": 2, "layout": "realtime"}):
        with pytest.raises(ValueError, match="differs from this run's"):
            warm_start(module(**other), str(deep))


def test_stability_term_is_logged_and_summarised(tmp_path: Path, photo_dir: Path) -> None:
    result = train(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=10", "stability.weight=1e4",
                   "stability.shift=3", "stability.zoom=0.05")
    info = record(tmp_path / "checkpoints" / "wave.safetensors")
    assert info["final_losses"]["stability"] > 0 and info["stability"]["zoom"] == 0.05
    # Logged every log_every_n_steps=10 steps though an epoch has 2: no warning that it will not be.
    [run] = list((tmp_path / "runs" / "wave").iterdir())
    assert [step for step, _ in scalars(run, "loss/stability")] == [9]
    assert "smaller than the logging interval" not in result.stderr


def test_a_moving_average_of_the_weights_is_exported_and_resumed(tmp_path: Path, photo_dir: Path) -> None:
    common = [f"data.root={photo_dir}", "optim.lr=1e-2", "overwrite_export=true"]
    exported = tmp_path / "checkpoints" / "wave.safetensors"
    train(tmp_path, *common, "trainer.max_steps=4", "optim.ema=0.5")
    [last] = tmp_path.glob("runs/wave/*/checkpoints/last.ckpt")
    state = torch.load(last, weights_only=True)["state_dict"]
    assert state["ema.n_averaged"] == 4
    average = {k.removeprefix("ema.module."): v for k, v in state.items() if k.startswith("ema.module.")}
    current = {k.removeprefix("transformer."): v for k, v in state.items() if k.startswith("transformer.")}
    assert average.keys() == current.keys() and any(not torch.equal(average[k], current[k]) for k in current)
    net, _ = load_model(exported)
    assert all(torch.equal(v, average[k].half().float()) for k, v in net.state_dict().items())  # the average ships (float16)
    assert all(torch.equal(v, average[k]) for k, v in load_model(last)[0].state_dict().items())  # and what evaluate reads

    resumed, plain, wrong = train_in_turn(  # run folders of their own: two short runs can start in one second
        tmp_path,
        [*common, "trainer.max_steps=6", "optim.ema=0.5", f"ckpt_path={last}", "hydra.run.dir=resumed"],
        [*common, "trainer.max_steps=5", f"ckpt_path={last}", "hydra.run.dir=plain"],  # the average dropped
        [*common, "optim.ema=1.5"],
    )
    assert resumed.returncode == plain.returncode == 0, resumed.stderr[-2000:] + plain.stderr[-2000:]
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["ema.n_averaged"] == 6
    state = torch.load(tmp_path / "plain" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state and not [k for k in state if not k.startswith("transformer.")]
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines()[-1] == "error: optim.ema must be between 0 and 1 (e.g. 0.995), or null, not 1.5"


@pytest.mark.slow  # compiles the network and the VGG losses, forward and backward
def test_compiled_training_writes_the_same_files(tmp_path: Path, photo_dir: Path) -> None:
    common = [f"data.root={photo_dir}", "stability.weight=1e4", "stability.shift=3"]  # the copy changes size
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    train(tmp_path, *common, "trainer.max_steps=3", "compile=true", "preview.every_n_steps=2")
    # The network and the loss, once each: the previews (steps 1, 2 and the end) run eagerly,
    # where each no-grad call compiled the network again (11 s of this test on an AVX2 CPU).
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2
    [last] = tmp_path.glob("runs/wave/*/checkpoints/last.ckpt")
    keys = torch.load(last, weights_only=True)["state_dict"]
    assert keys and all(k.startswith("transformer.") and "_orig_mod" not in k for k in keys)
    train(tmp_path, *common, "trainer.max_steps=5", f"ckpt_path={last}", "overwrite_export=true")  # resumed uncompiled
    net, info = load_model(tmp_path / "checkpoints" / "wave.safetensors")
    assert info.steps == 5 and net(torch.rand(1, 3, 20, 28)).shape == (1, 3, 20, 28)


def test_max_epochs_coming_before_max_steps_is_said(tmp_path: Path, photo_dir: Path) -> None:
    """The default trainer.max_epochs=2 ends a run on a small folder long before trainer.max_steps."""
    result = train(tmp_path, f"data.root={photo_dir}", "trainer.max_epochs=2", "trainer.max_steps=50",
                   "trainer.enable_progress_bar=true")  # into a pipe: lines
    [line] = [x for x in (result.stdout + result.stderr).splitlines() if "came first" in x]
    steps = record(tmp_path / "checkpoints" / "wave.safetensors")["steps"]
    # The progress lines count to where the run ends (they said "of 50", and without max_steps no total)
    assert re.search(rf"step 1 of {steps}, \d+:\d\d:\d\d, about \d+:\d\d:\d\d left, ", result.stderr + result.stdout)
    assert line.endswith(f"stopped at step {steps} of trainer.max_steps=50: trainer.max_epochs=2 came first "
                         f"({steps // 2} steps an epoch); trainer.max_epochs=-1 lets the steps decide")


def test_a_sweep_trains_one_network_per_style(tmp_path: Path, photo_dir: Path) -> None:
    """`train -m style=a,b`: Hydra's multirun, one run and one export per style."""
    settings = [o for o in FAST if not o.startswith("style=")]
    run_train(tmp_path, "-m", "style=starry_night,wave", *settings, f"data.root={photo_dir}", "trainer.max_steps=2")
    assert record(tmp_path / "checkpoints" / "starry_night.safetensors")["style_image"] == "starry_night.jpg"
    assert record(tmp_path / "checkpoints" / "wave.safetensors")["steps"] == 2
    assert sorted(p.name for p in next((tmp_path / "runs" / "multirun").iterdir()).iterdir() if p.is_dir()) == [
        "starry_night", "wave"]


def test_a_gallery_trains_every_painting_and_can_start_from_a_single_style_network(tmp_path: Path, photo_dir: Path) -> None:
    # FAST's style=wave first, then style=gallery: the later choice wins, as on a command line.
    gallery = ["style=gallery", "style.images=[wave.jpg,the_scream.jpg,udnie.jpg]", f"data.root={photo_dir}"]
    runs = train_in_turn(
        tmp_path,
        [*gallery, "trainer.max_steps=6"],
        [f"data.root={photo_dir}", "trainer.max_steps=1", "export_dir=single"],
        [*gallery, "trainer.max_steps=1", "init_weights=single/wave.safetensors", "export_dir=from_wave"],
    )
    assert [r.returncode for r in runs] == [0, 0, 0], runs[-1].stderr
    header = metadata(tmp_path / "checkpoints" / "gallery.safetensors")
    assert header["architecture"] == "gallery" and header["config"]["styles"] == ["wave", "the_scream", "udnie"]
    assert header["record"]["style_images"] == ["wave.jpg", "the_scream.jpg", "udnie.jpg"]
    net, _ = load_model(tmp_path / "checkpoints" / "gallery.safetensors")
    assert (net.scales - 1).abs().sum(dim=1).gt(0).sum() >= 2  # several paintings learned their own norms
    # From a single-style network of the same body: every painting starts from its norms.
    assert record(tmp_path / "from_wave" / "gallery.safetensors")["steps"] == 2


def test_a_new_painting_joins_a_gallery_without_changing_the_others(tmp_path: Path, photo_dir: Path) -> None:
    """train style.image=NEW init_weights=GALLERY: only the new painting's norm parameters learn."""
    runs = train_in_turn(
        tmp_path,
        ["style=gallery", "style.images=[wave.jpg,the_scream.jpg]", f"data.root={photo_dir}", "trainer.max_steps=2"],
        ["style.name=shipwreck", "style.image=shipwreck.jpg", f"data.root={photo_dir}",
         "init_weights=checkpoints/gallery.safetensors", "trainer.max_steps=3", "optim.lr=1e-2"],
    )
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    old, _ = load_model(tmp_path / "checkpoints" / "gallery.safetensors")
    new, new_record = load_model(tmp_path / "checkpoints" / "shipwreck.safetensors")
    assert new.styles == ("wave", "the_scream", "shipwreck")
    assert new_record.style_images == ["wave.jpg", "the_scream.jpg", "shipwreck.jpg"] and new_record.steps == 5
    assert all(torch.equal(a, b) for a, b in zip(old.body.state_dict().values(), new.body.state_dict().values()))
    assert torch.equal(new.scales[:2], old.scales) and torch.equal(new.shifts[:2], old.shifts)
    assert not torch.allclose(new.shifts[2], old.shifts.mean(0))  # the new painting learned from its start


def test_a_painting_of_a_gallery_gets_its_own_network_from_its_norms(tmp_path: Path, photo_dir: Path) -> None:
    """train style=NAME init_weights=GALLERY where NAME is in it: new_painting=network starts from
    that painting's norms; the ways that join a gallery say in one line that it is there already."""
    again = [f"data.root={photo_dir}", "init_weights=checkpoints/gallery.safetensors", "style.name=wave"]
    runs = train_in_turn(
        tmp_path,
        ["style=gallery", "style.images=[the_scream.jpg,wave.jpg,udnie.jpg]", f"data.root={photo_dir}",
         "trainer.max_steps=6", "optim.lr=1e-2", "seed=3"],  # each painting learns norms of its own
        [*again, "new_painting=network", "trainer.max_steps=1", "optim.lr=1e-9"],  # one step that moves nothing: the start
        [*again, "export_dir=wrong"],
        [*again, "new_painting=rehearse", "export_dir=wrong"],
    )
    assert [r.returncode for r in runs] == [0, 0, 1, 1], runs[1].stderr
    assert [r.stderr.strip().splitlines()[-1] for r in runs[2:]] == 2 * [
        "error: checkpoints/gallery.safetensors: wave is one of its paintings already; new_painting=network gives it "
        "a network of its own, started from it, and style=gallery trains the whole gallery"]
    gallery, _ = load_model(tmp_path / "checkpoints" / "gallery.safetensors")
    own, own_record = load_model(tmp_path / "checkpoints" / "wave.safetensors")
    assert own_record.style_images is None and own_record.steps == 7 and not (tmp_path / "wrong").exists()
    assert not torch.allclose(gallery.shifts[1], gallery.shifts.mean(0), atol=1e-2)
    start = as_stored(gallery.single(gallery.one_hot(1))).state_dict()
    assert all(torch.allclose(v, start[k], atol=1e-3) for k, v in own.state_dict().items())


def test_a_new_painting_can_join_a_gallery_with_the_shared_network_learning(tmp_path: Path, photo_dir: Path) -> None:
    """new_painting=rehearse: the new painting joins the gallery, the shared network learns too, and
    the gallery's paintings are rehearsed (their norms learn as well), found where recorded or in
    style.paintings; one line when they are nowhere."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "ours.jpg").write_bytes((STYLES_DIR / "udnie.jpg").read_bytes())
    new = ["style.name=shipwreck", "style.image=shipwreck.jpg", f"data.root={photo_dir}",
           "init_weights=checkpoints/gallery.safetensors", "new_painting=rehearse", "optim.lr=1e-2", "seed=1"]
    runs = train_in_turn(
        tmp_path,
        ["style=gallery", "style.images=[wave.jpg,mine/ours.jpg]", f"data.root={photo_dir}", "trainer.max_steps=2"],
        [*new, "trainer.max_steps=6", "export_dir=joined"],
        [*new, "trainer.max_steps=1", "style.paintings=elsewhere", "export_dir=moved"],
    )
    (tmp_path / "mine" / "ours.jpg").rename(tmp_path / "ours.jpg")
    runs += train_in_turn(tmp_path, [*new, "trainer.max_steps=1", f"style.paintings={tmp_path}", "export_dir=found"],
                          [*new, "trainer.max_steps=1", "export_dir=lost"])
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 1], runs[-1].stderr
    assert runs[-1].stderr.strip().splitlines()[-1] == (
        "error: checkpoints/gallery.safetensors: its painting mine/ours.jpg is not found; new_painting=rehearse "
        "needs the gallery's paintings: give their folder as style.paintings=DIR")
    old, _ = load_model(tmp_path / "checkpoints" / "gallery.safetensors")
    new_net, new_record = load_model(tmp_path / "joined" / "shipwreck.safetensors")
    assert new_net.styles == ("wave", "ours", "shipwreck") and new_record.steps == 8
    assert new_record.style_images == ["wave.jpg", "mine/ours.jpg", "shipwreck.jpg"]
    # Unlike new_painting=norms, the convolutions learn, and so do the paintings rehearsed.
    assert not torch.allclose(new_net.body.state_dict()["encoder.0.0.1.weight"], old.body.state_dict()["encoder.0.0.1.weight"],
                              atol=1e-3)
    assert not torch.allclose(new_net.shifts[:2], old.shifts, atol=1e-3)
    assert load_model(tmp_path / "found" / "shipwreck.safetensors")[0].styles == new_net.styles


def test_a_new_painting_can_train_its_own_network_from_a_gallerys(tmp_path: Path, photo_dir: Path) -> None:
    """new_painting=network: a single-style network of the new painting, every weight starting from
    the gallery's convolutions and the mean of its paintings' norms."""
    new = ["style.name=shipwreck", "style.image=shipwreck.jpg", f"data.root={photo_dir}",
           "init_weights=checkpoints/gallery.safetensors", "new_painting=network"]
    runs = train_in_turn(
        tmp_path,
        ["style=gallery", "style.images=[wave.jpg,the_scream.jpg]", f"data.root={photo_dir}", "trainer.max_steps=2"],
        [*new, "trainer.max_steps=1", "optim.lr=1e-9"],  # one step that moves nothing measurable: the start
        [*new, "trainer.max_steps=2", "optim.lr=1e-2", "export_dir=learned"],
        [*new, "new_painting=all", "export_dir=wrong"],
    )
    assert [r.returncode for r in runs] == [0, 0, 0, 1], runs[-2].stderr
    assert runs[-1].stderr.strip().splitlines()[-1] == "error: new_painting must be norms, rehearse or network, not all"
    gallery, _ = load_model(tmp_path / "checkpoints" / "gallery.safetensors")
    start, start_record = load_model(tmp_path / "checkpoints" / "shipwreck.safetensors")
    learned, _ = load_model(tmp_path / "learned" / "shipwreck.safetensors")
    assert read_model(tmp_path / "learned" / "shipwreck.safetensors").architecture == "johnson"
    assert start_record.style_image == "shipwreck.jpg" and start_record.style_images is None and start_record.steps == 3
    mean = as_stored(gallery.single(torch.full((2,), 0.5))).state_dict()
    assert all(torch.allclose(v, mean[k], atol=1e-3) for k, v in start.state_dict().items())
    # Unlike new_painting=norms, the convolutions learn too.
    assert not torch.allclose(learned.state_dict()["encoder.0.0.1.weight"], mean["encoder.0.0.1.weight"], atol=1e-3)
