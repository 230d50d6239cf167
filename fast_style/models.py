"""The shipped models: checkpoints/NAME.safetensors, found by name (`stylize --style NAME`), the
styles inside gallery files (`--style starry_night=0.6,wave=0.4`), and the arbitrary-style
network that `--style-image PAINTING` uses (`any`)."""

from __future__ import annotations

import difflib
import math
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
    raise _no_model(name, list(shipped_models()))


def _no_model(name: str, names: list[str], tail: str = "") -> ModelFileError:
    lower, key = {n.lower(): n for n in names}, name.strip().lower()  # "Wave", "Starry Night" too
    starting = [n for n in names if n.lower().startswith(key)]  # a painter alone: "monet" for monet_water_lilies
    close = starting if len(starting) == 1 else [lower[c] for c in difflib.get_close_matches(key, list(lower), n=1)]
    hint = f"did you mean {close[0]}? " if close else ""
    return ModelFileError(f"no trained model named {name!r} ({hint}available: {', '.join(names) or 'none'}{tail})")


ARBITRARY = "any"  # the shipped arbitrary-style network: checkpoints/any.safetensors
NEEDS_PAINTING = "an arbitrary-style network: give it a painting (--style-image PAINTING)"


def needs_a_style(path: Path, styles: tuple[str, ...] | list[str]) -> str:
    """The command line's refusal of a gallery without --style: it would paint its first style, unasked."""
    return f"{path}: a gallery of {len(styles)} styles: pick one or a mix with --style (its styles: {', '.join(styles)})"


def arbitrary_model() -> Path:
    """The network `stylize --style-image PAINTING` uses when no --model is given."""
    try:
        return named_model(ARBITRARY)
    except ModelFileError:
        raise ModelFileError(f"no arbitrary-style model ({ARBITRARY}.safetensors) in {CHECKPOINT_DIRS[-1]}: "
                             "train one (train style=any) and pass --model FILE, or use --optimize") from None


def sheet_models() -> tuple[dict[str, tuple[Path, str | None]], list[str]]:
    """One entry per style for a contact sheet: name -> (file, style inside it or None), every
    style of every gallery included, variants of a style (starry_night_small) left out; and one
    line for each shipped file that cannot be read."""
    index, errors = style_index()
    chosen = {}
    for name, (path, inside) in index.items():
        if inside is None:
            painting = Path(read_model(path, weights=False).record.style_image or name).stem
            if painting != name and painting in index:  # a variant (e.g. _small) of another shipped style
                continue
        chosen[name] = (path, inside)
    return chosen, errors


Style = str | dict[str, float]


def parse_style(spec: str) -> Style:
    """`wave` -> "wave"; `starry_night=0.6,wave=0.4` -> {"starry_night": 0.6, "wave": 0.4};
    `starry_night,wave`, names alone, an even mix (it was taken for one style's name)."""
    if "=" not in spec and "," not in spec:
        return spec
    mix: dict[str, float] = {}
    for part in spec.split(","):
        name, _, weight = part.partition("=") if "=" in spec else (part, "", "1")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"--style {spec!r}: {part!r} is not NAME=WEIGHT") from None
        name = name.strip()
        if not name or not math.isfinite(value):  # inf and nan were a traceback
            raise ValueError(f"--style {spec!r}: {part!r} is not NAME=WEIGHT (a name, a finite weight)")
        if name in mix:
            raise ValueError(f"--style {spec!r}: {name} is named twice")
        mix[name] = value
    return mix


def file_styles(path: Path) -> tuple[str, ...]:
    """The style names one model file offers: a gallery's paintings, or the file's one style."""
    model = read_model(path, weights=False)
    if model.architecture == "gallery":
        return tuple(model.config["styles"])
    if model.architecture == "arbitrary":
        raise ModelFileError(f"{path}: {NEEDS_PAINTING}; it has no styles of its own")
    return (model.record.style or path.stem,)


def _gallery_styles(path: Path) -> tuple[str, ...]:
    try:
        model = read_model(path, weights=False)
    except ModelFileError:
        return ()
    return tuple(model.config["styles"]) if model.architecture == "gallery" else ()


def style_index() -> tuple[dict[str, tuple[Path, str | None]], list[str]]:
    """Every style the shipped models offer: name -> (file, the style inside it, or None for a
    single-style file, whose name is its file's). A file that cannot be read is one line."""
    index: dict[str, tuple[Path, str | None]] = {}
    errors = []
    for name, path in shipped_models().items():
        try:
            model = read_model(path, weights=False)
        except ModelFileError as e:
            errors.append(str(e))
            continue
        if model.architecture == "gallery":
            for style in model.config["styles"]:
                index.setdefault(style, (path, style))  # a single-style file of the same name wins
        elif model.architecture == "arbitrary":
            continue  # no named styles: it takes any painting (stylize --style-image)
        else:
            index[name] = (path, None)
    return dict(sorted(index.items())), errors


def resolve_style(spec: str, model: Path | None = None) -> tuple[Path, Style | None]:
    """The file and the style inside it for `--style SPEC` (with `--model FILE`, inside that file)."""
    style = parse_style(spec)
    names = [style] if isinstance(style, str) else list(style)
    if model is not None:
        offered = file_styles(model)
        missing = [n for n in names if n not in offered]
        if missing:
            raise ModelFileError(f"{model}: no style {missing[0]!r} (its styles: {', '.join(offered)})")
        return model, style if len(offered) > 1 else None
    if isinstance(style, str) and style in shipped_models():
        return named_model(style), None
    index, _ = style_index()
    missing = [n for n in names if n not in index]
    if missing:
        raise _no_model(missing[0], list(index), "; stylize --list-styles")
    if isinstance(style, dict):  # a mix: the gallery that has every one of them, though single-style files share names
        galleries = [path for path in shipped_models().values() if set(names) <= set(_gallery_styles(path))]
        if galleries:
            return galleries[0], style
    files = {index[n][0] for n in names}
    if len(files) > 1:
        raise ModelFileError(f"--style {spec}: these styles live in different files ({', '.join(sorted(map(str, files)))}); "
                             "a mix takes the styles of one gallery file")
    path = files.pop()
    return path, style if index[names[0]][1] is not None else None
