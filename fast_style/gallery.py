"""One network for a gallery of paintings: conditional instance norm (Dumoulin et al. 2017, "A
Learned Representation for Artistic Style", arXiv:1610.07629).

All paintings share one TransformerNet's convolutions; each has its own scale and shift for
every instance norm, a few thousand numbers. A mix of paintings is a weighted mean of their
scales and shifts, and a fixed mix is exactly a single-style TransformerNet with those norm
parameters: `GalleryNet.single(weights)` builds it, so inference (eager, compiled, int8) costs
what the single-style network costs. `ConditionalNet` is what the gallery shares with the
arbitrary-style network (fast_style.arbitrary), whose norms come from a painting instead."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.func import functional_call

from fast_style.transformer import TransformerConfig, TransformerNet


def body_config(config: object) -> TransformerConfig:
    """The TransformerConfig fields of a conditional network's config."""
    return TransformerConfig(**{f.name: getattr(config, f.name) for f in fields(TransformerConfig)})


class ConditionalNet(nn.Module):
    """A TransformerNet whose instance norms take their scales and shifts from a style code:
    `net(x, code)`. A subclass says how a code becomes them (`scale_shift`) and its shape."""

    def __init__(self, body: TransformerConfig) -> None:
        super().__init__()
        self.body = TransformerNet(body)  # its own norm parameters are never used
        self.norms = [(name, m.num_features) for name, m in self.body.named_modules() if isinstance(m, nn.InstanceNorm2d)]
        self.width = sum(c for _, c in self.norms)  # all norm channels, end to end

    code_shape: tuple[int, ...]

    def scale_shift(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """code -> (width,) scales and (width,) shifts."""
        raise NotImplementedError

    def norm_parameters(self, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """The body's norm weights and biases for a style code."""
        scale, shift = self.scale_shift(code)
        out, start = {}, 0
        for name, c in self.norms:
            out[f"{name}.weight"], out[f"{name}.bias"] = scale[start : start + c], shift[start : start + c]
            start += c
        return out

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return functional_call(self.body, self.norm_parameters(code), (x,))

    @torch.no_grad()
    def single(self, code: torch.Tensor) -> TransformerNet:
        """A plain TransformerNet for one fixed code: the same pictures as `self(x, code)`, at
        the cost of a single-style network (eager, compiled or int8)."""
        net = copy.deepcopy(self.body)
        for key, value in self.norm_parameters(code).items():
            net.get_parameter(key).copy_(value)
        return net.eval()


@dataclass(frozen=True)
class GalleryConfig:
    """The body's settings (TransformerConfig's fields) and the paintings' names, in order."""

    styles: tuple[str, ...] = ()
    channels: int = TransformerConfig.channels
    res_blocks: int = TransformerConfig.res_blocks
    output_scale: float = TransformerConfig.output_scale
    layout: str = TransformerConfig.layout

    def __post_init__(self) -> None:
        object.__setattr__(self, "styles", tuple(self.styles))  # JSON gives a list
        if not self.styles:
            raise ValueError("a gallery needs at least one style")
        if len(set(self.styles)) != len(self.styles):
            raise ValueError(f"style names must differ: {', '.join(self.styles)}")

    def body(self) -> TransformerConfig:
        return body_config(self)

    def to_dict(self) -> dict:
        return {**asdict(self), "styles": list(self.styles)}


class GalleryNet(ConditionalNet):
    """`net(x, weights)`: x (B, 3, H, W) in [0, 1], weights (N,) over the N paintings (one-hot
    for one painting, summing to 1 for a mix)."""

    def __init__(self, config: GalleryConfig) -> None:
        super().__init__(config.body())
        self.config = config
        n = len(config.styles)
        self.scales = nn.Parameter(torch.ones(n, self.width))  # (N, width)
        self.shifts = nn.Parameter(torch.zeros(n, self.width))

    @property
    def styles(self) -> tuple[str, ...]:
        return self.config.styles

    @property
    def code_shape(self) -> tuple[int, ...]:
        return (len(self.styles),)

    def scale_shift(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A mix: the weighted mean of each painting's."""
        weights = code.to(self.scales)
        return weights @ self.scales, weights @ self.shifts

    @torch.no_grad()
    def set_norms(self, index: int, net: TransformerNet) -> None:
        """Painting `index` takes the norm parameters of a single-style network of the same body."""
        start = 0
        for name, c in self.norms:
            self.scales[index, start : start + c] = net.get_parameter(f"{name}.weight")
            self.shifts[index, start : start + c] = net.get_parameter(f"{name}.bias")
            start += c

    def one_hot(self, index: int) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.tensor(index), len(self.styles)).float()


def check_weights(weights: list[float], what: str, shown: object) -> None:
    """A mix's weights, a gallery's styles' or paintings': a NaN or infinite one made a NaN picture."""
    if not all(0 <= w < math.inf for w in weights) or sum(weights) <= 0:  # nan fails 0 <= w too
        raise ValueError(f"{what} weights must be finite, 0 or more, and not all 0: {shown}")


def mix_weights(styles: tuple[str, ...], mix: dict[str, float]) -> torch.Tensor:
    """(N,) weights for {name: weight}, normalised to sum to 1."""
    unknown = [name for name in mix if name not in styles]
    if unknown:
        raise ValueError(f"no style {unknown[0]!r} in this gallery (its styles: {', '.join(styles)})")
    check_weights(list(mix.values()), "style", mix)
    total = sum(mix.values())
    return torch.tensor([mix.get(name, 0.0) / total for name in styles])
