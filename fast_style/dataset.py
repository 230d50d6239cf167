"""`stylize --devices N [--num-nodes M] DIR -o OUT`: a folder of images stylized across processes,
GPUs and machines with Lightning's prediction loop, each output exactly once.

- **The plan is the same everywhere.** Every process lists the inputs, drops those whose output
  already exists whole (a rerun resumes), picks each image's style (from a seed and its path, for
  `--style-per-image random`), and cuts the same batches: images of one size and one style, in
  name order. Batch j goes to process j mod N. So no sampler pads or repeats, the shares are
  uneven but disjoint, and the batches (hence the pixels) do not depend on how many processes
  run: 1 process and 2 give the same files.
- **Writing.** A BasePredictionWriter saves each output atomically (fast_style.atomic) as its
  batch ends, and appends a line to its process's manifest; at the end the first process merges
  them into OUT/manifest.jsonl: input, output, style, seed, seconds, status (written, exists,
  failed), error. A bad image is a failed line; the run goes on.

This path imports Lightning; plain `stylize` does not (it comes here only for these options)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from fast_style.data import LOADER_WARNING, ignore_sigterm, loader_workers_killed_on_error
from fast_style.files import InputError, load_input, outside, save_image, too_many_pixels
from fast_style.images import DEFAULT_MAX_PIXELS, VIDEO_EXTENSIONS, find_images, upright_size
from fast_style.pixels import to_bytes, to_pil
from fast_style.model_file import ModelFile, load_model, read_model
from fast_style.models import NEEDS_PAINTING, needs_a_style, parse_style
from fast_style.stylizer import Stylizer

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Item:
    relative: str  # the input's path under the input folder: also the output's under OUT
    size: tuple[int, int]
    style: str  # a gallery's style name, a painting's path, or "" for the model's one style


def random_style(choices: list[str], seed: int, relative: str) -> str:
    """The same pick for the same seed and path, whatever the process count (Geirhos et al. 2019
    give each ImageNet image one random painting)."""
    digest = hashlib.sha256(f"{seed}:{relative}".encode()).digest()
    return choices[int.from_bytes(digest[:8], "big") % len(choices)]


def whole(path: Path) -> bool:
    """An output that exists and reads as an image: one a crash could not have left half-written
    (writes are atomic), nor one someone truncated."""
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def plan(root: Path, out: Path, styles: list[str], per_image: str, seed: int) -> tuple[list[Item], list[str], list[str]]:
    """(items to stylize, inputs whose outputs exist whole, unreadable inputs): the same on every process."""
    todo, done, bad = [], [], []
    for path in outside(find_images(root), out):  # outputs inside the input folder are not inputs on a resume
        relative = path.relative_to(root).as_posix()
        if (out / relative).exists() and whole(out / relative):
            done.append(relative)
            continue
        try:
            with Image.open(path) as im:
                size = upright_size(im)  # a phone's portrait photo is stored sideways, its sides swapped
        except (OSError, SyntaxError, ValueError):
            bad.append(relative)  # reported by the process that gets it, like any other input
            size = (0, 0)
        style = random_style(styles, seed, relative) if per_image == "random" else styles[0]
        todo.append(Item(relative, size, style))
    return todo, done, bad


def batches(items: list[Item], batch_size: int) -> list[list[int]]:
    """Indices of same-size, same-style items, batch_size at most, in name order of each bucket's first."""
    buckets: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        buckets.setdefault((item.size, item.style), []).append(i)
    return [ids[k : k + batch_size] for ids in buckets.values() for k in range(0, len(ids), batch_size)]


class _Images(Dataset):
    def __init__(self, root: Path, items: list[Item], max_pixels: int, size: int | None) -> None:
        self.root, self.items, self.max_pixels, self.size = root, items, max_pixels, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.items[i]
        try:
            image = load_input(self.root / item.relative, self.max_pixels)
            if reason := too_many_pixels(image.width, image.height, {"--size": self.size}, self.max_pixels):
                raise InputError(reason)  # --size 30000, a typo, would run for hours in tiles
            if image.size != item.size:  # its batch is of the planned size: replaced since the run began
                w, h = item.size
                raise InputError(f"changed while the run went on ({w}x{h} when listed, {image.width}x{image.height} "
                                 "now); the same command takes it again")
            return {"index": i, "image": to_bytes(image), "error": None}  # uint8 in, uint8 out: a quarter of the bytes
        except InputError as e:
            return {"index": i, "image": None, "error": str(e)}


def _collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    good = [s for s in samples if s["image"] is not None]
    return {"index": [s["index"] for s in good], "images": torch.stack([s["image"] for s in good]) if good else None,
            "failed": [(s["index"], s["error"]) for s in samples if s["image"] is None]}


class _Batches(torch.utils.data.Sampler):
    """This process's batches: batch j of the plan when j mod world == rank."""

    def __init__(self, plan_batches: list[list[int]], rank: int, world: int) -> None:
        # A process with no batch still joins the run (Lightning refuses an empty dataloader): a
        # resume with one image left on two processes was "DataLoader ... has zero length".
        self.mine = plan_batches[rank::world] or [[]]

    def __iter__(self):  # noqa: ANN204
        return iter(self.mine)

    def __len__(self) -> int:
        return len(self.mine)


class DatasetStylizer(L.LightningModule):
    """The network in Lightning's prediction loop; the picture pipeline is the Stylizer's."""

    def __init__(self, model: Path, items: list[Item], root: Path, batch_size: int, workers: int,
                 max_pixels: int, size: int | None, precision: str, strength: float, preserve_color: bool) -> None:
        super().__init__()
        self.net, self.record = load_model(model)
        self.items, self.root, self.batch_size, self.workers = items, root, batch_size, workers
        self.max_pixels, self.size, self.precision_name = max_pixels, size, precision
        self.options: dict[str, Any] = {"strength": strength, "preserve_color": preserve_color}
        self._stylizer: Stylizer | None = None

    def predict_dataloader(self) -> DataLoader:
        sampler = _Batches(batches(self.items, self.batch_size), self.global_rank, self.trainer.world_size)
        return DataLoader(_Images(self.root, self.items, self.max_pixels, self.size), batch_sampler=sampler,
                          num_workers=self.workers, collate_fn=_collate, worker_init_fn=ignore_sigterm)

    def stylizer(self) -> Stylizer:
        if self._stylizer is None:  # on this process's device, once Lightning has placed it
            if self.device.type == "cpu":  # processes on one machine share its cores, not each take all of them
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, self.trainer.num_devices)))
            self._stylizer = Stylizer(self.net, self.record, self.device, precision=self.precision_name, **self.options)
        return self._stylizer

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        start = time.perf_counter()
        outputs = []
        if batch["images"] is not None:
            style = self.items[batch["index"][0]].style  # one style a batch
            which = {"style_image": style} if self.stylizer().reader else {"style": parse_style(style) if style else None}
            outputs = list(self.stylizer().stylize_tensor(batch["images"], self.size, **which).cpu())
        return {"index": batch["index"], "outputs": outputs, "failed": batch["failed"],
                "seconds": (time.perf_counter() - start) / max(1, len(outputs))}


class _Writer(BasePredictionWriter):
    def __init__(self, out: Path, items: list[Item], seed: int | None) -> None:
        super().__init__(write_interval="batch")
        self.out, self.items, self.seed = out, items, seed
        self.run_id = ""  # names this run's manifest parts: a killed run's parts are history, not this run's

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run_id = trainer.strategy.broadcast(f"{time.time_ns():x}{os.getpid():x}")  # the first process's

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: dict[str, Any],
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        lines = []
        for i, y in zip(prediction["index"], prediction["outputs"]):
            item = self.items[i]
            start = time.perf_counter()
            try:
                save_image(to_pil(y), self.out / item.relative)
                lines.append(self._line(item, "written", prediction["seconds"] + time.perf_counter() - start))
            except (OSError, ValueError) as e:
                lines.append(self._line(item, "failed", None, f"cannot be written ({e})"))
        lines += [self._line(self.items[i], "failed", None, error) for i, error in prediction["failed"]]
        with open(self.out / f".{MANIFEST}.{self.run_id}.rank{trainer.global_rank}", "a", encoding="utf-8") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
        if trainer.received_sigterm:  # Lightning's prediction loop notes a SIGTERM, then goes on to the end
            raise SIGTERMException

    def _line(self, item: Item, status: str, seconds: float | None, error: str | None = None) -> dict[str, Any]:
        return {"input": item.relative, "output": item.relative, "style": item.style or None, "seed": self.seed,
                "seconds": None if seconds is None else round(seconds, 4), "status": status, "error": error}


def _choices(header: ModelFile, paintings: Path | None) -> list[str]:
    """What `random` picks from: a gallery's styles, or the paintings of a folder."""
    if header.architecture == "gallery":
        return list(header.config["styles"])
    if paintings is not None:
        found = [str(p) for p in find_images(paintings)]
        if not found:
            raise ValueError(f"{paintings}: no paintings found")
        return found
    raise ValueError("--style-per-image random needs a gallery model, or an arbitrary-style one and --paintings DIR")


@dataclass(frozen=True)
class Run:
    model: Path
    root: Path
    out: Path
    devices: int | str = "auto"
    num_nodes: int = 1
    accelerator: str = "auto"
    batch_size: int = 4
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    size: int | None = None
    precision: str = "fp32"
    strength: float = 1.0
    preserve_color: bool = False
    style: str | None = None  # one style (or mix) for every image
    style_image: str | None = None  # one painting for every image (arbitrary-style model)
    per_image: str = "same"  # or "random"
    paintings: Path | None = None
    seed: int = 0


@dataclass
class Summary:
    """This run's outcome, as the first process read it from the manifest."""

    written: int = 0
    exists: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input relative to the folder, the problem)
    videos: int = 0  # found and left out: a dataset run takes images


@contextlib.contextmanager
def _lightning_quiet() -> Iterator[None]:
    """Lightning's loggers at WARNING for the run, then as they were: a caller may train next. And
    two of its warnings: the batch sampler returns every index once by construction (`batches`),
    which Lightning cannot know; its loader's (LOADER_WARNING)."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*custom batch sampler.*")
            warnings.filterwarnings("ignore", message=LOADER_WARNING)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run(r: Run) -> Summary | None:
    """Stylize the folder; on the first process, what this run did (from the merged manifest);
    None on the others."""
    if not r.root.is_dir():
        raise FileNotFoundError(f"{r.root}: " + ("a file; a dataset run takes a folder of images" if r.root.exists()
                                                 else "input folder not found"))
    if r.out.resolve() == r.root.resolve():  # outputs keep the inputs' names: each would be taken as done
        raise ValueError(f"{r.out}: the output folder is the input folder; write to another (-o OUT_FOLDER)")
    header = read_model(r.model, weights=False)  # the header alone: the network loads once, in the module
    if r.per_image == "random":
        styles = _choices(header, r.paintings)
    elif (header.architecture == "arbitrary") != bool(r.style_image):  # refused before any output folder is made
        raise ValueError(f"{r.model}: {NEEDS_PAINTING}" if not r.style_image else
                         f"{r.model}: this model has its own styles; --style-image needs an arbitrary-style model")
    elif header.architecture == "gallery" and not r.style:
        raise ValueError(needs_a_style(r.model, header.config["styles"]))
    else:
        styles = [r.style_image or r.style or ""]
    if r.out.exists() and not r.out.is_dir():
        raise ValueError(f"-o {r.out} is a file; a dataset run writes into a folder")
    try:
        r.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a read-only disk: these two were tracebacks
        raise ValueError(f"cannot write {r.out} ({e.strerror})") from None
    items, done, _ = plan(r.root, r.out, styles, r.per_image, r.seed)
    module = DatasetStylizer(r.model, items, r.root, r.batch_size, r.workers, r.max_pixels, r.size, r.precision,
                             r.strength, r.preserve_color)
    with _lightning_quiet():  # no tips about cloud loggers, no banners per process
        writer = _Writer(r.out, items, r.seed if r.per_image == "random" else None)
        # inference_mode off: under it the compiled int8 network ran 2x slower (fast_style.engine)
        trainer = L.Trainer(accelerator=r.accelerator, devices=r.devices, num_nodes=r.num_nodes, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                            inference_mode=False,
                            callbacks=[writer],
                            strategy="ddp" if (r.devices not in (1, "1") or r.num_nodes > 1) else "auto")
        if items:  # the same on every process: all of them predict, or none
            with loader_workers_killed_on_error():
                trainer.predict(module, return_predictions=False)
            trainer.strategy.barrier()
    if not trainer.is_global_zero:
        return None
    summary = Summary(exists=len(done), videos=len(outside(find_images(r.root, VIDEO_EXTENSIONS), r.out)))
    mine = f".{MANIFEST}.{writer.run_id}.rank" if writer.run_id else "\0"
    parts = sorted(r.out.glob(f".{MANIFEST}.*"))
    with open(r.out / MANIFEST, "a", encoding="utf-8") as manifest:
        for part in [p for p in parts if not p.name.startswith(mine)]:  # a killed run's lines: history
            manifest.writelines(line + "\n" for line in part.read_text(encoding="utf-8").splitlines() if _whole_line(line))
        for relative in done:
            manifest.write(json.dumps({"input": relative, "output": relative, "style": None, "seed": None,
                                       "seconds": 0, "status": "exists", "error": None}) + "\n")
        for part in [p for p in parts if p.name.startswith(mine)]:
            for line in part.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record["status"] == "written":
                    summary.written += 1
                else:
                    summary.failed.append((record["input"], record["error"]))
                manifest.write(line + "\n")
    for part in parts:
        part.unlink()
    sweep(r.out, [item.relative for item in items])
    return summary


def _whole_line(line: str) -> bool:
    """A kill can cut a manifest part's last line short."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def sweep(out: Path, relatives: list[str]) -> int:
    """Remove the temporary files a killed run left beside these outputs (fast_style.atomic names
    them .STEM.XXXXXXXX.SUFFIX), so that no half-written image stays in the folder."""
    names: dict[Path, set[str]] = {}
    for relative in relatives:
        names.setdefault((out / relative).parent, set()).add(Path(relative).name)
    removed = 0
    for folder, wanted in names.items():
        for path in folder.glob(".*"):
            m = re.fullmatch(r"\.(.+)\.[a-z0-9_]{8}(\.[^.]+)", path.name)
            if m and m[1] + m[2] in wanted and path.is_file():
                path.unlink()
                removed += 1
    return removed
