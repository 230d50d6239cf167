"""The documents a user follows: their links land, docs/stylize.md names every option of stylize and
evaluate, and docs/training.md every key of the training config."""

from __future__ import annotations

import re
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


def test_docs_training_names_every_key_of_the_train_config() -> None:
    config = OmegaConf.load(ROOT / "conf" / "train.yaml")
    text = (ROOT / "docs" / "training.md").read_text()
    keys = [f"{group}.{key}" if isinstance(value, DictConfig) else group
            for group, value in config.items() if group not in ("defaults", "hydra")
            for key in (value if isinstance(value, DictConfig) else [None])]
    missing = [k for k in keys if f"`{k}`" not in text and f"`{k.split('.')[0]}.*`" not in text]
    assert not missing, missing
