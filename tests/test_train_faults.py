"""Bad training data, bad settings, NaNs, kill -9 and Ctrl-C: clear lines and nothing lost."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image

from conftest import (answers_in_a_fresh_process, make_photo, make_photo_dir, record, run_train_many, side_by_side,
                      stop_group)
from fast_style.data import PhotoDataModule
from fast_style.styles import style_image_path
from fast_style.train import CONF_DIR
from test_train import FAST, train


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear")
        time.sleep(0.2)


def _default_sigint() -> None:
    # A shell runs background jobs (`.ci/run &`) with SIGINT ignored, and children inherit that:
    # Ctrl-C must reach the training process as it does in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cwd: Path, *overrides: str, new_group: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fast_style.train", *FAST, *overrides], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
                            start_new_session=new_group)


def test_unreadable_photos_are_skipped_and_counted(tmp_path: Path, photo_dir: Path) -> None:
    (photo_dir / "empty.jpg").touch()
    (photo_dir / "text.jpg").write_text("not a photo")
    good = (photo_dir / "p0.jpg").read_bytes()
    (photo_dir / "truncated.jpg").write_bytes(good[: len(good) * 4 // 5])  # header intact, data cut
    result = train(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=8", "batch_size=3")
    log = result.stdout + result.stderr
    assert "skipping 2 unreadable file(s)" in log and "empty.jpg" in log and "text.jpg" in log
    assert "skipping unreadable photo " in log and "truncated.jpg" in log
    assert record(tmp_path / "checkpoints" / "wave.safetensors")["steps"] == 8


def test_a_strip_is_cut_to_a_window_before_its_scaling(tmp_path: Path) -> None:
    """A 20000x2 banner was scaled by its short side to 655 megapixels (2.8 GB) for one 256-pixel crop."""
    from fast_style.data import PhotoFolder, window

    strip = torch.arange(20000).expand(3, 2, 20000)  # (C, H, W): each column its number
    cuts = [window(strip) for _ in range(20)]
    assert {c.shape for c in cuts} == {(3, 2, 8)}
    assert all(torch.equal(c[0, 0], torch.arange(int(c[0, 0, 0]), int(c[0, 0, 0]) + 8)) for c in cuts)
    assert len({int(c[0, 0, 0]) for c in cuts}) > 10  # a random part, not always the first
    assert window(strip.transpose(1, 2)).shape == (3, 8, 2)
    photo = torch.rand(3, 100, 400)
    assert window(photo) is photo  # within 4:1: the whole photo
    Image.new("RGB", (20000, 2), "red").save(tmp_path / "banner.png")
    assert PhotoFolder(tmp_path, image_size=64)[0].shape == (3, 64, 64)


def test_a_large_jpeg_is_decoded_at_a_scale_its_training_crop_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 12-megapixel phone photo was decoded whole for each 256-pixel crop: 205 ms a crop, 26 at a DCT scale."""
    from fast_style.data import PhotoFolder
    from fast_style.images import open_image

    photo = make_photo(tmp_path / "photos" / "big.jpg", (2400, 1800))
    assert open_image(photo, short_side=128).size == (300, 225)  # 1/8: the short side still 128 or more
    assert open_image(photo, short_side=1800).size == (2400, 1800)
    decoded = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or original(self))
    torch.manual_seed(0)
    crop = PhotoFolder(tmp_path / "photos", image_size=64)[0]
    assert crop.shape == (3, 64, 64) and max(decoded) == (300, 225)  # twice the crop's side, at least


def test_help_and_a_refused_command_line_answer_without_importing_torch(tmp_path: Path) -> None:
    """torch and Lightning take 3-10 s to import here: `train --help` took 10 s, a bad number as long."""
    main = "from fast_style.train import main\ndef call(argv):\n    sys.argv[1:] = argv\n    main()"
    argvs = [["--help"], ["style=nope"], ["batch_size=0"]]
    lines, result = answers_in_a_fresh_process(main, argvs, tmp_path, ("torch", "lightning", "fast_style.fit"))
    assert lines == ["0", "1", "1", "[]"], result.stdout[-500:] + result.stderr[-2000:]
    assert result.stdout.startswith("train: fit one style network") and "docs/training.md#configuration" in result.stdout
    styles = sorted(p.stem for p in (CONF_DIR / "style").glob("*.yaml"))  # not the schema they extend, `style: base`
    assert f"\nstyle: {', '.join(styles)}\n" in result.stdout and "base" not in styles
    assert "error: unknown style 'nope'" in result.stderr and "error: batch_size must be at least 1, not 0" in result.stderr


BAD_SETTINGS = [
    (["data.root={photos}/p0.jpg"], "error: {photos}/p0.jpg: a file, not a folder (data.root=DIR: any folder of photos; "),  # "not found"
    (["data.root={photos}", "data.val_root={photos}/p0.jpg"], "error: {photos}/p0.jpg: a file, not a folder (data.val_root: "),
    (["data.root={empty}"], "error: {empty}: no readable .jpg/.jpeg/.jfif/.png/.webp/.bmp/.tif/.tiff/.heic/.heif/.avif images in this folder"),
    (["data.root={photos}", "style.image={tmp}/nope.jpg"], "error: {tmp}/nope.jpg: style image not found (bundled styles: "),
    (["data.root={photos}", "style.image={photos}/notes.txt", "style.name=notes"], "error: {photos}/notes.txt: style image cannot be read ("),
    # named after the default style (here wave), shadowing the shipped model of that name
    # (trainer.max_steps: a regression trains two steps and fails, instead of running on)
    (["data.root={photos}", "trainer.max_steps=2", "style.image={photos}/p0.jpg"],
     "error: style.image={photos}/p0.jpg would train a model named wave (exported as wave.safetensors) on another painting; name it: style.name=p0"),
    (["data.root={photos}", "trainer.max_steps=2", "style.image={photos}/p0.jpg", "style.name=../p0"],
     "error: style.name=../p0 is not a plain name (letters, digits, _ . -): it names the model's files"),
    (["data.root={photos}", "trainer.max_steps=2", "style.image={photos}/p0.jpg", f"style.name={'p' * 244}"],  # failed at the export
     "error: style.name is 244 bytes long; it names the model's files, which take 243 at most"),
    (["data.root={photos}", "trainer.max_steps=2", "stability.weight=-1e7"], "error: stability.weight must be 0 or more, not -10000000.0"),
    (["data.root={photos}", "trainer.max_steps=2", "style.size=0"], "error: style.size must be at least 1, or null for the painting's own size, not 0"),
    (["data.root={photos}", "style=nonesuch"], "error: unknown style 'nonesuch' (available: any, composition_vii, gallery, shipwreck, "),
    (["data.root={photos}", "style=Wave"], "error: unknown style 'Wave' (did you mean wave? available: any, composition_vii, "),
    (["data.root={photos}", "-m", "style=wave,nope"], "error: unknown style 'nope' (available: "),  # in a sweep
    # A mistyped setting: Hydra's six lines advised `+trainer.max_step=5`, then a traceback from Lightning.
    (["data.root={photos}", "trainer.max_step=5"], ("error: trainer.max_step: no such setting (did you mean trainer.max_steps?); "
                                                    "Lightning's other Trainer arguments go in as +trainer.NAME=VALUE")),
    (["data.root={photos}", "+trainer.max_step=5"],
     "error: trainer.max_step: not an argument of Lightning's Trainer (did you mean trainer.max_steps?)"),
    (["data.root={photos}", "-m", "style=wave,udnie", "optim.lrr=1e-3"], "error: optim.lrr: no such setting (did you mean optim.lr?)"),
    (["data.root={photos}", "model=big"], "error: model=big: no such model (the models: default, realtime, realtime8, small)"),
    (["data.root"], "error: data.root: not NAME=VALUE (missing EQUAL at '<EOF>')"),
    # Hydra's report was cut to a line of spaces and a caret, or to its link alone
    (["data.root={photos}", "style.name=café"], "error: style.name=café: not NAME=VALUE ('é' is taken in a quoted value only: KEY='VALUE')"),
    (["data.root={photos}", "style.name=a=b"], "error: style.name=a=b: not NAME=VALUE (mismatched input '=' expecting <EOF>)"),
    (["data.root={photos}", "data.image_size=7"],  # a traceback from VGG's pooling
     "error: data.image_size must be a whole number of pixels, 8 or more (VGG-16's relu4_3 comes after three 2x poolings), not 7"),
    (["data.root={photos}", "style.size=6"], "error: {style}: style image is 6x3 at style.size=6; VGG-16's style layers need 8 "),
    (["data.root={photos}", "style.image={clear}", "style.name=clear"], "error: {clear}: the painting is transparent all over"),
    (["data.root={photos}", "seed=1.5"], "error: seed must be a whole number from 0 to 2**32 - 1, not 1.5"),  # it hung
    (["data.root={photos}", "data.val_root={strips}"],  # VGG's error at the first validation, naming no photo
     "error: {strips}/strip.png: 300x4 at data.image_size=32 is too small for VGG-16's losses (8 pixels or more a side)"),
    (["data.root={photos}", "batch_size=0"], "error: batch_size must be at least 1, not 0"),
    (["data.root={photos}", "loss.content_layer=relu9_9"], "error: unknown VGG layer 'relu9_9' (layers: relu1_2, "),
    (["data.root={photos}", "trainer.max_steps=abc"],
     "error: trainer.max_steps must be a whole number, 1 or more, or -1 for no limit, not abc"),
    (["data.root={photos}", "trainer.max_steps=0"],  # it exported the untrained network under the style's name
     "error: trainer.max_steps must be a whole number, 1 or more, or -1 for no limit, not 0"),
    (["data.root={photos}", "trainer.max_epochs=0"],
     "error: trainer.max_epochs must be a whole number, 1 or more, or -1 for no limit, not 0"),
    (["data.root={photos}", "trainer.val_check_interval=0.5"],
     "error: trainer.val_check_interval must be a whole number of steps, at least 1, not 0.5"),
    (["data.root={photos}", "style=any", "style.paintings={tmp}/nope"],  # the default is this repository's ../shared
     "error: {tmp}/nope: painting folder not found; style.paintings=DIR names the folder of paintings"),
    (["data.root={photos}", "style=gallery", "style.paintings={tmp}/nope"],
     ("error: {tmp}/nope/monet_water_lilies.jpg: style image not found (bundled styles: composition_vii, shipwreck, "
      "starry_night, the_scream, udnie, wave); style.paintings=DIR names the folder of paintings")),
    (["data.root={photos}", "ckpt_path={tmp}/nope.ckpt"], "error: {tmp}/nope.ckpt: checkpoint not found (ckpt_path)"),
    (["data.root={photos}", "ckpt_path={photos}/p0.jpg"], "error: {photos}/p0.jpg: not a checkpoint of a run (ckpt_path resumes "),
    (["data.root={photos}", "ckpt_path={module}"], "error: {module}: not a checkpoint of a run (ckpt_path resumes "),  # a traceback
    (["data.root={photos}", "ckpt_path={weights}"], "error: {weights}: not a checkpoint of a run (ckpt_path resumes "),  # Lightning's
    # "https:/x.org/photos: not found"; a painting's URL ending in wave.jpg trained on the bundled wave.jpg
    (["data.root=https://x.org/photos"], "error: data.root=https://x.org/photos: a URL; fast_style reads files and folders: download it first"),
    (["data.root={photos}", "trainer.max_steps=2", "style.name=w", "-m", "style.image=wave.jpg,https://x.org/wave.jpg"],  # a 2nd run
     "error: style.image=https://x.org/wave.jpg: a URL; fast_style reads files and folders: download it first"),
    # Hydra's globs: a traceback (ConfigLoader is not set), and nothing at all where no run was launched
    (["data.root={photos}", "-m", "style=glob(nope*)"], "error: style=glob(nope*): matches no style (the styles: any, "),
    (["data.root={photos}", "-m", "style.image=glob(*.jpg)"],
     "error: style.image=glob(*.jpg): glob() sweeps a group's options (style=glob(st*)); for style.image, list them: style.image=A,B"),
    (["data.root={photos}", "-m", "style=glob([wa*,th*])", "batch_size=0"], "error: batch_size must be at least 1, not 0"),  # checked
    (["data.root={photos}", "trainer.max_steps=2", "batch_size=1000000000"],  # the kernel's kill, minutes in, without a word
     "error: batch_size=1000000000 at data.image_size=32 takes about "),
    (["data.root={photos}", "trainer.max_steps=2", "hydra.job.chdir=true"],  # "data.root=photos: not found" in the run
     "error: hydra.job.chdir=true: not with train, whose relative paths "),
]


@pytest.mark.parametrize(("batch", "size", "free", "said"), [
    (300, 256, 24.1e9, "batch_size=300 at data.image_size=256 takes about 85 GB on this CPU (0.28 GB an image, "
                       "measured), and 24.1 GB is free: batch_size=73 fits"),  # 80 ran here, 300 was killed
    (2, 4096, 24.1e9, "batch_size=2 at data.image_size=4096 takes about 145 GB on this CPU (72 GB an image, "
                      "measured), and 24.1 GB is free: lower data.image_size"),
    (80, 256, 24.1e9, None), (4, 1024, 24.1e9, None),  # 23.6 and 5.7 GB at most: they ran (22 GB for 1024 px in fp32)
    (300, 256, None, None),  # no /proc/meminfo: not refused
])
def test_a_batch_too_large_for_a_cpus_memory_is_refused(monkeypatch: pytest.MonkeyPatch, batch: int, size: int,
                                                        free: float | None, said: str | None) -> None:
    from omegaconf import OmegaConf

    from fast_style import fit, hardware

    monkeypatch.setattr(hardware, "available_memory", lambda: free)
    cfg = OmegaConf.create({"batch_size": batch, "data": {"image_size": size}, "trainer": {}})
    if said is None:
        fit.check_memory(cfg, "bf16-mixed", "cpu")
        return
    with pytest.raises(ValueError) as refused:
        fit.check_memory(cfg, "bf16-mixed", "cpu")
    assert str(refused.value) == said
    monkeypatch.setenv("LOCAL_RANK", "1")  # DDP's other processes: the first checked for all, with their memory free
    fit.check_memory(cfg, "bf16-mixed", "cpu")


def test_available_memory_is_read_from_this_machine() -> None:
    from fast_style.hardware import available_memory

    free = available_memory()
    assert free is not None and 0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") + 2**40  # swap


def test_a_quoted_name_is_the_name_hydra_reads() -> None:
    """The advice above, followed, was refused: the check read the quotes as part of the name."""
    from fast_style.train import naming_fault

    assert naming_fault(["style.name='café'", "style.image=painting.jpg"]) is None
    assert naming_fault(['style.name="a b"']) == "style.name=a b is not a plain name (letters, digits, _ . -): it names the model's files"


@pytest.fixture(scope="module")
def bad_settings(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list]:
    """Every case's run, all in one process (test_train's missing-folder test runs its own)."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "empty").mkdir()
    paths = {"empty": tmp / "empty", "photos": make_photo_dir(tmp / "photos"), "tmp": tmp, "style": style_image_path("wave.jpg"),
             "strips": make_photo(tmp / "strips" / "strip.png", (300, 4)).parent, "clear": tmp / "clear.png"}
    Image.new("RGBA", (40, 30)).save(paths["clear"])
    paths |= {"module": tmp / "module.ckpt", "weights": tmp / "weights.ckpt"}
    torch.save(torch.nn.Linear(2, 2), paths["module"])  # Python objects: torch refused them in a paragraph, as a traceback
    torch.save({"state_dict": {"a": torch.zeros(2)}}, paths["weights"])  # KeyError: 'pytorch-lightning_version'

    cases = []
    for i, (overrides, _) in enumerate(BAD_SETTINGS):
        (tmp / f"run{i}").mkdir()
        cases.append((tmp / f"run{i}", [*FAST, *(o.format(**paths) for o in overrides)]))
    return paths, run_train_many(cases)


@pytest.mark.parametrize("case", range(len(BAD_SETTINGS)), ids=[o[-1].replace("{", "").replace("}", "") for o, _ in BAD_SETTINGS])
def test_bad_settings_fail_at_start_with_one_line(bad_settings: tuple, case: int) -> None:
    paths, results = bad_settings
    result = results[case]
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(BAD_SETTINGS[case][1].format(**paths)), result.stderr


def test_a_bad_value_is_one_line_and_no_run_folder(tmp_path: Path, photo_dir: Path) -> None:
    """Hydra's five lines for a value of the wrong type; a run folder (config, empty log) for each refusal."""
    photos = f"data.root={photo_dir}"
    cases = {
        (photos, "loss.content_weight=abc"): "error: loss.content_weight=abc: Value 'abc' of type 'str' could not be converted to Float",
        (photos, "batch_size=0"): "error: batch_size must be at least 1, not 0",
        (photos, "-m", "style=wave,udnie", "optim.lr=1e-3,-1"): "error: optim.lr must be positive, not -1",  # a sweep's second value
        # A first run: the photos were looked for after 10 s of imports.
        (): "error: data/coco/train2014: training photo folder not found (data.root=DIR: any folder of photos; MS-COCO in data/README.md)",
        ("data=folder",): "error: data=folder takes the folder of photos: data.root=DIR",  # it took COCO's
        (photos, "style.image=nope.jpg", "style.name=nope"): "error: nope.jpg: style image not found (bundled styles: "
                                                             "composition_vii, shipwreck, starry_night, the_scream, udnie, wave)",
    }
    runs = [(tmp_path / str(i), [*FAST, *argv]) for i, argv in enumerate(cases)]
    for cwd, _ in runs:
        cwd.mkdir()
    for result, ((cwd, _), line) in zip(run_train_many(runs), zip(runs, cases.values())):
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [line], result.stderr
        assert list(cwd.iterdir()) == []


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path, photo_dir: Path) -> None:
    result = train(tmp_path, f"data.root={photo_dir}", "optim.lr=1e12", "trainer.max_steps=50",
                   "checkpoint_every_n_steps=1", check=False)
    assert result.returncode == 1
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "at step" in line and "; the last good checkpoint is" in line
    ckpt = torch.load(line.rsplit(" ", 1)[1], weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "checkpoints").exists()  # nothing exported


def test_out_of_memory_is_one_line_and_keeps_the_last_checkpoint(tmp_path: Path, photo_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU's out of memory (trainer=gpu batch_size=512) was a traceback of the step, through Hydra."""
    from fast_style.module import StyleTransferModule

    step = StyleTransferModule.training_step

    def short_of_memory(self: StyleTransferModule, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.global_step == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                                         "79.19 GiB\nof which 1.2 GiB is free.")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(StyleTransferModule, "training_step", short_of_memory)
    result = train(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=10", "checkpoint_every_n_steps=2",
                   "hydra.run.dir=runs/oom", check=False)
    last = tmp_path / "runs" / "oom" / "checkpoints" / "last.ckpt"
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: out of memory at batch_size=2, data.image_size=32 (CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 "
        f"has a total capacity of 79.19 GiB): lower batch_size; the last checkpoint is {last}")
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert not (tmp_path / "checkpoints").exists()  # nothing exported


def test_an_error_while_the_loader_starts_ends_the_run_with_its_traceback(tmp_path: Path, photo_dir: Path) -> None:
    """Loader workers ignore SIGTERM (data.ignore_sigterm), the signal Python's exit ended them with:
    an error raised while they started (`seed=1.5` did it) left the run waiting for them, for good."""
    code = ("import sys; from fast_style import data, train\n"
            "def fault(self): raise RuntimeError('sampler fault')\n"
            "data.EpochSampler.__iter__ = fault; sys.argv[0] = 'train'; train.main()")
    result = subprocess.run([sys.executable, "-c", code, *FAST, f"data.root={photo_dir}", "data.num_workers=2",
                             "trainer.max_steps=2"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "RuntimeError: sampler fault" in result.stderr, result.stderr


def test_a_full_disk_is_one_line_and_the_trained_model_is_kept(tmp_path: Path, photo_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The export's copy into export_dir on a full disk was a traceback that did not say where the model was."""
    from fast_style import fit

    def full(source: str, target: str) -> None:
        Path(target).write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fit.shutil, "copyfile", full)
    [result] = run_train_many([(tmp_path, [*FAST, f"data.root={photo_dir}", "trainer.max_steps=1", "export_dir=out",
                                           "hydra.run.dir=run"])])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == ("error: cannot write out/wave.safetensors (No space left on device); "
                                                      f"the model is in {tmp_path / 'run' / 'wave.safetensors'}")
    assert list((tmp_path / "out").iterdir()) == [] and (tmp_path / "run" / "wave.safetensors").is_file()


def test_a_model_another_run_exported_meanwhile_is_kept(tmp_path: Path, photo_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of one style each found checkpoints/wave.safetensors free; the later one's copy replaced the other's."""
    from fast_style import fit

    copy = fit.shutil.copyfile

    def another_run_first(source: str, target: str) -> None:
        (tmp_path / "out" / "wave.safetensors").write_bytes(b"the other run's model")
        copy(source, target)

    monkeypatch.setattr(fit.shutil, "copyfile", another_run_first)
    [result] = run_train_many([(tmp_path, [*FAST, f"data.root={photo_dir}", "trainer.max_steps=1", "export_dir=out",
                                           "hydra.run.dir=run"])])
    assert result.returncode == 0, result.stderr
    assert f"out/wave.safetensors exists; kept it. Pass overwrite_export=true to replace it with {tmp_path / 'run'}" in result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["wave.safetensors"]
    assert (tmp_path / "out" / "wave.safetensors").read_bytes() == b"the other run's model"


def test_runs_started_in_one_second_get_folders_of_their_own(tmp_path: Path, photo_dir: Path) -> None:
    """Two runs of a shell loop's sweep (`&`) shared runs/wave/<second>: one config, one log, one model, checkpoints mixed."""
    import datetime

    now = datetime.datetime.now()
    taken = [tmp_path / "runs" / "wave" / f"{now + datetime.timedelta(seconds=s):%Y-%m-%d_%H-%M-%S}" for s in range(60)]
    for folder in taken:  # another run has each of the next 60 seconds
        folder.mkdir(parents=True)
        (folder / "theirs.txt").write_text("another run's")
    [result] = run_train_many([(tmp_path, [*FAST, f"data.root={photo_dir}", "trainer.max_steps=1", "export_dir=out"])])
    assert result.returncode == 0, result.stderr
    assert all([p.name for p in folder.iterdir()] == ["theirs.txt"] for folder in taken)
    [own] = [p for p in (tmp_path / "runs" / "wave").iterdir() if p not in taken]
    assert own.name.endswith("_2") and own.with_name(own.name[:-2]) in taken and (own / "wave.safetensors").is_file()


def test_a_run_folder_that_cannot_be_made_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """train from a read-only folder (tried on a read-only tmpfs) was Hydra's 100-line traceback."""
    import os

    from fast_style.train import fresh_folder

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(SystemExit) as stop:
        fresh_folder("runs/wave/2026-12-07_00-08-21")
    assert stop.value.code == ("error: cannot make the run folder runs/wave/2026-12-07_00-08-21 (Read-only file system); "
                               "train from a folder you can write to, or set hydra.run.dir=DIR (hydra.sweep.dir with -m)")


def test_ctrl_c_before_the_first_step_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                   photo_dir: Path) -> None:
    """During the imports or the photos' scan, Ctrl-C was a traceback into torch (Lightning's loop takes its own)."""
    import sys

    from fast_style import train as command

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "_hydra_main", ctrl_c)
    monkeypatch.setattr(sys, "argv", ["train", *FAST, f"data.root={photo_dir}"])
    with pytest.raises(SystemExit) as stop:
        command.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "interrupted before the first step: nothing to resume\n"


def test_ctrl_c_during_the_export_says_where_the_network_is(tmp_path: Path, photo_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last step, outside Lightning's loop, Ctrl-C said "before the first step: nothing to resume"."""
    import fast_style.fit
    from fast_style.model_file import load_model

    def ctrl_c(*args: object) -> None:
        raise KeyboardInterrupt

    run = [*FAST, f"data.root={photo_dir}", "trainer.max_steps=2", "hydra.run.dir=runs/cut"]
    last = tmp_path / "runs" / "cut" / "checkpoints" / "last.ckpt"
    with monkeypatch.context() as patch:
        patch.setattr(fast_style.fit, "save_model", ctrl_c)
        [cut] = run_train_many([(tmp_path, run)])
    assert cut.returncode == 130
    said = f"interrupted at step 2, before its export; the network is in {last}, which stylize --model takes"
    assert cut.stderr.splitlines()[-1] == said
    assert not (tmp_path / "checkpoints").exists()
    assert load_model(last)[1].steps == 2  # the whole network, as stylize reads it


_SIGTERM_AT = """
import os, signal, sys
import fast_style.fit, fast_style.train as train
jobs, stop_at = [], int(sys.argv[1])

def stop() -> None:
    os.kill(os.getpid(), signal.SIGTERM)

def run(cfg, run_dir) -> None:  # a sweep's job: the real one leaves SIGTERM to Lightning, then Lightning to the default
    jobs.append(cfg.style.name)
    if len(jobs) == stop_at:
        stop()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

fast_style.fit.run = run
if stop_at == 0:  # during our checks of the overrides, before Hydra
    train.override_fault = lambda argv: stop()
sys.argv = ["train", *sys.argv[2:]]
train.main()
"""


def test_sigterm_before_the_first_step_is_one_line(tmp_path: Path, photo_dir: Path) -> None:
    """A scheduler's stop in the seconds of imports and checks ended the process without a word
    (status -15), where Ctrl-C said that there was nothing to resume; in a sweep's second run too.
    The two cases side by side: each process spends most of its time importing."""
    runs = {job: subprocess.Popen([sys.executable, "-c", _SIGTERM_AT, str(job), "-m", *FAST, "style=wave,the_scream",
                                   f"data.root={photo_dir}", f"hydra.sweep.dir={tmp_path / str(job)}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for job in (0, 2)}
    for job, (status, stderr) in side_by_side(runs, timeout=120).items():
        assert (job, status) == (job, 143), stderr[-2000:]
        assert stderr.splitlines()[-1] == "stopped by SIGTERM before the first step: nothing to resume"
        assert len(list((tmp_path / str(job)).glob("*/.hydra"))) == job  # the second run of the sweep, or none


def test_a_painting_above_pillows_pixel_limit_trains(tmp_path: Path, photo_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A painting's full-resolution scan (museums' run to hundreds of megapixels) was Pillow's
    DecompressionBombError, a traceback, above 179 MP; `stylize --style-image` took it. Pillow's
    limit is set to 5,000 pixels here, so that wave.jpg stands for such a scan."""
    from fast_style.pixels import load_style_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    with pytest.raises(ValueError, match=r"wave.jpg: style image cannot be read \(Image size \("):  # the API: one error
        load_style_image(style_image_path("wave.jpg"), 64)
    [result] = run_train_many([(tmp_path, [*FAST, f"data.root={photo_dir}", "trainer.max_steps=1"])])
    assert result.returncode == 0, result.stderr[-2000:]


def test_kill_9_then_resume_at_the_saved_step_with_the_optimizer_state(tmp_path: Path, photo_dir: Path) -> None:
    proc = start(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=100000", "checkpoint_every_n_steps=3",
                 "hydra.run.dir=runs/killed")
    last = tmp_path / "runs" / "killed" / "checkpoints" / "last.ckpt"
    try:
        wait_for(last)
        time.sleep(1.0)
    finally:
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
    saved = torch.load(last, weights_only=True)  # whatever is there is a whole checkpoint
    step = saved["global_step"]
    assert step > 0 and step % 3 == 0
    train(tmp_path, f"data.root={photo_dir}", f"trainer.max_steps={step + 4}", f"ckpt_path={last}", "hydra.run.dir=runs/resumed")
    resumed = torch.load(tmp_path / "runs" / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == step + 4
    adam = resumed["optimizer_states"][0]["state"][0]
    assert int(adam["step"]) == step + 4  # Adam's moments went on, not restarted


def test_ctrl_c_saves_a_checkpoint(tmp_path: Path, photo_dir: Path) -> None:
    proc = start(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=100000", "checkpoint_every_n_steps=5",
                 "hydra.run.dir=runs/interrupted")
    last = tmp_path / "runs" / "interrupted" / "checkpoints" / "last.ckpt"
    try:
        wait_for(last)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # never left running, whatever happened
    assert proc.returncode == 130, err[-3000:]  # Lightning's own status is 1, a failure's
    step = torch.load(last, weights_only=True)["global_step"]
    assert f"interrupted at step {step}; resume with ckpt_path={last}" in err
    assert not (tmp_path / "checkpoints").exists()  # an interrupted run does not replace the shipped model


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path: Path, photo_dir: Path) -> None:
    # A scheduler's stop to the whole process group, decoding workers too (`kill PID` is the main
    # process's part of it): Lightning's own handling exited 0, unsaved; a worker killed first
    # crashed the run.
    proc = start(tmp_path, f"data.root={photo_dir}", "trainer.max_steps=100000", "checkpoint_every_n_steps=5",
                 "hydra.run.dir=runs/stopped", "data.num_workers=2", new_group=True)
    last = tmp_path / "runs" / "stopped" / "checkpoints" / "last.ckpt"

    def saved() -> int:  # a periodic checkpoint, then a second more of training
        wait_for(last)
        step = torch.load(last, weights_only=True)["global_step"]
        time.sleep(1.0)
        return step

    saved_at, err = stop_group(proc, saved)
    assert proc.returncode == 143, err[-3000:]
    step = torch.load(last, weights_only=True)["global_step"]
    assert step > saved_at and err.strip().splitlines()[-1] == f"stopped by SIGTERM at step {step}; resume with ckpt_path={last}"
    assert not (tmp_path / "checkpoints").exists()


def test_a_resume_that_cannot_go_on_as_asked_says_so_before_loading(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from fast_style.fit import check_resume

    last, run = tmp_path / "last.ckpt", tmp_path / "runs" / "wave" / "now"
    model, style = {"channels": 32, "layout": "johnson"}, {"name": "wave", "image": "wave.jpg", "weight": 1e10}
    torch.save({"global_step": 40, "callbacks": {"Timer": {"time_elapsed": {"train": 3723.4}}},
                "hyper_parameters": {"model": model, "style": style, "optim": {"lr": 1e-3}},
                "state_dict": {}, "pytorch-lightning_version": "2.6.0"}, last)  # what Lightning writes, less the weights
    shutil.copyfile(last, tmp_path / "good.ckpt")
    cfg = OmegaConf.create({"ckpt_path": str(last), "trainer": {"max_time": "00:01:00:00", "max_steps": -1},
                            "model": model, "style": style, "optim": {"lr": 3e-4}})  # another lr: a resume may change it
    # Lightning's Timer is checkpointed: max_time counts the whole run, resumes included.
    with pytest.raises(ValueError, match=r"trained 1:02:03 already, trainer.max_time=00:01:00:00 counts the whole "
                                         r"run across resumes: give more \(e.g. 00:03:02:03\)"):
        check_resume(cfg, run)
    cfg.trainer.max_time = "00:02:00:00"
    check_resume(cfg, run)  # time left: no error
    for change, message in [
        ({"model": {"channels": 16}}, r"the run trained with model.channels=32, not 16; resume it with its own settings, "
                                      r"or start a new run from its weights: init_weights=.*last.ckpt"),
        ({"style": {"name": "the_scream"}}, "the run trained with style.name=wave, not the_scream"),  # went on from wave's weights
        ({"trainer": {"max_steps": 40}}, r"the run is at step 40 already, trainer.max_steps=40 counts the whole run"),
        ({"trainer": {"max_time": "2h"}}, r"trainer.max_time must be DD:HH:MM:SS .*not '2h'"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_resume(OmegaConf.merge(cfg, change), run)
    last.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="not a checkpoint of a run"):
        check_resume(cfg, run)
    # ckpt_path=last, Lightning's shorthand, looked in the new run's empty folder: "checkpoint not found"
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=last: no run in .*runs/wave has a checkpoints/last.ckpt"):
        check_resume(OmegaConf.merge(cfg, {"ckpt_path": "last"}), run)
    for i, name in enumerate(["older", "newer", "now"]):  # "now" is the run itself
        (run.parent / name / "checkpoints").mkdir(parents=True)
        shutil.copyfile(tmp_path / "good.ckpt", run.parent / name / "checkpoints" / "last.ckpt")
        os.utime(run.parent / name / "checkpoints" / "last.ckpt", (1e9 + i, 1e9 + i))
    resumed = OmegaConf.merge(cfg, {"ckpt_path": "last"})
    check_resume(resumed, run)
    assert resumed.ckpt_path == str(run.parent / "newer" / "checkpoints" / "last.ckpt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_asked_for_where_there_is_none_is_one_line_before_loading() -> None:
    """It was Lightning's "No supported gpu backend found!", after the photos and the VGG had loaded."""
    from omegaconf import OmegaConf

    from fast_style.fit import check_accelerator

    with pytest.raises(ValueError, match=r"trainer.accelerator=cuda \(trainer=gpu\) needs a CUDA or Apple GPU, and this "
                                         r"machine has neither: trainer=default trains on the CPU"):
        check_accelerator(OmegaConf.create({"trainer": {"accelerator": "cuda"}}))
    check_accelerator(OmegaConf.create({"trainer": {"accelerator": "cpu"}}))
    check_accelerator(OmegaConf.create({"trainer": {"accelerator": "auto"}}))


class _Records(L.LightningModule):
    """Records the photos each step trains on: each is one grey, told apart by its value."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.seen += batch[:, 0, 0, 0].tolist()
        return self.w * batch.float().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader`", "ignore:Be aware that when using `ckpt_path`",
                            "ignore:.*LeafSpec")
@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_resumed_mid_epoch_trains_on_the_photos_its_epoch_had_not_reached(tmp_path: Path, workers: int) -> None:
    for i in range(12):  # 32x32 photos at data.image_size=32: the crop is the whole photo
        Image.new("RGB", (32, 32), (10 * i,) * 3).save(tmp_path / f"{i:02d}.png")

    def fit(run: str, max_steps: int, resume: str | None = None) -> list[int]:
        L.seed_everything(0, workers=True, verbose=False)
        saves = ModelCheckpoint(tmp_path / run, every_n_train_steps=max_steps, save_top_k=0, save_last=True)
        trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator="cpu", logger=False, limit_val_batches=0,
                            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path / run,
                            callbacks=[saves])
        module = _Records()
        data = PhotoDataModule(str(tmp_path), image_size=32, batch_size=2, num_workers=workers, seed=5)
        trainer.fit(module, datamodule=data, ckpt_path=resume and tmp_path / resume / "last.ckpt")
        return [v // 10 for v in module.seen]

    whole = fit("whole", 18)  # three epochs of six steps
    assert sorted(whole[:12]) == sorted(whole[12:24]) == list(range(12)) and whole[:12] != whole[12:24]
    # Stopped after 4 of the first epoch's 6 steps, as by kill -9 after the checkpoint at step 4:
    # the 4 photos that epoch had left, then the same next epochs. Then stopped at an epoch's end.
    assert fit("four", 4) + fit("on", 18, resume="four") == whole
    assert fit("six", 6) + fit("on6", 18, resume="six") == whole
