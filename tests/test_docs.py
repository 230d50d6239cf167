"""The documents a user follows: their links land, docs/stylize.md names every option of stylize and
evaluate, and docs/training.md every key of the training config."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from fast_style import evaluate
from fast_style.stylize import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links(document: Path) -> list[str]:
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text())
            if not target.startswith(("http://", "https://", "mailto:"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_link_lands_on_a_file_and_heading(document: Path) -> None:
    broken = []
    for target in _links(document):
        path, _, anchor = target.partition("#")
        file = (document.parent / path) if path else document
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", file.read_text(), re.MULTILINE)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(f"{target}: no such heading")
    assert not broken, broken


def test_the_anchor_rule_matches_a_known_heading() -> None:
    # The links above are only as good as this rule; docs/video.md links here from the README.
    assert _anchor("The grid follows the scene: pans and zooms without flicker, for every model") == \
        "the-grid-follows-the-scene-pans-and-zooms-without-flicker-for-every-model"


def test_docs_stylize_names_every_option_of_stylize_and_evaluate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--help"])
    options = set(re.findall(r"--[a-z][a-z-]*[a-z]", build_parser().format_help() + capsys.readouterr().out))
    documented = set(re.findall(r"--[a-z][a-z-]*[a-z]", (ROOT / "docs" / "stylize.md").read_text()))
    missing = sorted(options - documented - {"--help"})
    assert not missing, missing


def test_the_data_readme_names_every_photo_suffix_a_folder_is_searched_for() -> None:
    """It said `.jpg .jpeg .png .webp .bmp` long after TIFF, HEIC, AVIF and .jfif joined."""
    from fast_style.images import IMAGE_EXTENSIONS

    listed = re.search(r"searched recursively, linked folders included, for\s+`([^`]+)`", (ROOT / "data" / "README.md").read_text())
    assert listed and listed[1].split() == list(IMAGE_EXTENSIONS)


def test_docs_training_names_every_key_of_the_train_config() -> None:
    config = OmegaConf.load(ROOT / "conf" / "train.yaml")
    text = (ROOT / "docs" / "training.md").read_text()
    keys = [f"{group}.{key}" if isinstance(value, DictConfig) else group
            for group, value in config.items() if group not in ("defaults", "hydra")
            for key in (value if isinstance(value, DictConfig) else [None])]
    missing = [k for k in keys if f"`{k}`" not in text and f"`{k.split('.')[0]}.*`" not in text]
    assert not missing, missing


def _train_commands() -> list[tuple[str, list[str]]]:
    """Each `uv run train ...` of the documents, continuation lines joined, comments dropped."""
    commands = []
    for document in DOCUMENTS:
        text = document.read_text().replace("\\\n", " ")
        for line in re.findall(r"^\s*(?:nohup )?uv run train (.*)$", text, re.MULTILINE):
            line = re.sub(r"<[^>]*>", "placeholder", line)  # init_weights=<the 282-step checkpoint>
            args = shlex.split(line.split(" # ")[0].split("  #")[0].split(" >")[0].rstrip(" &"))
            commands.append((f"{document.relative_to(ROOT)}: train {line.strip()[:60]}", args))
    return commands


TRAIN_COMMANDS = _train_commands()


@pytest.mark.parametrize("where, args", TRAIN_COMMANDS, ids=[where for where, _ in TRAIN_COMMANDS])
def test_every_documented_train_command_composes(where: str, args: list[str]) -> None:
    """As Hydra reads it: `style.image=~/painting.jpg` in the README was a LexerNoViableAltException."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from fast_style.train import CONF_DIR, _values, expand_home, override_fault

    assert override_fault(expand_home([a for a in args if a != "..."]), paths=False) is None  # the check before Hydra's
    overrides = [a for a in expand_home(args) if a not in ("...", "-m")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    if "-m" in args:  # a sweep: each value alone must compose
        overrides = [o.key_or_group + "=" + str(_values(o, escaped=True)[0]) if o.is_sweep_override() else
                     o.input_line for o in parsed]  # Hydra's own iterator fails on a glob without its loader
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        compose(config_name="train", overrides=overrides)


def test_a_home_folder_in_an_override_is_written_out() -> None:
    from fast_style.train import expand_home

    home = str(Path.home())
    assert expand_home(["data.root=~/photos", "style.images=[a.jpg,~/b.jpg]", "~style.weight", "x"]) == \
        [f"data.root={home}/photos", f"style.images=[a.jpg,{home}/b.jpg]", "~style.weight", "x"]
