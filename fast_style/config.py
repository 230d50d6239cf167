"""The settings of a style and of its loss, with their defaults in one place: `train` registers
these dataclasses with Hydra (conf/style/*.yaml and the loss group extend them), and the
inference side (evaluate, `stylize --optimize`) builds its loss from the same defaults. And the
names of the inference precisions. Imports neither Hydra nor torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional  # OmegaConf reads Optional[...], not X | None, in structured configs

MISSING = "???"  # OmegaConf's mark for a value that must be given
PRECISION_NAMES = ("fp32", "bf16", "fp16", "int8")  # stylize --precision; fast_style.hardware.PRECISIONS: their dtypes


@dataclass
class StyleConfig:
    """One painting: what the network learns and how strongly."""

    name: str = MISSING
    image: str = MISSING  # bundled with fast_style (fast_style/styles/), or a path to any image
    # A gallery: several paintings (as `image`), one network with a scale and shift per painting
    # for every instance norm (fast_style.gallery). Their names are the files' stems.
    images: Optional[list[str]] = None
    paintings: Optional[str] = None  # a folder the gallery's `images` may name files in (${style.paintings}/x.jpg)
    # Any painting at run time (fast_style.arbitrary): one network learns every painting in this
    # folder (and `images`), but those of every `holdout_every`-th artist, kept for evaluate.
    folder: Optional[str] = None
    holdout_every: int = 10
    size: Optional[int] = 512  # longest side of the painting when its Gram matrices are taken
    weight: float = 1.0e10  # style loss weight


@dataclass
class LossConfig:
    """The perceptual loss (fast_style.losses.PerceptualLoss) apart from the style's weight."""

    content_weight: float = 1.0e5
    tv_weight: float = 0.0
    content_layer: str = "relu2_2"
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    style_layer_weights: Optional[list[float]] = None  # one weight per style layer; None = all 1
    vgg_weights: str = "imagenet"  # imagenet (torchvision's cache) | /path/to/vgg16.pth | random (tests only)


@dataclass
class GatysConfig:
    """Optimisation of one image (fast_style.optimize): `stylize --optimize`, `evaluate --baseline gatys`."""

    steps: int = 300  # loss evaluations, for L-BFGS as for Adam
    method: str = "lbfgs"  # or adam
