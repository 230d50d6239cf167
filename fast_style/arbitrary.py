"""Any painting at run time, in one forward pass: a style-prediction network sets the norm
parameters of a TransformerNet (Ghiasi et al. 2017, "Exploring the structure of a real-time,
arbitrary neural artistic stylization network", arXiv:1705.06830).

A painting is read by the statistics AdaIN matches (Huang & Belongie 2017): the per-channel
means and standard deviations of the frozen VGG-16 at the style layers, taken once per painting.
A small MLP maps them to a 100-number style code (the bottleneck: codes mix linearly, so two
paintings mix), and a linear layer maps the code to every instance norm's scale and shift. The
code fixed, the network is a plain TransformerNet (`single`), with its eager, compiled and int8
paths. Reading a painting needs the VGG weights (downloaded once by torchvision); stylizing a
photo does not."""

from __future__ import annotations

import csv
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from fast_style.gallery import ConditionalNet, body_config, check_weights
from fast_style.images import as_read, find_images, no_folder, open_painting, painting_at, painting_rgb
from fast_style.pixels import fit_longest, to_tensor
from fast_style.transformer import TransformerConfig

# The VGG-16 layers a painting is read at, and their channels. The VGG (torchvision) loads only
# when a painting is read: stylizing with a known code imports none of it.
STYLE_LAYERS = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512}


def feature_statistics(features: dict[str, torch.Tensor], layers: Iterable[str]) -> torch.Tensor:
    """(B, F): each layer's per-channel means, then its standard deviations: the statistics that
    AdaIN (Huang & Belongie 2017) matches, and what an arbitrary-style network reads a painting by."""
    parts = []
    for name in layers:
        f = features[name].float().flatten(2)  # (B, C, H*W)
        parts += [f.mean(2), f.std(2)]
    return torch.cat(parts, dim=1)


def split_paintings(folder: str | Path, every: int) -> tuple[list[Path], list[Path]]:
    """(training, held out) paintings of a folder: those of every `every`-th artist in name order
    are held out (0: none), so evaluate sees painters the network never learned. Artists come
    from the folder's SOURCES.tsv (`file`, `artist` columns); without one, each file is its own."""
    folder = Path(folder).expanduser()
    if problem := no_folder(folder, "painting folder not found"):
        raise FileNotFoundError(f"{folder}: {problem}")
    files = find_images(folder)
    if not files:
        raise ValueError(f"{folder}: no paintings in this folder")
    artist: dict[str, str] = {}
    if (folder / "SOURCES.tsv").is_file():
        with open(folder / "SOURCES.tsv", newline="", encoding="utf-8") as f:
            artist = {row["file"]: row["artist"] for row in csv.DictReader(f, delimiter="\t") if row.get("file")}
    names = sorted({artist.get(p.name, p.name) for p in files})
    held = set(names[every - 1 :: every]) if every > 0 else set()
    return ([p for p in files if artist.get(p.name, p.name) not in held],
            [p for p in files if artist.get(p.name, p.name) in held])


@dataclass(frozen=True)
class ArbitraryConfig:
    """The body's settings (TransformerConfig's fields), how a painting is read, and the predictor."""

    channels: int = TransformerConfig.channels
    res_blocks: int = TransformerConfig.res_blocks
    output_scale: float = TransformerConfig.output_scale
    layout: str = TransformerConfig.layout
    style_size: int = 512  # the painting's longest side when the VGG reads it
    hidden: int = 256
    bottleneck: int = 100  # the style code (Ghiasi et al.: 100)

    def body(self) -> TransformerConfig:
        return body_config(self)

    def to_dict(self) -> dict:
        return asdict(self)


class ArbitraryNet(ConditionalNet):
    """`net(x, code)`, code = `net.embed(statistics)`: x (B, 3, H, W) in [0, 1]; statistics (F,),
    the painting's VGG feature statistics (`StyleReader`)."""

    input_mean: torch.Tensor  # buffers: (F,)
    input_std: torch.Tensor

    def __init__(self, config: ArbitraryConfig) -> None:
        super().__init__(config.body())
        self.config = config
        features = 2 * sum(STYLE_LAYERS.values())  # means and stds: 1,920
        # The statistics span orders of magnitude between layers: standardised over the training
        # paintings (set once by `fit_inputs`, saved with the weights).
        self.register_buffer("input_mean", torch.zeros(features))
        self.register_buffer("input_std", torch.ones(features))
        self.predictor = nn.Sequential(
            nn.Linear(features, config.hidden), nn.ReLU(), nn.Linear(config.hidden, config.bottleneck)
        )
        self.to_norms = nn.Linear(config.bottleneck, 2 * self.width)
        with torch.no_grad():  # starts as the body's plain instance norm, for every painting
            self.to_norms.weight.mul_(0.01)
            self.to_norms.bias.copy_(torch.cat([torch.ones(self.width), torch.zeros(self.width)]))

    @property
    def code_shape(self) -> tuple[int, ...]:
        return (self.config.bottleneck,)

    @torch.no_grad()
    def fit_inputs(self, statistics: torch.Tensor) -> None:
        """statistics: (N, F) of the training paintings."""
        self.input_mean.copy_(statistics.mean(0))
        self.input_std.copy_(statistics.std(0).clamp_min(1e-6) if len(statistics) > 1 else statistics.abs().mean(0) + 1)

    def embed(self, statistics: torch.Tensor) -> torch.Tensor:
        """(F,) or (N, F) painting statistics -> (bottleneck,) or (N, bottleneck) style codes."""
        return self.predictor((statistics.to(self.input_mean) - self.input_mean) / self.input_std)

    def scale_shift(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.to_norms(code.to(self.to_norms.weight))  # (2 * width,)
        return out[: self.width], out[self.width :]

    @torch.no_grad()
    def start_from(self, scales: torch.Tensor, shifts: torch.Tensor) -> None:
        """Every painting starts at the mean norms of a gallery (N, width) of the same body."""
        self.to_norms.bias.copy_(torch.cat([scales.mean(0), shifts.mean(0)]))


class StyleReader:
    """Paintings -> style codes for an ArbitraryNet, each painting read once (the last 32 kept:
    a video's frames all take the same painting, and pay for it once).
    The VGG loads at the first painting; `vgg_weights` as in LossConfig."""

    def __init__(self, net: ArbitraryNet, vgg_weights: str = "imagenet", keep: int = 32) -> None:
        self.net, self.vgg_weights, self.keep = net, vgg_weights, keep
        self._vgg: nn.Module | None = None
        self._codes: OrderedDict[Hashable, torch.Tensor] = OrderedDict()

    @torch.no_grad()
    def statistics(self, painting: Image.Image | torch.Tensor, name: str | Path = "a painting") -> torch.Tensor:
        """(F,) VGG statistics of a PIL painting or a (3, H, W) / (1, 3, H, W) [0, 1] tensor,
        its longest side at the network's `style_size`, as in training; `name` for the warning of
        a small one enlarged."""
        if self._vgg is None:
            from fast_style.vgg import VGG16Features

            self._vgg = VGG16Features(self.vgg_weights).eval()
        size = self.net.config.style_size
        if isinstance(painting, Image.Image):
            painting = painting_rgb(as_read(painting, painting.info.get("icc_profile")))
            x = to_tensor(painting_at(painting, size, name))[None]
        else:
            x = fit_longest(painting.reshape(-1, *painting.shape[-3:]).float().cpu(), size)
        return feature_statistics(self._vgg(x, STYLE_LAYERS), STYLE_LAYERS)[0]

    @torch.no_grad()
    def code(self, painting: Image.Image | str | Path) -> torch.Tensor:
        """(bottleneck,) style code of one painting (an image, or a file: opened only when its
        path and modification time are new), on the CPU."""
        if isinstance(painting, Image.Image):
            key: Hashable = hash(painting.tobytes())
        else:
            path = Path(painting).expanduser()
            try:
                key = (str(path.resolve()), path.stat().st_mtime_ns)
            except OSError as e:
                raise ValueError(f"{painting}: style image not found ({e.strerror})") from None
        if key not in self._codes:
            image = painting if isinstance(painting, Image.Image) else open_painting(Path(painting))
            name = "a painting" if isinstance(painting, Image.Image) else painting
            self._codes[key] = self.net.embed(self.statistics(image, name).to(self.net.input_mean.device)).cpu()
            if len(self._codes) > self.keep:
                self._codes.popitem(last=False)
        self._codes.move_to_end(key)
        return self._codes[key]

    def mix(self, paintings: list[tuple[Image.Image | str | Path, float]]) -> torch.Tensor:
        """The code of a mix: the weighted mean of the paintings' codes (weights normalised).
        Codes mix linearly (Ghiasi et al. 2017, section 4.3)."""
        weights = [w for _, w in paintings]
        check_weights(weights, "painting", weights)
        return torch.stack([self.code(p) * (w / sum(weights)) for p, w in paintings]).sum(0)

