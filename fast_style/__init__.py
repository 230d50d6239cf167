"""fast_style: fast feed-forward neural style transfer (Johnson et al. 2016)."""

from fast_style.stylizer import Stylizer
from fast_style.transformer import TransformerConfig, TransformerNet

__all__ = ["Stylizer", "TransformerConfig", "TransformerNet"]
__version__ = "0.1.0"
