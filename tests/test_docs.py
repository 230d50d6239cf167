"""The documents a user follows: their links land, and docs/stylize.md keeps its promise of every option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_docs_stylize_names_every_option() -> None:
    options = {s for action in build_parser()._actions for s in action.option_strings
               if s.startswith("--") and s != "--help"}
    documented = set(re.findall(r"--[a-z][a-z-]*[a-z]", (ROOT / "docs" / "stylize.md").read_text()))
    missing = sorted(options - documented)
    assert not missing, missing
