"""Trained networks on disk: `.safetensors` with a versioned JSON header in its metadata (what we
ship), or a Lightning `.ckpt`. One reader for both; neither path runs code from the file.

Format 1 (this version) stores `{"format_version": 1, "architecture": NAME, "config": {...},
"record": {...}}`: the architecture is looked up in architectures() and rebuilt from its config,
and the record says what the network was trained on. Files from before versioning (format 0:
the config and the record's fields side by side) are read as the `johnson` architecture."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import safe_open

from fast_style.atomic import atomic_write

# torch and the networks are imported where weights are: a file's header (`stylize --list-styles`,
# a style's name) is read without them, in a fraction of a second instead of 3-4.
if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT_VERSION = 1
# name -> (module, config dataclass, network class): the networks a model file can hold. Johnson et
# al.'s transformation network, in either of its layouts, is `johnson`; many paintings in one,
# `gallery`; any painting, read at run time, `arbitrary`. Named here, imported on use.
_REGISTRY = {"johnson": ("fast_style.transformer", "TransformerConfig", "TransformerNet"),
             "gallery": ("fast_style.gallery", "GalleryConfig", "GalleryNet"),
             "arbitrary": ("fast_style.arbitrary", "ArbitraryConfig", "ArbitraryNet")}
ARCHITECTURE_NAMES = tuple(_REGISTRY)


def architectures() -> dict[str, tuple[type, type[nn.Module]]]:
    """The registry's classes, imported (with torch) on the first call."""
    found = {}
    for name, (module, config, network) in _REGISTRY.items():
        imported = importlib.import_module(module)
        found[name] = (getattr(imported, config), getattr(imported, network))
    return found


class ModelFileError(RuntimeError):
    pass


@dataclass
class ModelRecord:
    """What a network was trained on and how: the facts of its model card, saved with it."""

    style: str | None = None  # the name `stylize --style` knows it by
    style_image: str | None = None  # the painting: a bundled name or a path (evaluate finds it again)
    style_images: list[str] | None = None  # a gallery's paintings, in the order of its styles
    style_folder: str | None = None  # an arbitrary-style network's paintings
    held_out: list[str] | None = None  # and those it never saw (evaluate's default)
    style_size: int | None = None  # longest side of the painting for its Gram matrices
    weights: dict[str, float] = field(default_factory=dict)  # loss weights: content, style, tv
    steps: int = 0
    images_seen: int = 0
    image_size: int | None = None  # training crops, pixels a side
    final_losses: dict[str, float] = field(default_factory=dict)
    val_losses: dict[str, float] | None = None  # mean losses on photos never trained on, as `evaluate` scores them
    val_root: str | None = None  # and their folder (data.val_root)
    stability: dict[str, float] | None = None  # the video term's settings, when it was on
    init_weights: str | None = None  # the model this one was trained further from
    device: str | None = None
    precision: str | None = None
    trained: str | None = None  # ISO date and time of the export

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})  # fields of newer versions are skipped

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def record_from_hparams(hparams: Mapping[str, Any], steps: int = 0) -> ModelRecord:
    """The record of a run from its settings (StyleTransferModule's hyperparameters): shared by
    the export and by the reader of checkpoints, so both tell evaluate the same thing."""
    style, loss = hparams.get("style") or {}, hparams.get("loss") or {}
    stability = hparams.get("stability") or {}
    return ModelRecord(
        style=style.get("name"),
        style_image=str(style["image"]) if style.get("image") not in (None, "???") and not style.get("images") else None,
        style_images=[str(image) for image in style["images"]] if style.get("images") and not style.get("folder") else None,
        style_folder=str(style["folder"]) if style.get("folder") else None,
        held_out=list(hparams["held_out"]) if hparams.get("held_out") else None,
        style_size=style.get("size"),
        weights={"content": loss["content_weight"], "style": style["weight"], "tv": loss.get("tv_weight", 0.0)}
        if "weight" in style and "content_weight" in loss else {},
        steps=steps,
        stability=dict(stability) if stability.get("weight") else None,
    )


def network_settings(model: dict[str, Any], style: dict[str, Any],
                     extend: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The architecture and config a run's settings make: an arbitrary-style network where
    `style.folder` is set; a gallery where `style.images` lists paintings (named by their files'
    stems), or where the run adds `style` to a gallery whose styles are `extend`; else Johnson's
    network. Training builds its network with this, and the checkpoint reader rebuilds it the same way."""
    if style.get("folder"):
        from fast_style.arbitrary import ArbitraryConfig

        return "arbitrary", {**model, "style_size": style.get("size") or ArbitraryConfig.style_size}
    if extend:
        return "gallery", {**model, "styles": [*extend, style["name"]]}
    if style.get("images"):
        return "gallery", {**model, "styles": [Path(str(image)).stem for image in style["images"]]}
    return "johnson", dict(model)


def architecture_of(net: nn.Module) -> str:
    for name, (_, cls) in architectures().items():
        if type(net) is cls:
            return name
    raise ValueError(f"{type(net).__name__} is not a registered architecture ({', '.join(ARCHITECTURE_NAMES)})")


def save_model(path: str | Path, net: nn.Module, record: ModelRecord | dict[str, Any],
               dtype: torch.dtype | None = None) -> Path:
    """Write weights + the format-1 header atomically. Parameters are stored in `dtype`: float16
    halves the file, and the pictures stay within 1/255 of float32's (docs/design.md, measured);
    buffers (an arbitrary network's input statistics) stay float32. The reader takes either."""
    import torch
    from safetensors.torch import save_file

    dtype = dtype or torch.float16
    path = Path(path)
    record = record if isinstance(record, ModelRecord) else ModelRecord.from_dict(record)
    header = {"format_version": FORMAT_VERSION, "architecture": architecture_of(net),
              "config": net.config.to_dict(), "record": record.to_dict()}
    parameters = {name for name, _ in net.named_parameters()}

    def stored(name: str, v: torch.Tensor) -> torch.Tensor:
        fits = name in parameters and v.abs().max() <= torch.finfo(dtype).max  # else float32, not inf
        return v.detach().to("cpu", dtype if fits else torch.float32).contiguous()

    state = {k: stored(k, v) for k, v in net.state_dict().items()}
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata={"fast_style": json.dumps(header)})
    return path


@dataclass
class ModelFile:
    """A model file as read, before the network is built."""

    architecture: str
    config: dict[str, Any]
    record: ModelRecord
    state: dict[str, torch.Tensor]
    format_version: int


def _header(path: Path, meta: dict[str, str]) -> dict[str, Any]:
    if "fast_style" not in meta:
        raise ModelFileError(f"{path}: no fast_style metadata; not a model exported by fast_style")
    try:
        header = json.loads(meta["fast_style"])
    except ValueError as e:
        raise ModelFileError(f"{path}: its fast_style metadata is not JSON ({e})") from None
    version = header.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format {version} is newer than this fast_style reads "
                             f"(up to {FORMAT_VERSION}); upgrade fast_style")
    if version == 0:  # before versioning: the record's fields beside the config
        record = {k: v for k, v in header.items() if k != "config"}
        header = {"architecture": "johnson", "config": header.get("config", {}), "record": record}
    return {**header, "format_version": version}


MODEL_SUFFIXES = (".safetensors", ".ckpt")


def read_model(path: str | Path, weights: bool = True) -> ModelFile:
    """A .safetensors (any format version) or a Lightning .ckpt of fast_style. `weights=False`
    reads a .safetensors file's header alone (its `state` is then empty): to list styles."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt" if weights else "numpy") as f:  # numpy: no torch
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()} if weights else {}
        except Exception as e:  # noqa: BLE001 - corrupt or foreign files all end here
            raise ModelFileError(f"{path}: not a readable safetensors file ({e})") from None
        header = _header(path, meta)
        return ModelFile(header["architecture"], header.get("config", {}), ModelRecord.from_dict(header.get("record", {})),
                         state, header["format_version"])
    if not zipfile.is_zipfile(path):  # what torch.save writes; torch.load's own error for a photo is "pop from empty list"
        raise ModelFileError(f"{path}: not a model file (a .safetensors exported by train, or a Lightning .ckpt)")
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's own words were a paragraph with terminal escapes, on how to load it unsafely
        raise ModelFileError(f"{path}: not a checkpoint of fast_style: it holds Python objects besides weights, which "
                             "loading would run (a fast_style run's checkpoints hold weights and settings only)") from None
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{path}: cannot be loaded as a checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:  # without settings:
        raise ModelFileError(f"{path}: not a Lightning checkpoint of fast_style (it has no fast_style settings)")  # "do not fit"
    hparams = ckpt.get("hyper_parameters", {})
    # The weights the run would export: its moving average where it keeps one (optim.ema).
    ema = ckpt["state_dict"].get("ema.n_averaged", torch.zeros(())).item() > 0
    prefix = "ema.module." if ema else "transformer."
    state = {k.removeprefix(prefix): v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    # A run started from init_weights counts that model's training too (older checkpoints: the run's alone).
    before, steps = ckpt.get("trained_before") or {}, ckpt.get("global_step", 0)
    record = dataclasses.replace(record_from_hparams(hparams, before.get("steps", 0) + steps),
                                 images_seen=before.get("images_seen", 0) + steps * before.get("images_per_step", 0))
    architecture, config = network_settings(hparams.get("model") or {}, hparams.get("style") or {}, hparams.get("extend"))
    return ModelFile(architecture, config, record, state, FORMAT_VERSION)


def build_network(architecture: str, config: dict[str, Any]) -> nn.Module:
    if architecture not in ARCHITECTURE_NAMES:
        raise ValueError(f"unknown architecture {architecture!r} (known: {', '.join(ARCHITECTURE_NAMES)})")
    config_class, net_class = architectures()[architecture]
    return net_class(config_class(**config))


def load_model(path: str | Path) -> tuple[nn.Module, ModelRecord]:
    """Rebuild the network from the file alone."""
    model = read_model(path)
    if model.architecture not in ARCHITECTURE_NAMES:
        raise ModelFileError(f"{path}: architecture {model.architecture!r} is not one this fast_style knows "
                             f"({', '.join(ARCHITECTURE_NAMES)}); upgrade fast_style")
    known = {f.name for f in dataclasses.fields(architectures()[model.architecture][0])}
    if unknown := sorted(set(model.config) - known):
        raise ModelFileError(f"{path}: its network has settings this fast_style does not know ({', '.join(unknown)}); "
                             "upgrade fast_style")
    import torch

    if damaged := [k for k, v in model.state.items() if v.is_floating_point() and not torch.isfinite(v).all()]:
        raise ModelFileError(f"{path}: weights {damaged[0]} hold NaN or infinite values (a damaged file?): "
                             "every picture would be black")  # it was, silently
    try:
        net = build_network(model.architecture, model.config)
        net.load_state_dict(model.state)
    except (TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0]
        raise ModelFileError(f"{path}: weights do not fit the declared network ({first})") from None
    return net.eval(), model.record
