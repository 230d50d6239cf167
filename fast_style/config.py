"""The settings of a style, of its loss and of the network, with their defaults in one place:
`train` registers these dataclasses with Hydra (conf/style/*.yaml, the loss and model groups
extend them), the inference side (evaluate, `stylize --optimize`) builds its loss from the same
defaults, and a model file's header rebuilds the network from them. And the names of the
inference precisions. Imports neither Hydra nor torch, so `train --help` need not import them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

# Optional[...], not X | None, in the dataclasses: OmegaConf reads only that in structured configs.
MISSING = "???"  # OmegaConf's mark for a value that must be given
PRECISION_NAMES = ("fp32", "bf16", "fp16", "int8")  # stylize --precision; fast_style.hardware.PRECISIONS: their dtypes
VGG_MIN_SIDE = 8  # the loss's relu4_3 comes after three 2x poolings: a smaller side pools to nothing


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
    vgg_weights: str = "imagenet"  # imagenet (torch hub's cache, as torchvision's) | /path/to/vgg16.pth | random (tests only)


@dataclass
class GatysConfig:
    """Optimisation of one image (fast_style.optimize): `stylize --optimize`, `evaluate --baseline gatys`."""

    steps: int = 300  # loss evaluations, for L-BFGS as for Adam
    method: str = "lbfgs"  # or adam


@dataclass(frozen=True)
class TransformerConfig:
    """Everything needed to rebuild the network; saved beside its weights."""

    channels: int = 32  # width of the first layer; doubled by each downsampling
    res_blocks: int = 5
    # The last conv's output is divided by 255, as when the net works in 0-255 pixels
    # (pytorch/examples): measured here, it reaches a lower loss sooner (3.7e6 against 9.6e6
    # after 130 steps) than an unscaled output, which Adam at 1e-3 moves too far per step.
    output_scale: float = 1 / 255
    # "johnson": the paper's layout. "realtime": the same idea made for CPUs without AVX-512,
    # with almost nothing at full resolution (see fast_style.transformer). "realtime8": as realtime, the
    # residual blocks at an eighth of the size, where they cost a quarter as much a channel.
    layout: str = "johnson"

    def to_dict(self) -> dict[str, int | float | str]:
        return asdict(self)
