"""Perceptual losses (Gatys et al. 2016; Johnson et al. 2016) through a frozen VGG-16.
Shared by training and by direct optimisation of an image."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fast_style.arbitrary import STYLE_LAYERS, feature_statistics
from fast_style.config import LossConfig, StyleConfig
from fast_style.pixels import load_style_image
from fast_style.styles import style_image_path
from fast_style.vgg import LAYERS, VGG16Features

_DEFAULTS = LossConfig()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C), normalised by C*H*W so layers of any size weigh alike."""
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)  # fp32 even under autocast: the style weight is 1e10
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels; penalises speckle."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


class PerceptualLoss(nn.Module):
    """Content loss on one VGG layer, Gram style loss on several, optional TV.

    The style target is computed once by `set_style` and broadcast over each batch."""

    def __init__(
        self,
        vgg: VGG16Features,
        content_weight: float = _DEFAULTS.content_weight,
        style_weight: float = StyleConfig.weight,
        tv_weight: float = _DEFAULTS.tv_weight,
        content_layer: str = _DEFAULTS.content_layer,
        style_layers: Sequence[str] = tuple(_DEFAULTS.style_layers),
        style_layer_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.vgg = vgg
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.content_layer = content_layer
        self.style_layers = list(style_layers)
        self.style_layer_weights = list(style_layer_weights or [1.0] * len(self.style_layers))
        unknown = [name for name in [content_layer, *self.style_layers] if name not in LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG layer {unknown[0]!r} (layers: {', '.join(LAYERS)})")
        if len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError("style_layer_weights must have one weight per style layer")
        self.layers = list(dict.fromkeys([*self.style_layers, content_layer]))

    def set_style(self, style: torch.Tensor) -> None:
        """style: (1, 3, H, W) in [0, 1]."""
        self.set_styles([style])

    @torch.no_grad()
    def set_styles(self, styles: Iterable[torch.Tensor]) -> None:
        """Several paintings, each (1, 3, H, W) of its own size: `forward(..., style=i)` picks one."""
        grams: list[list[torch.Tensor]] = [[] for _ in self.style_layers]
        stats = []
        layers = list(dict.fromkeys([*self.style_layers, *STYLE_LAYERS]))
        for style in styles:  # one painting's feature maps at a time: hundreds of paintings fit
            feats = self.vgg(style, layers)
            for i, name in enumerate(self.style_layers):
                grams[i].append(gram_matrix(feats[name]))
            stats.append(feature_statistics(feats, STYLE_LAYERS))
        for i, layer_grams in enumerate(grams):
            self.register_buffer(f"gram_{i}", torch.cat(layer_grams), persistent=False)  # (N, C, C)
        # (N, F): what an arbitrary-style network is told of each painting (fast_style.arbitrary)
        self.register_buffer("style_statistics", torch.cat(stats), persistent=False)

    def forward(self, output: torch.Tensor, content: torch.Tensor, style: int = 0) -> dict[str, torch.Tensor]:
        """output, content: (B, 3, H, W) in [0, 1]; `style`, which painting of set_styles. Returns
        each weighted term and their sum."""
        with torch.no_grad():
            target = self.vgg(content, [self.content_layer])[self.content_layer]
        feats = self.vgg(output, self.layers)
        content_loss = F.mse_loss(feats[self.content_layer].float(), target.float())
        style_loss = output.new_zeros((), dtype=torch.float32)
        for i, (name, weight) in enumerate(zip(self.style_layers, self.style_layer_weights)):
            gram = gram_matrix(feats[name])
            target = getattr(self, f"gram_{i}")[style : style + 1]  # (1, C, C)
            style_loss = style_loss + weight * F.mse_loss(gram, target.expand_as(gram))
        losses = {
            "content": self.content_weight * content_loss,
            "style": self.style_weight * style_loss,
            "tv": self.tv_weight * total_variation(output.float()),
        }
        losses["total"] = losses["content"] + losses["style"] + losses["tv"]
        return losses


def perceptual_loss(
    style_image: str | Path | list[str | Path],
    style_size: int | None = StyleConfig.size,
    weights: dict[str, float] | None = None,
    config: LossConfig | None = None,
) -> PerceptualLoss:
    """The one way a loss is built, with its style target set: training, evaluate and
    `stylize --optimize` all come here. `weights` ({"content", "style", "tv"}, as a model file
    records them) override the defaults; `style_image` is a path or a bundled painting's name, or
    a list of them (a gallery)."""
    config = config or LossConfig()
    w = {"content": config.content_weight, "style": StyleConfig.weight, "tv": config.tv_weight, **(weights or {})}
    loss = PerceptualLoss(VGG16Features(config.vgg_weights), w["content"], w["style"], w["tv"], config.content_layer,
                          config.style_layers, config.style_layer_weights)
    images = style_image if isinstance(style_image, (list, tuple)) else [style_image]
    loss.set_styles(load_style_image(style_image_path(str(image)), style_size) for image in images)
    return loss
