"""Apply a trained network: the Python API behind `stylize`. Imports neither Lightning nor Hydra.

Two thin layers over fast_style.engine.Engine: the picture pipeline (network size, strength,
colour), whose settings can change with every call, and PIL images (alpha kept)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, overload

import torch
from PIL import Image
from torch import nn

from fast_style.arbitrary import ArbitraryNet, StyleReader
from fast_style.blend import blend, keep_photo_color
from fast_style.engine import Engine, default_device
from fast_style.gallery import mix_weights
from fast_style.images import as_read
from fast_style.pixels import bytes_to_floats, fit_longest, resize, to_bytes, to_pil
from fast_style.lanes import lane_count, macs_per_pixel
from fast_style.model_file import MODEL_SUFFIXES, ModelRecord, load_model
from fast_style.models import resolve_style
from fast_style.motion import Motion, locked

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["Stylizer", "default_device"]


class Stylizer:
    """`Stylizer.load("starry_night")(image)`, or `Stylizer.load("path/to/model.safetensors")`.

    Takes a PIL image (returns one of its size, upright as shown, as files are read) or a [0, 1]
    float or uint8 tensor (3, H, W) or (B, 3, H, W) (returns the same shape and dtype, on the same
    device). `strength`, `preserve_color`,
    for a gallery network `style` (a name, or {name: weight} to mix), and for an arbitrary-style
    network `style_image` (a painting: PIL image or path; to mix, [(painting, weight), ...] or
    {path: weight}) given at
    construction are defaults; each call may set its own. Safe to share between threads."""

    Style = str | dict[str, float] | None
    Painting = Image.Image | str | Path
    StyleImage = Painting | list[tuple[Painting, float]] | dict[str | Path, float] | None

    def __init__(
        self,
        net: nn.Module,
        record: ModelRecord | None = None,
        device: str | torch.device | None = None,
        max_pass_pixels: int | None = None,
        precision: str = "fp32",
        strength: float = 1.0,
        preserve_color: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        style: Style = None,
        style_image: StyleImage = None,
        vgg_weights: str = "imagenet",
    ) -> None:
        _check_strength(strength)
        self.engine = Engine(net, device, precision, compile, channels_last, max_pass_pixels)
        self.record = record or ModelRecord()
        self._macs_per_pixel: float | None = None
        self.strength, self.preserve_color = strength, preserve_color
        self.style, self.style_image = style, style_image
        # An arbitrary-style network reads paintings through the VGG (`vgg_weights`), once each.
        self.reader = StyleReader(self.engine.conditional, vgg_weights) if isinstance(net, ArbitraryNet) else None
        if self.reader is None:
            self.style_code(style, style_image)  # a name this model does not have fails here, not at the first picture

    @classmethod
    def over(cls, engine: Engine, record: ModelRecord | None = None, strength: float = 1.0,
             preserve_color: bool = False) -> Stylizer:
        """The same pipeline over another engine: fast_style.optimize.GatysEngine."""
        stylizer = cls.__new__(cls)
        stylizer.engine, stylizer.record = engine, record or ModelRecord()
        stylizer.strength, stylizer.preserve_color = _check_strength(strength), preserve_color
        stylizer.style, stylizer.style_image, stylizer.reader = None, None, None
        stylizer._macs_per_pixel = float("inf")  # an optimisation per frame: no lanes
        return stylizer

    def with_defaults(self, **defaults: Unpack[Options]) -> Stylizer:
        """The same model and engine, with other per-call defaults (strength, preserve_color,
        style, style_image): for a video whose every frame takes the same settings."""
        other = copy.copy(self)
        for key, value in defaults.items():
            if key not in ("strength", "preserve_color", "style", "style_image"):
                raise TypeError(f"with_defaults() got an unexpected option {key!r}")
            setattr(other, key, value)
        _check_strength(other.strength)
        other.style_code()  # a name or painting this model cannot take fails here
        return other

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None, **kwargs: Unpack[LoadOptions]) -> Stylizer:
        """A model file, or a shipped style as `stylize --style` takes it ("wave", a gallery's
        "monet_water_lilies", a mix "starry_night=0.6,wave=0.4"): an installed wheel keeps the
        shipped models inside the package, where no path of the user's reaches them."""
        name = Path(path)
        if isinstance(path, str) and name.name == path and name.suffix not in MODEL_SUFFIXES and not name.is_file():
            path, style = resolve_style(path)
            kwargs.setdefault("style", style)
        net, record = load_model(path)
        return cls(net, record, device, **kwargs)

    # What callers ask of the engine, without reaching into it.
    device = property(lambda self: self.engine.device)
    precision = property(lambda self: self.engine.precision)
    compiles = property(lambda self: self.engine.compiles)
    net = property(lambda self: self.engine.net)

    @property
    def grid(self) -> int:
        """The network's stride: its strokes sit on a grid of this many pixels (1: no network)."""
        conditional = getattr(self.engine, "conditional", None)
        net = conditional.body if conditional is not None else getattr(self.engine, "net", None)
        return getattr(net, "multiple", 1)

    def lanes_for(self, height: int, width: int, size: int | None = None) -> int:
        """How many frames of this size a stream should run at once (fast_style.lanes)."""
        if self._macs_per_pixel is None:
            conditional = self.engine.conditional
            self._macs_per_pixel = macs_per_pixel(conditional.body if conditional is not None else self.engine.net)
        scale = (size / max(height, width)) ** 2 if size else 1.0
        return lane_count(self.device, self._macs_per_pixel * height * width * scale)

    @property
    def styles(self) -> tuple[str, ...]:
        """The style names this model offers: a gallery's paintings, or its one style (an
        arbitrary-style network: none; it takes `style_image`)."""
        gallery = self.engine.gallery
        if self.reader is not None:
            return ()
        return gallery.styles if gallery is not None else (self.record.style or "stylized",)

    @property
    def name(self) -> str:
        """What outputs are named after: the style, or the default mix (`starry_night60_wave40`)."""
        if self.reader is not None:
            return painting_label(self.style_image) if self.style_image is not None else self.record.style or "any"
        return style_label(self.style) if self.style else self.styles[0]

    def style_code(self, style: Style = None, style_image: StyleImage = None) -> torch.Tensor | None:
        """What the engine is told for this call: an arbitrary network's code for `style_image`,
        a gallery's (N,) weights for `style` (default: the Stylizer's, else the first painting);
        None for a single-style network, which takes no style but its own."""
        style_image = style_image if style_image is not None else self.style_image
        if self.reader is not None:
            if style is not None:
                raise ValueError("this network takes any painting (style_image), not a style name")
            if style_image is None:
                raise ValueError("this network takes any painting: give style_image (stylize --style-image PAINTING)")
            return self.reader.mix(_pairs(style_image))
        if style_image is not None:
            raise ValueError("this model has its own styles; a painting of your own (style_image) needs an "
                             "arbitrary-style model (checkpoints/any.safetensors)")
        gallery = self.engine.gallery
        style = style if style is not None else self.style
        if gallery is None:
            names = [style] if isinstance(style, str) else list(style or {})
            if any(n != self.styles[0] for n in names):
                raise ValueError(f"this model has one style, {self.styles[0]}; for {', '.join(names)} use another model")
            return None
        if style is None:
            style = gallery.styles[0]
        return mix_weights(gallery.styles, {style: 1.0} if isinstance(style, str) else style)

    def stylize_tensor(self, batch: torch.Tensor, size: int | None = None, strength: float | None = None,
                       preserve_color: bool | None = None, style: Style = None,
                       style_image: StyleImage = None,
                       motion: Sequence[Motion | tuple[float, float]] | None = None) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 3, H, W), in [0, 1]. With `size`, the network runs with the longest
        side scaled to `size` (bigger brush strokes, less time) and the result is scaled back.
        `motion`: for frames of a stream, each one's `Motion` from a `fast_style.motion.GridLock`
        (or a pan's (y, x)), so that the network's grid moves with the scene and a pan or a zoom
        does not flicker. The batch's dtype comes back: uint8 (torchvision.io.read_image's) or a
        float (float16 came back float32, twice the bytes the caller chose)."""
        if batch.dim() == 4 and batch.shape[:2] == (0, 3):  # a pipeline's last, filtered batch: what it would give
            return torch.empty(batch.shape, dtype=batch.dtype, device=batch.device)
        strength = self.strength if strength is None else _check_strength(strength)
        keep_color = self.preserve_color if preserve_color is None else preserve_color
        # uint8 crosses to a GPU at a quarter of the bytes; other dtypes become float32 on the way (MPS has no float64)
        photo = _pixels(batch.to(self.device) if batch.dtype == torch.uint8 else batch, size,
                        self.engine.input_format).to(self.device, torch.float32)
        h, w = batch.shape[-2:]
        x, code = fit_longest(photo, size), self.style_code(style, style_image)
        if motion is not None and self.grid > 1:
            scale = x.shape[-1] / w
            y = locked(lambda z: self.engine(z, code), x, [Motion(*m).resized(scale, scale) for m in motion], self.grid)
        else:
            y = self.engine(x, code)
        if y.shape[-2:] != (h, w):
            y = resize(y, h, w).clamp_(0, 1)
        if keep_color:
            y = keep_photo_color(y, photo)
        if strength < 1:
            y = blend(photo, y, strength)
        if batch.dtype == torch.uint8:
            y = y.mul_(255).round_().to(torch.uint8)  # y is this call's own: a copy was 1.2 GB at 102 megapixels
        return y.to(batch.device, batch.dtype)

    @overload
    def __call__(self, image: Image.Image, size: int | None = None, **options: Unpack[CallOptions]) -> Image.Image: ...
    @overload
    def __call__(self, image: torch.Tensor, size: int | None = None, **options: Unpack[CallOptions]) -> torch.Tensor: ...
    def __call__(self, image: Image.Image | torch.Tensor, size: int | None = None,
                 **options: Unpack[CallOptions]) -> Image.Image | torch.Tensor:
        """`options`: strength, preserve_color, style, style_image, for this call only."""
        if isinstance(image, Image.Image):
            return self.stylize_batch([image], size, **options)[0]
        if not isinstance(image, torch.Tensor):
            hint = (" (Image.fromarray(array) makes one of an RGB array)" if hasattr(image, "__array__") else
                    " (Image.open(path) opens a file; fast_style.images.open_image(path) turns it upright as stylize does)"
                    if isinstance(image, (str, Path)) else "")
            raise TypeError(f"a Stylizer takes a PIL image or a tensor, not {type(image).__name__}{hint}")
        if image.dim() == 3 and image.shape[0] == 3:
            return self.stylize_tensor(image.unsqueeze(0), size, **options)[0]
        return self.stylize_tensor(image, size, **options)

    def stylize_batch(self, images: list[Image.Image], size: int | None = None,
                      **options: Unpack[CallOptions]) -> list[Image.Image]:
        """Images of one size, through the network as one batch. Transparency is kept: the
        colours are stylized and the alpha channel put back unchanged. An image is taken as files
        are read (images.as_read): upright where its EXIF says it is stored turned, in sRGB where
        it carries another colour profile (Image.open of a phone's photo)."""
        if not images:
            return []
        read = [as_read(im, im.info.get("icc_profile")) for im in images]  # turned upright: sizes as shown
        if len({image.size for image in read}) > 1:
            raise ValueError("stylize_batch takes images of one size: a batch per size, or stylizer(image) for each")
        photos = [to_bytes(im) for im in read]
        out = [to_pil(y) for y in self.stylize_tensor(torch.stack(photos), size, **options)]
        for image, result in zip(read, out):
            if image.mode == "RGBA":
                result.putalpha(image.getchannel("A"))
        return out


class Options(TypedDict, total=False):
    """The settings a Stylizer keeps as defaults and each call may set for itself: typed, so that
    an editor or mypy checks `stylizer(image, strength=0.5, style="wave")` (the package is PEP 561 typed)."""

    strength: float
    preserve_color: bool
    style: Stylizer.Style
    style_image: Stylizer.StyleImage


class CallOptions(Options, total=False):
    motion: Sequence[Motion | tuple[float, float]] | None


class LoadOptions(Options, total=False):
    precision: str
    compile: bool
    channels_last: bool
    max_pass_pixels: int
    vgg_weights: str


def style_label(style: str | dict[str, float]) -> str:
    """A name for a style or a mix, for file names: `starry_night`, `starry_night60_wave40`."""
    if isinstance(style, str):
        return style
    total = sum(style.values())
    return "_".join(f"{name}{round(100 * w / total)}" for name, w in style.items() if w > 0)


def painting_label(style_image: Stylizer.StyleImage) -> str:
    """A name for a painting or a mix of paintings, for file names: `monet_water_lilies`, `a70_b30`."""
    names = {(Path(p).stem if isinstance(p, (str, Path)) else f"painting{i + 1}"): w
             for i, (p, w) in enumerate(_pairs(style_image))}
    return style_label(next(iter(names)) if len(names) == 1 else names)


def _pairs(style_image: Stylizer.StyleImage) -> list[tuple[Stylizer.Painting, float]]:
    if isinstance(style_image, dict):
        return list(style_image.items())
    if isinstance(style_image, (list, tuple)):
        return [(p, float(w)) for p, w in style_image]
    return [(style_image, 1.0)]


def _pixels(batch: torch.Tensor, size: int | None,
            memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """The one pixel convention, checked: RGB in [0, 1] (uint8 divided by 255, into the layout
    the network takes). A batch of 0-255 floats, or channels last, used to come out as noise or a
    conv's error about channels."""
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"takes RGB tensors shaped (3, H, W) or (B, 3, H, W), not {tuple(batch.shape)}")
    if 0 in batch.shape[2:]:
        raise ValueError(f"an image has no pixels: {batch.shape[-1]}x{batch.shape[-2]}")
    if size is not None and size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    if batch.dtype == torch.uint8:
        return bytes_to_floats(batch, memory_format)
    if not batch.is_floating_point():
        raise ValueError(f"takes float pixels in [0, 1] or uint8 ones, not {batch.dtype}")
    low, high = torch.aminmax(batch)
    if low.isnan():  # a division by zero upstream: a black or NaN picture, silently, before
        raise ValueError("float pixels go from 0 to 1, and these include NaN")
    if low < -0.01 or high > 1.01:  # a little outside, as resampling leaves, passes
        raise ValueError(f"float pixels go from 0 to 1, not {float(low):g} to {float(high):g} (0-255? divide by 255)")
    return batch


def _check_strength(strength: float) -> float:
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be between 0 and 1, not {strength}")
    return strength
