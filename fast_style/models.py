"""The shipped models: checkpoints/NAME.safetensors, found by name (`stylize --style NAME`)."""

from __future__ import annotations

from pathlib import Path

from fast_style.model_file import ModelFileError, read_model

CHECKPOINT_DIRS = [
    Path.cwd() / "checkpoints",
    Path(__file__).parent / "checkpoints",  # inside an installed wheel
    Path(__file__).parent.parent / "checkpoints",  # a source checkout
]


def shipped_models() -> dict[str, Path]:
    """Every checkpoints/NAME.safetensors, the first of CHECKPOINT_DIRS winning."""
    found: dict[str, Path] = {}
    for folder in reversed(CHECKPOINT_DIRS):
        if folder.is_dir():
            found.update({p.stem: p for p in folder.glob("*.safetensors")})
    return dict(sorted(found.items()))


def named_model(name: str) -> Path:
    for folder in CHECKPOINT_DIRS:
        if (folder / f"{name}.safetensors").is_file():
            return folder / f"{name}.safetensors"
    raise ModelFileError(f"no trained model named {name!r} (available: {', '.join(shipped_models()) or 'none'})")


def sheet_models() -> tuple[dict[str, Path], list[str]]:
    """One model per painting for a contact sheet (variants such as _small left out), and one
    line for each shipped file that cannot be read."""
    shipped = shipped_models()
    models, errors = {}, []
    for name, path in shipped.items():
        try:
            painting = Path(read_model(path).record.style_image or name).stem
        except ModelFileError as e:
            errors.append(str(e))
            continue
        if painting == name or painting not in shipped:  # not a variant (e.g. _small) of another shipped style
            models[name] = path
    return models, errors
