"""The run that `train` starts: Lightning's Trainer, with the checks that need torch, the
callbacks, warm starts and the export. Apart from the command (fast_style.train) because torch and
Lightning take seconds to import, which `train --help` and a refused command line need not wait for."""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import inspect
import logging
import math
import os
import shutil
import signal
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from fast_style.arbitrary import ArbitraryNet
from fast_style.atomic import atomic_write
from fast_style.data import LOADER_WARNING, PhotoDataModule, loader_workers_killed_on_error
from fast_style.gallery import GalleryNet
from fast_style.hardware import (
    PLANNED_SHARE,
    inductor_options,
    memory_short,
    training_channels_last,
    training_device,
    training_precision,
)
from fast_style.images import own_pixel_limits
from fast_style.model_file import (
    ModelFile,
    ModelFileError,
    ModelRecord,
    load_model,
    read_model,
    record_from_hparams,
    save_model,
)
from fast_style.module import NonFiniteLossError, StyleTransferModule
from fast_style.styles import find_painting
from fast_style.transformer import TransformerNet
from fast_style.vgg import VGGWeightsError

log = logging.getLogger("fast_style")

# Lightning's warnings that a user cannot act on: the frozen VGG is in eval mode on purpose; the
# model summary cannot size bf16 weights; its loader's (LOADER_WARNING); a resume writes to a
# run folder of its own, and no best-k checkpoints are kept to reload from the old one; a
# folder of fewer photos than log_every_n_steps batches is still logged every n steps (Lightning
# counts steps across epochs), whatever its warning says.
QUIET = (r".*module\(s\) in eval mode.*", r".*is not supported by the model summary.*",
         LOADER_WARNING, r"The dirpath has changed from .*",
         r"The number of training batches \(\d+\) is smaller than the logging interval.*")
# Its advertisement, a log line.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage())
# Lightning's lines go through a handler of its own only where the root logger had none when it
# was imported (lightning/pytorch/__init__.py). `train` imports this module once Hydra has set one
# up, and each line showed twice ("INFO: ..." and Hydra's): as when it was imported first.
for _name in ("lightning.pytorch", "lightning.fabric"):
    if (_logger := logging.getLogger(_name)).propagate:
        _logger.addHandler(logging.StreamHandler())
        _logger.propagate = False




class SaveOnInterrupt(Callback):
    """Ctrl-C, or `kill PID` (SIGTERM: a scheduler's or a container's stop): Lightning ends the
    step and exits; first keep what was learned. Lightning's SIGTERMException is a SystemExit
    with no code, which exited 0 as if the run had finished: run() exits 143 instead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            trainer.save_checkpoint(self.path, weights_only=False)
            if trainer.is_global_zero:
                how = "stopped by SIGTERM" if isinstance(exception, SIGTERMException) else "interrupted"
                print(f"{how} at step {trainer.global_step}; resume with ckpt_path={self.path}", file=sys.stderr)


class ProgressLines(Callback):
    """Where stderr is a log file or a pipe, a line a minute instead of the progress bar, whose
    updates (\r by \r) made a long run's log one line of megabytes; also kept in the run's log."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s, self.start, self.last, self.step = every_s, 0.0, -float("inf"), -1
        self.first, self.total = 0, float("inf")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start, self.first = time.monotonic(), trainer.global_step  # a resume's first step
        # max_steps, or the epochs' worth of steps where they end the run first (the default,
        # max_epochs: 2, said no total at all); inf where neither is set
        self.total = trainer.estimated_stepping_batches

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self._line(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._line(trainer, ended=True)

    def _line(self, trainer: L.Trainer, ended: bool = False) -> None:
        if not trainer.is_global_zero or trainer.global_step == self.step:
            return
        self.last, self.step = time.monotonic(), trainer.global_step
        seconds = self.last - self.start
        left = []  # seconds: at this run's pace to its last step, and to max_time (Lightning's Timer)
        if not ended and self.step > self.first:
            if math.isfinite(self.total):
                left.append((self.total - self.step) * seconds / (self.step - self.first))
            left += [t for c in trainer.callbacks if isinstance(c, Timer) and (t := c.time_remaining("train")) is not None]
        of = f" of {int(self.total)}" if math.isfinite(self.total) else ""
        eta = f", about {datetime.timedelta(seconds=round(max(0, min(left))))} left" if left else ""
        metrics = "".join(f", {k} {v:.4g}" for k, v in trainer.progress_bar_metrics.items())
        log.info("step %d%s, %s%s%s", self.step, of, datetime.timedelta(seconds=round(seconds)), eta, metrics)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as plain dicts and lists: what the module saves and Lightning takes."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]  # a DictConfig gives a dict


def latest_checkpoint(run_dir: Path) -> Path:
    """`ckpt_path=last`: the newest checkpoints/last.ckpt of the style's other runs: run_dir's
    siblings (runs/<style>/<time>), or in a sweep the same style's folder of the others
    (runs/multirun/<time>/<style>). Lightning's own "last" looks in this run's folder, new and
    empty, so it said "checkpoint not found" of the shorthand a stopped run's user types first."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    pattern = f"*/{run_dir.name}/checkpoints/last.ckpt" if sweep else "*/checkpoints/last.ckpt"
    runs = run_dir.parent.parent if sweep else run_dir.parent
    found = [p for p in runs.glob(pattern) if p.parent.parent != run_dir]
    if not found:
        raise FileNotFoundError(f"ckpt_path=last: no run in {runs} has a {pattern[2:]} to resume")
    path = max(found, key=lambda p: p.stat().st_mtime)
    log.info("ckpt_path=last: resuming %s", path)
    return path


def check_resume(cfg: DictConfig, run_dir: Path) -> None:
    """`ckpt_path` resumes a run as it was. What would fail after the VGG had loaded, or train
    something other than asked, fails here in one line: a file that is no checkpoint of a run
    ("pop from empty list"), another network (forty lines of size mismatches), another painting
    (trained from the old one's weights and step count), no steps or no time left."""
    if not cfg.ckpt_path:
        return
    if cfg.ckpt_path == "last":
        cfg.ckpt_path = str(latest_checkpoint(run_dir))
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found (ckpt_path)")
    not_a_run = (f"{path}: not a checkpoint of a run (ckpt_path resumes from a run's checkpoints/last.ckpt; "
                 "to start from an exported model, init_weights=PATH)")
    if not zipfile.is_zipfile(path):  # what Lightning writes
        raise ValueError(not_a_run)
    try:  # a file holding Python objects, or another program's weights, was a traceback from torch or Lightning
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - torch's words for a pickle it will not run are a paragraph
        raise ValueError(not_a_run) from None
    if not isinstance(state, dict) or not {"state_dict", "hyper_parameters", "pytorch-lightning_version"} <= state.keys():
        raise ValueError(not_a_run)
    saved, now = state.get("hyper_parameters", {}), plain_config(cfg)
    for group, keys in (("model", None), ("style", ("name", "image", "images", "folder"))):
        was, asked = saved.get(group) or {}, now[group]
        for key in keys or was:
            if key in was and key in asked and was[key] != asked[key]:
                raise ValueError(f"{path}: the run trained with {group}.{key}={was[key]}, not {asked[key]}; resume it "
                                 f"with its own settings, or start a new run from its weights: init_weights={path}")
    steps, max_steps = state.get("global_step", 0), cfg.trainer.get("max_steps", -1)
    if max_steps not in (None, -1) and steps >= max_steps:
        raise ValueError(f"{path}: the run is at step {steps} already, trainer.max_steps={max_steps} counts the whole "
                         f"run across resumes: give more (e.g. {steps + 1000})")
    check_time_left(cfg, state)


def check_time_left(cfg: DictConfig, state: dict) -> None:
    """Lightning's max_time counts the whole run, resumes included (its Timer is checkpointed):
    a resume with no time left would read every painting and stop at once. Say so first."""
    limit = cfg.trainer.get("max_time")
    if not limit:
        return
    try:
        if isinstance(limit, str):
            days, hours, minutes, seconds = (int(x) for x in limit.strip().split(":"))
            limit = datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        else:
            limit = datetime.timedelta(**limit)
    except (TypeError, ValueError):
        raise ValueError(f"trainer.max_time must be DD:HH:MM:SS or a dict of timedelta fields, not {limit!r}") from None
    used = datetime.timedelta(seconds=round(state.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {}).get("train", 0)))
    if used >= limit:
        raise ValueError(f"{cfg.ckpt_path}: the run has trained {used} already, trainer.max_time={cfg.trainer.max_time} "
                         f"counts the whole run across resumes: give more (e.g. {_dhms(used + datetime.timedelta(hours=2))})")
    log.info("resuming a run that has trained %s of trainer.max_time=%s (it counts the whole run)", used, cfg.trainer.max_time)


def _dhms(t: datetime.timedelta) -> str:
    seconds = int(t.total_seconds())
    return f"{seconds // 86400:02d}:{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def check_trainer_arguments(cfg: DictConfig) -> None:
    """`+trainer.NAME=VALUE` passes NAME to Lightning's Trainer: a name it does not take was a
    traceback (TypeError) after the photos had been read."""
    takes = inspect.signature(L.Trainer.__init__).parameters
    for name in cfg.trainer:
        if name not in takes:
            near = difflib.get_close_matches(str(name), list(takes), n=1, cutoff=0.6)
            hint = f" (did you mean trainer.{near[0]}?)" if near else ""
            raise ValueError(f"trainer.{name}: not an argument of Lightning's Trainer{hint}")


def check_accelerator(cfg: DictConfig) -> None:
    """`trainer=gpu` on a machine without one failed after the photos and the VGG had loaded,
    with Lightning's "No supported gpu backend found!"."""
    accelerator = cfg.trainer.get("accelerator", "auto")
    if accelerator in ("gpu", "cuda", "mps") and training_device(accelerator) == "cpu":
        raise ValueError(f"trainer.accelerator={accelerator} (trainer=gpu) needs a CUDA or Apple GPU, and this machine "
                         "has neither: trainer=default trains on the CPU")


# What a training image adds to a CPU run's peak memory at 256 px, measured with the default
# network at batch 4 to 32 (Zen 4): bf16-mixed 0.28 GB, fp32 0.34; about 1.2 GB besides.
CPU_BYTES_PER_IMAGE = {"bf16-mixed": 0.28e9, "32-true": 0.34e9, "32": 0.34e9}
CPU_BYTES_BESIDES = 1.2e9


def check_memory(cfg: DictConfig, precision: str, accelerator: str) -> None:
    """On a CPU, a batch too large for memory was killed by the kernel a minute or more in, with
    no line (status 137: batch_size=300 at 256 px); a GPU's says out of memory itself."""
    if training_device(accelerator) != "cpu" or int(os.environ.get("LOCAL_RANK", 0)) > 0:  # the first checks for all
        return
    devices = cfg.trainer.get("devices", 1)
    processes = devices if isinstance(devices, int) and devices > 1 else 1  # trainer=ddp on CPUs
    per_image = CPU_BYTES_PER_IMAGE.get(precision, max(CPU_BYTES_PER_IMAGE.values())) * (cfg.data.image_size / 256) ** 2
    need = processes * (CPU_BYTES_BESIDES + cfg.batch_size * per_image)
    if (free := memory_short(need)) is not None:
        fits = int((PLANNED_SHARE * free / processes - CPU_BYTES_BESIDES) / per_image)  # 80 ran in 24.1 GB; 73 is said
        remedy = f"batch_size={fits} fits" if fits >= 1 else "lower data.image_size"
        raise ValueError(f"batch_size={cfg.batch_size} at data.image_size={cfg.data.image_size} takes about "
                         f"{need / 1e9:.0f} GB on this CPU{f' in {processes} processes' if processes > 1 else ''} "
                         f"({per_image / 1e9:.2g} GB an image, measured), and {free / 1e9:.1f} GB is free: {remedy}")


def train(cfg: DictConfig, run_dir: Path) -> L.Trainer:
    with warnings.catch_warnings():  # for every run of a process, and for the run alone
        for message in QUIET:
            warnings.filterwarnings("ignore", message=message)
        return _train(cfg, run_dir)


def _train(cfg: DictConfig, run_dir: Path) -> L.Trainer:
    check_trainer_arguments(cfg)
    check_accelerator(cfg)
    check_resume(cfg, run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    plain = plain_config(cfg)
    trainer_args = plain["trainer"]
    requested = trainer_args.get("precision", "auto")
    trainer_args["precision"], line = training_precision(requested, trainer_args.get("accelerator", "auto"))
    if line:
        (log.warning if line.startswith("warning") else log.info)(line.removeprefix("warning: "))
    check_memory(cfg, trainer_args["precision"], trainer_args.get("accelerator", "auto"))
    channels_last, line = training_channels_last(cfg.channels_last, trainer_args.get("accelerator", "auto"))
    if line:
        log.info(line)
    data = PhotoDataModule(**plain["data"], batch_size=cfg.batch_size, seed=cfg.seed)
    data.setup("fit")  # fail on a bad photo folder now, not after the VGG has loaded
    adds_painting = cfg.init_weights and not cfg.style.images and not cfg.style.folder
    # A painting added to a gallery joins it, learning its norms alone (`norms`) or with the
    # shared network while the gallery's paintings are rehearsed (`rehearse`); or it gets a
    # single-style network of its own that starts from the gallery's (`network`).
    joins = adds_painting and cfg.new_painting in ("norms", "rehearse")
    start = read_model(cfg.init_weights, weights=False) if joins else None  # the header alone
    extend = list(start.config["styles"]) if start is not None and start.architecture == "gallery" else None
    if extend and cfg.style.name in extend:  # its norms alone were tried: 0.04% in 200 steps (docs/gallery.md)
        raise ValueError(f"{cfg.init_weights}: {cfg.style.name} is one of its paintings already; new_painting=network "
                         "gives it a network of its own, started from it, and style=gallery trains the whole gallery")
    rehearse = _gallery_paintings(cfg, start) if start is not None and extend and cfg.new_painting == "rehearse" else None
    module = StyleTransferModule(
        plain["model"], plain["style"], plain["loss"], plain["optim"], plain["preview"], plain["stability"], extend,
        channels_last, rehearse,
    )
    before = warm_start(module, cfg.init_weights) if cfg.init_weights else None
    if before is not None:  # so that its checkpoints count what the run started from, as its export does
        module.trained_before = {"steps": before.steps, "images_seen": before.images_seen}
    if cfg.compile:  # in place: the state_dict keys, so checkpoints and exports, stay the same
        # dynamic=False: a new size (the preview) gets its own graph. Inductor 2.15 fails on the
        # network's symbolic padding arithmetic ("python_mod") when it makes sizes dynamic.
        options = inductor_options()
        module.transformer.compile(dynamic=False, options=options)
        module.loss.compile(dynamic=False, options=options)
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", save_top_k=0, save_last=True, every_n_train_steps=cfg.checkpoint_every_n_steps
    )
    callbacks = [checkpoints, SaveOnInterrupt(run_dir / "checkpoints" / "last.ckpt")]
    if trainer_args.get("enable_progress_bar", True) and not sys.stderr.isatty():
        trainer_args["enable_progress_bar"] = False
        callbacks.append(ProgressLines())
    if data.val_set is None:
        trainer_args["limit_val_batches"] = 0
    trainer = L.Trainer(
        **trainer_args,
        default_root_dir=run_dir,
        logger=TensorBoardLogger(run_dir, name="tensorboard", version=""),
        callbacks=callbacks,
    )
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Lightning's own handler from here: SaveOnInterrupt
    validates = data.val_set is not None and not cfg.trainer.get("fast_dev_run")
    if validates and not cfg.ckpt_path:  # where the run starts from: what a further stage has to beat
        trainer.validate(module, datamodule=data, verbose=False)
    trainer.fit(module, datamodule=data, ckpt_path=cfg.ckpt_path, weights_only=True)  # resume runs no pickled code
    if cfg.trainer.get("fast_dev_run"):
        return trainer
    if validates and module.validated_step != trainer.global_step:  # the network exported, for its record
        trainer.validate(module, datamodule=data, verbose=False)
    steps_short = trainer.max_steps > 0 and trainer.global_step < trainer.max_steps
    epochs_done = trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs
    if steps_short and epochs_done:  # Lightning stops at whichever comes first
        log.warning("stopped at step %d of trainer.max_steps=%d: trainer.max_epochs=%d came first (%d steps an epoch); "
                    "trainer.max_epochs=-1 lets the steps decide", trainer.global_step, trainer.max_steps,
                    trainer.max_epochs, trainer.num_training_batches)
    # Also when max_steps < checkpoint_every_n_steps. Lightning writes checkpoints atomically
    # (an fsspec transaction: a temporary file, then a rename).
    last, saved = run_dir / "checkpoints" / "last.ckpt", False
    try:
        trainer.save_checkpoint(last, weights_only=False)
        saved = True
        if trainer.is_global_zero:
            export(cfg, module, trainer, run_dir, before)
    except KeyboardInterrupt:  # outside Lightning's loop: train.main said "before the first step: nothing to resume"
        kept = (f"the network is in {last}, which stylize --model takes" if saved else
                f"resume from the last checkpoint with ckpt_path={last}" if last.exists() else "nothing was saved")
        if trainer.is_global_zero:  # Ctrl-C reaches every process of a run
            print(f"interrupted at step {trainer.global_step}, before its export; {kept}", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    return trainer


def _gallery_paintings(cfg: DictConfig, model: ModelFile) -> list[str]:
    """The paintings of the gallery at `init_weights`, where its record says or in `style.paintings`."""
    found = []
    for image in model.record.style_images or []:
        try:
            found.append(str(find_painting(image, cfg.style.get("paintings"))))
        except FileNotFoundError:
            raise FileNotFoundError(f"{cfg.init_weights}: its painting {image} is not found; new_painting=rehearse "
                                    "needs the gallery's paintings: give their folder as style.paintings=DIR") from None
    if len(found) != len(model.config["styles"]):
        raise ValueError(f"{cfg.init_weights}: its record does not list its paintings, which new_painting=rehearse needs")
    return found


def warm_start(module: StyleTransferModule, path: str) -> ModelRecord:
    """Start from an exported model's weights (with a fresh optimizer): to train a finished
    model further. Returns its record, whose step counts the new export adds to."""
    net, record = load_model(path)
    target = module.transformer
    if isinstance(net, GalleryNet) and isinstance(target, GalleryNet) and target.styles[:-1] == net.styles:
        # A new painting for a gallery: everything it has, and for the new one the mean of its paintings.
        if net.config.body() != target.body.config:
            raise ValueError(f"{path}: its network {net.config.body()} differs from this run's {target.body.config}")
        target.body.load_state_dict(net.body.state_dict())
        with torch.no_grad():
            target.scales.copy_(torch.cat([net.scales, net.scales.mean(0, keepdim=True)]))
            target.shifts.copy_(torch.cat([net.shifts, net.shifts.mean(0, keepdim=True)]))
        return record
    if isinstance(target, ArbitraryNet) and isinstance(net, GalleryNet) and net.config.body() == target.body.config:
        # Any painting from a gallery: its convolutions, and its paintings' mean norms to start from.
        target.body.load_state_dict(net.body.state_dict())
        target.start_from(net.scales.detach(), net.shifts.detach())
        return dataclasses.replace(record, style_images=None)
    if isinstance(net, GalleryNet) and isinstance(target, TransformerNet) and net.config.body() == target.config:
        # A new painting's own network from a gallery's (new_painting=network): its convolutions
        # and the mean of its paintings' norms, the start a new painting also gets in the gallery;
        # a painting of the gallery starts from its own.
        name = module.hparams["style"]["name"]
        code = net.one_hot(net.styles.index(name)) if name in net.styles else torch.full(net.code_shape, 1 / len(net.styles))
        target.load_state_dict(net.single(code).state_dict())
        return dataclasses.replace(record, style_images=None)
    if isinstance(target, GalleryNet) and isinstance(net, TransformerNet) and net.config == target.body.config:
        # A gallery from a single-style network: its convs, and its norms for every painting.
        target.body.load_state_dict(net.state_dict())
        for index in range(len(target.styles)):
            target.set_norms(index, net)
        return dataclasses.replace(record, style_image=None)
    if (isinstance(net, TransformerNet) and isinstance(target, TransformerNet)
            and net.config.res_blocks > target.config.res_blocks
            and dataclasses.replace(net.config, res_blocks=target.config.res_blocks) == target.config):
        # A faster network from a trained deeper one: its first residual blocks. Dropping the last
        # ones changed the picture least (realtime8: 14/255 against 28-39 for another one, 24
        # against 34 for two; docs/realtime.md).
        wanted = target.state_dict().keys()
        target.load_state_dict({k: v for k, v in net.state_dict().items() if k in wanted})
        return record
    if getattr(net, "config", None) != target.config:
        raise ValueError(f"{path}: its network {getattr(net, 'config', net)} differs from this run's {target.config}")
    target.load_state_dict(net.state_dict())
    return record


def export(cfg: DictConfig, module: StyleTransferModule, trainer: L.Trainer, run_dir: Path,
           before: ModelRecord | None) -> None:
    """Weights + config + the run's record, into the run folder and `export_dir`."""
    name = cfg.style.name
    before = before or ModelRecord()
    trained = module.trained_before  # init_weights' training, or a resumed checkpoint's record of it
    record = record_from_hparams(module.hparams, trained["steps"] + trainer.global_step)
    if module.hparams.get("extend"):  # a painting added to a gallery: the gallery's record, and the new one
        record = dataclasses.replace(before, style=name, style_image=None, steps=record.steps,
                                     style_images=[*(before.style_images or []), str(cfg.style.image)])
    record = dataclasses.replace(
        record,
        images_seen=trained["images_seen"] + trainer.global_step * cfg.batch_size * trainer.world_size,
        image_size=cfg.data.image_size,
        final_losses=module.summary(),
        val_losses={k: round(v, 4) for k, v in module.val_losses.items()} or None,
        val_root=str(cfg.data.val_root) if module.val_losses else None,
        device=_device_name(module.device),
        precision=str(trainer.precision),
        trained=datetime.datetime.now().isoformat(timespec="seconds"),
        init_weights=str(cfg.init_weights) if cfg.init_weights else None,
    )
    exported = save_model(run_dir / f"{name}.safetensors", module.averaged, record)
    log.info("exported %s", exported)
    target = Path(cfg.export_dir) / f"{name}.safetensors"
    if target.resolve() == Path(exported).resolve():  # export_dir is the run's folder
        return
    kept = "%s exists; kept it. Pass overwrite_export=true to replace it with %s"
    if target.exists() and not cfg.overwrite_export:
        log.warning(kept, target, exported)
        return
    try:
        with atomic_write(target, replace=cfg.overwrite_export) as tmp:
            shutil.copyfile(exported, tmp)
    except FileExistsError:  # another run exported that name meanwhile
        log.warning(kept, target, exported)
        return
    except OSError as e:  # the run's own copy stays: said, so that a full disk loses no model
        raise OSError(e.errno, f"cannot write {target} ({e.strerror or e}); the model is in {exported}") from None
    log.info("exported %s", target)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def run(cfg: DictConfig, run_dir: Path) -> None:
    """Train, export, and say in one line what went wrong: the exit status a scheduler reads."""
    own_pixel_limits()
    try:
        with loader_workers_killed_on_error():
            train(cfg, run_dir)
    except (FileNotFoundError, VGGWeightsError, ModelFileError, ValueError, MisconfigurationException) as e:
        paintings = cfg.style.get("paintings")  # style=any and style=gallery default to this repository's ../shared
        moved = isinstance(e, FileNotFoundError) and paintings and str(e).startswith(str(paintings))
        print(f"error: {e}" + ("; style.paintings=DIR names the folder of paintings" if moved else ""), file=sys.stderr)
        sys.exit(1)
    except NonFiniteLossError as e:
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"; the last good checkpoint is {last}" if last.exists() else ""
        print(f"error: {e}{kept}", file=sys.stderr)
        sys.exit(1)
    except torch.OutOfMemoryError as e:  # a GPU's (or a CPU's refused allocation): a traceback of the step
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"; the last checkpoint is {last}" if last.exists() else ""
        print(f"error: out of memory at batch_size={cfg.batch_size}, data.image_size={cfg.data.image_size} "
              f"({str(e).strip().splitlines()[0]}): lower batch_size{kept}", file=sys.stderr)
        sys.exit(1)
    except SIGTERMException:  # saved and said by SaveOnInterrupt
        sys.exit(128 + signal.SIGTERM)
    except SystemExit as e:  # Lightning ends a Ctrl-C with exit(1), as a failure would end: 130, as a shell says
        if isinstance(e.__context__, KeyboardInterrupt):
            sys.exit(128 + signal.SIGINT)
        raise
    except OSError as e:  # a full disk, a folder it may not write: the machine's, said in one line
        if e.errno is None:
            raise
        path = e.filename2 or e.filename  # a rename's target, else the file
        print(f"error: {path}: {e.strerror}" if path else f"error: {e.strerror}", file=sys.stderr)
        sys.exit(1)
    log.info("run folder: %s  (view with: tensorboard --logdir %s)", run_dir, run_dir)
