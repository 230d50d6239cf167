"""`train style=NAME [overrides]`: the command. Hydra composes the settings, cheap checks refuse
what cannot run, and fast_style.fit runs the rest: torch and Lightning are imported only then."""

from __future__ import annotations

import difflib
import itertools
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from fast_style.atomic import NAME_MAX
from fast_style.config import VGG_MIN_SIDE, LossConfig, StyleConfig, TransformerConfig
from fast_style.files import url_refused
from fast_style.images import photo_folder
from fast_style.styles import style_image_path

CONF_DIR = Path(__file__).parent / "conf"  # inside an installed wheel
if not CONF_DIR.is_dir():
    CONF_DIR = Path(__file__).parent.parent / "conf"  # a source checkout

# The dataclasses are the defaults: conf/style/*.yaml extend style_base, model=small and
# model=realtime extend model/default, and the loss group is LossConfig itself.
_store = ConfigStore.instance()
_store.store(name="style_base", node=StyleConfig)  # in no group: `train --help` would list it as a style
_store.store(group="loss", name="default", node=LossConfig)
_model_defaults = OmegaConf.structured(TransformerConfig)
OmegaConf.set_readonly(_model_defaults, False)  # a frozen dataclass; overrides must still apply
_store.store(group="model", name="default", node=_model_defaults)


def fresh_folder(path: str) -> str:
    """`path`, else `path_2`, `path_3`...: the first folder this run makes itself. Two runs started
    in one second (a shell loop's sweep, each with `&`) shared one timestamped folder: one config,
    one log and one model of the two, and their checkpoints mixed."""
    for folder in itertools.chain([path], (f"{path}_{n}" for n in itertools.count(2))):
        try:
            os.makedirs(folder)
            return folder
        except FileExistsError:
            continue
        except OSError as e:  # a read-only folder: it was Hydra's 100-line traceback
            raise SystemExit(f"error: cannot make the run folder {folder} ({e.strerror}); train from a folder you "
                             "can write to, or set hydra.run.dir=DIR (hydra.sweep.dir with -m)") from None
    return path  # not reached: the names never run out


OmegaConf.register_new_resolver("fresh", fresh_folder, replace=True, use_cache=True)  # cached: one folder a run


def _whole(low: int) -> Callable[[object], bool]:
    """A test for a whole number (a bool is none) of at least `low`."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def check_numbers(cfg: DictConfig) -> None:
    """Nonsense values fail here, in one line, before anything loads (`trainer.max_steps=abc` was
    a traceback from inside Lightning)."""
    for key, ok, want in [
        ("batch_size", _whole(1), "at least 1"),
        ("seed", lambda v: _whole(0)(v) and v < 2**32, "a whole number from 0 to 2**32 - 1"),  # 1.5 hung the run
        ("data.image_size", _whole(VGG_MIN_SIDE), (f"a whole number of pixels, {VGG_MIN_SIDE} or more (VGG-16's relu4_3 "
                                                   "comes after three 2x poolings)")),
        ("preview.every_n_steps", _whole(0), "a whole number of steps, or 0 for none"),
        ("preview.count", _whole(0), "a whole number of photos, 0 or more"),
        ("data.num_workers", _whole(0), "0 or more"),
        ("optim.lr", lambda v: v > 0, "positive"),
        ("optim.norm_lr", lambda v: v is None or v > 0, "positive, or null for optim.lr"),
        ("optim.ema", lambda v: v is None or 0 < v < 1, "between 0 and 1 (e.g. 0.995), or null"),
        ("checkpoint_every_n_steps", _whole(1), "at least 1"),
        ("channels_last", lambda v: v in (True, False, "auto"), "auto, true or false"),
        ("new_painting", lambda v: v in ("norms", "rehearse", "network"), "norms, rehearse or network"),
        ("stability.weight", lambda v: v >= 0, "0 or more"),
        ("stability.noise", lambda v: v >= 0, "0 or more"),
        ("stability.shift", _whole(0), "a whole number of pixels, 0 or more"),
        ("stability.zoom", lambda v: 0 <= v < 0.5, "from 0 to below 0.5 (e.g. 0.04)"),
        ("style.size", lambda v: v is None or _whole(1)(v), "at least 1, or null for the painting's own size"),
        ("style.weight", lambda v: v >= 0, "0 or more"),
        ("loss.content_weight", lambda v: v >= 0, "0 or more"),
        ("loss.tv_weight", lambda v: v >= 0, "0 or more"),
        # 0 trained nothing and exported the untrained network under the style's name
        ("trainer.max_steps", lambda v: _whole(-1)(v) and v != 0, "a whole number, 1 or more, or -1 for no limit"),
        ("trainer.max_epochs", lambda v: v is None or _whole(-1)(v) and v != 0, "a whole number, 1 or more, or -1 for no limit"),
        ("trainer.log_every_n_steps", _whole(1), "at least 1"),
        ("trainer.val_check_interval", lambda v: v is None or _whole(1)(v), "a whole number of steps, at least 1"),
    ]:
        value = OmegaConf.select(cfg, key)
        try:
            good = ok(value)
        except TypeError:  # a word where a number goes
            good = False
        if not good:
            raise ValueError(f"{key} must be {want}, not {value}")


def check_paths(cfg: DictConfig) -> None:
    """The photo folder and the painting, the paths a first run gets wrong (`train style=wave`
    looks for MS-COCO in data/coco/): said at once, not after 10 s of imports in a run folder."""
    if OmegaConf.is_missing(cfg.data, "root"):
        raise FileNotFoundError("data=folder takes the folder of photos: data.root=DIR")
    photo_folder(cfg.data.root)
    if not cfg.style.images and not cfg.style.folder and not OmegaConf.is_missing(cfg.style, "image"):
        style_image_path(str(cfg.style.image))


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    signal.signal(signal.SIGTERM, _terminated)  # each run of a sweep: the last one's Lightning left the default
    try:
        check_numbers(cfg)  # again: override_fault leaves Hydra's flags (--config-name) and interval sweeps to it
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    # torch and Lightning: 3-10 s of imports, paid once the settings are sound
    from fast_style.fit import run

    run(cfg, Path(HydraConfig.get().runtime.output_dir))


def unknown_styles(argv: list[str]) -> list[str]:
    """Names in `style=NAME` or a sweep's `style=A,B` without a conf/style/NAME.yaml. Sweep
    functions (`choice(...)`, `glob(...)`) and interpolations are left to Hydra."""
    unknown = []
    for arg in argv:
        value = arg.removeprefix("style=")
        if not arg.startswith("style=") or any(c in value for c in "()[]${}"):
            continue
        unknown += [n for n in value.split(",") if not (CONF_DIR / "style" / f"{n}.yaml").is_file()]
    return unknown


def naming_fault(argv: list[str]) -> str | None:
    """What is wrong with the name the model would get: a `style.name` that is not a plain file
    name, or a `style.image` of another painting without one, which trained a model named after
    the default style (checkpoints/starry_night.safetensors, shadowing the shipped one)."""
    given = {arg.lstrip("+").split("=", 1)[0]: _unquoted(arg.split("=", 1)[1]) for arg in argv if "=" in arg}
    if "style.name" in given:
        name = given["style.name"]
        if not re.fullmatch(r"\w[\w.-]*", name):
            return f"style.name={name} is not a plain name (letters, digits, _ . -): it names the model's files"
        longest = NAME_MAX - len(".safetensors")  # it failed at the export, after the training
        return None if len(name.encode()) <= longest else (
            f"style.name is {len(name.encode())} bytes long; it names the model's files, which take {longest} at most")
    image = given.get("style.image")
    if image is None or "$" in image:
        return None
    try:
        stem = style_image_path(image).stem
    except FileNotFoundError:
        return None  # said in its own words once the run starts
    default = next(d["style"] for d in OmegaConf.load(CONF_DIR / "train.yaml").defaults if "style" in d)
    names = given.get("style", default).split(",")
    if other := [n for n in names if n != stem]:
        suggestion = re.sub(r"[^\w.-]", "_", stem)
        return (f"style.image={image} would train a model named {other[0]} (exported as {other[0]}.safetensors) on "
                f"another painting; name it: style.name={suggestion}")
    return None


def _unquoted(value: str) -> str:
    """A value as Hydra reads it, its quotes off: `style.name='café'` (the grammar takes é quoted
    only) was not a plain name, for its quotes."""
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value


def _grammar_fault(arg: str, error: HydraException) -> str:
    """Hydra's reason in a few words: its first line, without the link, or the character its
    lexer stopped at (the report showed a line of spaces and a caret, or only the link)."""
    head, *rest = str(error).splitlines()
    at = len(rest[0]) - 1 - (len(head) - len(arg)) if rest else -1  # the caret's column, in `arg`
    shaped = head.startswith("LexerNoViableAltException") and head.endswith(arg) and rest and rest[0].strip() == "^"
    if shaped and 0 <= at < len(arg):
        return f"{arg}: not NAME=VALUE ({arg[at]!r} is taken in a quoted value only: KEY='VALUE')"
    if head.startswith("Error parsing override") and rest:
        head = rest[0]
    return f"{arg}: not NAME=VALUE ({head})"


def override_fault(argv: list[str], paths: bool = True) -> str | None:
    """A mistyped setting or option, a value of the wrong type, a nonsense number or a missing
    photo folder or painting, in one line and before Hydra makes a run folder. Hydra's report took five or six lines, and for a mistyped
    key advised adding it with `+` (`+trainer.max_step=5`), which then failed in Lightning with a
    traceback. Each value of a sweep is checked. Hydra's flags (but -m) and `hydra.*` are its own."""
    if any(arg.startswith("-") and arg not in ("-m", "--multirun") for arg in argv):
        return None  # --cfg, --config-name NAME, ... change what is composed
    overrides = [arg for arg in argv if not arg.startswith("-")]
    parser = OverridesParser.create()
    parsed = []
    for arg in overrides:
        try:
            parsed += parser.parse_overrides([arg])
        except HydraException as e:
            return _grammar_fault(arg, e)
    if any(o.key_or_group == "hydra.job.chdir" and o.value() is True for o in parsed):  # "data.root=photos: not found"
        return ("hydra.job.chdir=true: not with train, whose relative paths (data.root=photos) are read from the folder it "
                "starts in; its files go to the run folder without it")
    if glob := next((o for o in parsed if isinstance(o.value(), Glob) and o.key_or_group not in GROUPS), None):
        key = glob.key_or_group  # Hydra launched no run, and said nothing else
        return f"{glob.input_line}: glob() sweeps a group's options (style=glob(st*)); for {key}, list them: {key}=A,B"
    if any(o.is_interval_sweep() for o in parsed):
        return None  # Hydra's to answer: for optimisers' sweepers
    groups = {o.key_or_group: o for o in parsed if o.key_or_group in GROUPS and o.package is None}
    for group, o in groups.items():
        names = _values(o, escaped=True)
        if not names:  # an empty glob: Hydra launched no run, and said nothing else
            return f"{o.input_line}: matches no {group} (the {group}s: {', '.join(GROUPS[group])})"
        if group != "style" and (bad := [n for n in names if isinstance(n, str) and n not in GROUPS[group]]):
            return f"{group}={bad[0]}: no such {group} (the {group}s: {', '.join(GROUPS[group])})"
    choices = [f"{g}={_values(o, escaped=True)[0]}" for g, o in groups.items()]
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            composed = compose("train", overrides=choices)
    except HydraException:
        return None  # said by Hydra in its own words
    known = set(_keys(OmegaConf.to_container(composed, resolve=False)))
    for o in parsed:
        key = o.key_or_group
        head, _, index = key.rpartition(".")
        if (o.type in (OverrideType.ADD, OverrideType.FORCE_ADD) or key in groups or o.package is not None
                or key.startswith(("hydra.", "hydra/"))
                or index.isdigit() and isinstance(OmegaConf.select(composed, head), ListConfig)):  # style.images.0=
            continue
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}?" if near else "the settings: docs/training.md#configuration"
            more = "; Lightning's other Trainer arguments go in as +trainer.NAME=VALUE" if key.startswith("trainer.") else ""
            return f"{key}: no such setting ({hint}){more}"
        if refused := next((r for v in _values(o) if isinstance(v, str) and (r := url_refused(v))), None):
            return f"{key}={refused}"
    for variant in _variants([o for o in parsed if not o.key_or_group.startswith(("hydra.", "hydra/"))]):
        try:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = compose("train", overrides=variant)
            check_numbers(cfg)
            if paths:  # not for a documented command's path/to/photos
                check_paths(cfg)
        except FileNotFoundError as e:
            return str(e)
        except HydraException as e:  # "Error merging override KEY=VALUE", and why in its cause
            merging = str(e).removeprefix("Error merging override ")
            return f"{merging}: {str(e.__cause__).splitlines()[0]}" if merging != str(e) and e.__cause__ else None
        except ValueError as e:
            return str(e)
    return None


def _variants(overrides: list[Override]) -> list[list[str]]:
    """Enough of a sweep's runs to try each value once: every sweep at its first value, then each
    other value in turn."""
    lines = [[f"{o.get_key_element()}={value}" for value in _values(o, escaped=True)] if o.is_sweep_override()
             else [str(o.input_line)] for o in overrides]
    first = [options[0] for options in lines]
    return [first] + [first[:i] + [line] + first[i + 1:] for i, options in enumerate(lines) for line in options[1:]]


def _values(o: Override, escaped: bool = False) -> list[Any]:
    """Each value of an override: a sweep's each, a glob's among its group's options (Hydra's
    iterators fail on a glob: a traceback for `style=glob(*)`). `escaped` as the grammar reads
    them (`https\\://`), else as the run gets them."""
    if isinstance(glob := o.value(), Glob):
        return glob.filter(GROUPS[o.key_or_group])
    if not o.is_sweep_override():
        return [o.value()]
    return list(o.sweep_string_iterator() if escaped else o.sweep_iterator())


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every setting's dotted name, groups' included (`trainer`, `trainer.max_steps`)."""
    if not isinstance(node, dict):
        return []
    return [name for k, v in node.items() for name in (prefix + str(k), *_keys(v, f"{prefix}{k}."))]


def _group_options() -> dict[str, list[str]]:
    """Each config group's options: its YAML files and the dataclasses stored above."""
    options: dict[str, set[str]] = {d.name: {f.stem for f in d.glob("*.yaml")} for d in CONF_DIR.iterdir() if d.is_dir()}
    for group, name in (("loss", "default"), ("model", "default")):
        options.setdefault(group, set()).add(name)
    return {group: sorted(names) for group, names in options.items()}


GROUPS = _group_options()


def expand_home(argv: list[str]) -> list[str]:
    """`data.root=~/photos` with the home folder written out: the shell expands `~` only at the
    start of a word, and Hydra's override grammar refuses it (a LexerNoViableAltException)."""
    home = re.compile(r"(?<=[=,\[])~[^/,\]]*")
    return [home.sub(lambda m: os.path.expanduser(m[0]), arg) if "=" in arg else arg for arg in argv]


def main() -> None:
    previous = signal.signal(signal.SIGTERM, _terminated)  # fast_style.fit hands it to Lightning's loop
    try:
        _start(sys.argv[1:])
    except KeyboardInterrupt:  # before Lightning's loop, which takes its own (imports, the photos' scan): a traceback
        print("interrupted before the first step: nothing to resume", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)  # as a shell reports an interrupt
    except Terminated:
        print("stopped by SIGTERM before the first step: nothing to resume", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start(argv: list[str]) -> None:
    """Our checks of the overrides, each one line, then Hydra's run."""
    sys.argv[1:] = argv = expand_home(argv)
    # An unknown style gets one line, before Hydra's multi-line report.
    if unknown := unknown_styles(argv):
        known = sorted(p.stem for p in (CONF_DIR / "style").glob("*.yaml"))
        near = difflib.get_close_matches(unknown[0].strip().lower(), known, n=1)  # style=Wave, style="starry night"
        hint = f"did you mean {near[0]}? " if near else ""
        print(f"error: unknown style {unknown[0]!r} ({hint}available: {', '.join(known)}; or set style.image=PATH)",
              file=sys.stderr)
        sys.exit(1)
    if fault := override_fault(argv) or naming_fault(argv):  # before Hydra makes a run folder
        print(f"error: {fault}", file=sys.stderr)
        sys.exit(1)
    _hydra_main()


class Terminated(BaseException):
    """SIGTERM (a scheduler's or a container's stop) in the seconds before Lightning's loop: it
    ended the process without a line, where Ctrl-C said that there was nothing to resume."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


if __name__ == "__main__":
    main()
