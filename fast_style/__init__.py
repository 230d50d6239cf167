"""fast_style: fast feed-forward neural style transfer (Johnson et al. 2016)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fast_style.stylizer import Stylizer
    from fast_style.transformer import TransformerConfig, TransformerNet

__all__ = ["Stylizer", "TransformerConfig", "TransformerNet"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`from fast_style import Stylizer` imports torch then, not `stylize --help` (seconds)."""
    if name == "Stylizer":
        from fast_style.stylizer import Stylizer

        return Stylizer
    if name in ("TransformerConfig", "TransformerNet"):
        from fast_style import transformer

        return getattr(transformer, name)
    raise AttributeError(f"module 'fast_style' has no attribute {name!r}")
