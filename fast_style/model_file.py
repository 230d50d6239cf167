"""Trained networks on disk: `.safetensors` with the config in its metadata (what we ship),
or a Lightning `.ckpt`. Neither path runs code from the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fast_style.atomic import atomic_write
from fast_style.transformer import TransformerConfig, TransformerNet


class ModelFileError(RuntimeError):
    pass


def save_model(path: str | Path, net: TransformerNet, info: dict[str, Any]) -> Path:
    """Write weights + `{"config": ..., **info}` (JSON in the metadata) atomically."""
    path = Path(path)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    metadata = {"fast_style": json.dumps({"config": net.config.to_dict(), **info})}
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def read_model(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, info) from a .safetensors or Lightning .ckpt file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # noqa: BLE001 - corrupt or foreign files all end here
            raise ModelFileError(f"{path}: not a readable safetensors file ({e})") from None
        if "fast_style" not in meta:
            raise ModelFileError(f"{path}: no fast_style metadata; not a model exported by fast_style")
        return state, json.loads(meta["fast_style"])
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{path}: cannot be loaded safely as a checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ModelFileError(f"{path}: not a Lightning checkpoint of fast_style")
    hparams = ckpt.get("hyper_parameters", {})
    state = {k.removeprefix("transformer."): v for k, v in ckpt["state_dict"].items() if k.startswith("transformer.")}
    style, loss = hparams.get("style", {}), hparams.get("loss", {})
    info = {"config": hparams.get("model", {}), "style": style.get("name"), "steps": ckpt.get("global_step")}
    # What evaluate needs to score the model against the loss it was trained on, as an export has it.
    if "image" in style:
        info.update(style_image=str(style["image"]), style_size=style.get("size"))
    if "weight" in style and "content_weight" in loss:
        info["weights"] = {"content": loss["content_weight"], "style": style["weight"], "tv": loss.get("tv_weight", 0.0)}
    return state, info


def load_model(path: str | Path) -> tuple[TransformerNet, dict[str, Any]]:
    """Rebuild the network from the file alone."""
    state, info = read_model(path)
    try:
        net = TransformerNet(TransformerConfig(**info.get("config", {})))
        net.load_state_dict(state)
    except (TypeError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0]
        raise ModelFileError(f"{path}: weights do not fit the declared network ({first})") from None
    return net.eval(), info
