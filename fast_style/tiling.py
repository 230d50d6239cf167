"""Stylize images too large for one pass, in tiles, without seams, as one pass would.

Instance norm makes every output pixel depend on statistics of the whole image, so tiles
normalised on their own come out in different colours. With the statistics given, the network
is a plain conv net: a tile cut at a multiple of the network's stride with a margin wider than
its receptive field (`TransformerNet.tile_margin`) gives exactly the pixels a single pass with
those statistics would.

The statistics are gathered through the tiles themselves, one norm layer at a time: a pass over
the tiles runs each up to the next norm (those before it fixed to what was gathered) and adds up
what that norm sees in the tile's core. Recomputing the early layers costs less than it sounds,
since the residual blocks, most of the work, run once on the whole image at their size (a
sixteenth of the pixels): at 12 megapixels a little less time and memory than the estimate below,
and the single pass's picture to float rounding (docs/design.md#tiles).

In fp32, where the residual blocks' tensor is too large (BODY_BYTES), it is held in float16
between convs that run in float: up to 125 megapixels for the full network, about a hundredth of a
level from a single pass. Above that, the statistics are estimated instead, from the image scaled
down to one pass and to half that, carried on to its own size.
The statistics go to a private copy of the network whose norms are fixed affine maps; the
shared network is never changed, so other threads can use it meanwhile."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from fast_style.transformer import ConvLayer, ResidualBlock, TransformerNet, _padding

log = logging.getLogger(__name__)

TILE = 1024  # a multiple of every layout's stride (4 or 8)
# The largest tensor at the residual blocks' size for exact statistics: the full network's at 62
# megapixels in fp32, 125 in bf16 and in fp32 held in float16 (_hold_dtype). Run in place, in bands,
# their pass holds that tensor alone; up to LEAN_BYTES (37 and 75 megapixels) two, to run each
# block's first conv once instead of three times; up to KEEP_BYTES (29 and 58 megapixels) three, to
# run its second conv once instead of twice (11% of the time at 24 megapixels). Forward held six: at
# 24 megapixels in fp32 a peak of 3.3 or 4.0 GB instead of 6.0 (docs/design.md#tiles).
BODY_BYTES = 15 * 2**27
LEAN_BYTES = 9 * 2**27
KEEP_BYTES = 7 * 2**27
BAND = 64  # rows of the blocks' tensor a conv takes at once in place; at least the 2 a block reaches (_block_alone)

NormStats = list[tuple[torch.Tensor, torch.Tensor]]  # per InstanceNorm2d, in module order: (mean, var), (1, C, 1, 1)


class FixedNorm(nn.Module):
    """An InstanceNorm2d with given statistics: x * scale + shift, per channel."""

    scale: torch.Tensor  # buffers: (1, C, 1, 1)
    shift: torch.Tensor

    def __init__(self, norm: nn.InstanceNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
        super().__init__()
        device = norm.weight.device  # statistics combined on the CPU (Moments) for a GPU's tiles
        scale = norm.weight.view(1, -1, 1, 1) / torch.sqrt(var.to(device) + norm.eps)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", norm.bias.view(1, -1, 1, 1) - mean.to(device) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """In float, rounded once to x's dtype, as InstanceNorm2d computes under autocast."""
        return torch.addcmul(self.shift, x, self.scale).to(x.dtype)


def stylize_tiled(net: TransformerNet, x: torch.Tensor, max_pixels: int, tile: int = TILE,
                  stats: NormStats | None = None) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, H, W) in tiles of `tile` pixels (a multiple of the net's stride) plus
    margins: the single pass's picture where the residual blocks' tensor fits BODY_BYTES (in fp32,
    held in float16 where float32 does not); else, or with `stats` given, normalised with those
    (default: reference_statistics)."""
    h, w = x.shape[-2:]
    size = (h + _padding(h, net.multiple, net.min_side), w + _padding(w, net.multiple, net.min_side))  # as forward pads
    work, hold = _work_dtype(x), _hold_dtype(net, x)
    tiles = Tiles(size, tile, net.tile_margin, net.multiple, work if hold not in (None, work) else None)
    exact = stats is None and hold is not None
    if stats is None and hold is None:  # a visible difference: a washed-out 102-megapixel photo, before the float16 hold
        log.warning(f"note: {w}x{h} is past the {_exact_pixels(net) / 1e6:.0f} megapixels that tiles give one pass's "
                    "colours; its colours are estimated from smaller copies and may be off (docs/stylize.md#large-photos)")
    passes = len(_norms(net.encoder)) + len(net.residuals) + len(_norms(net.decoder)) + 1 if exact else 1
    with _bar(tiles, passes, f"{w}x{h} in tiles") as tiles.bar:
        if exact:
            assert hold is not None
            y = _exact(net, x, tiles, hold)
            if hold == torch.float16 and not torch.isfinite(y).all():  # past float16's range: bf16's is float's
                tiles.bar.reset()
                y = _exact(net, x, tiles, torch.bfloat16)
        else:
            y = tiles.run(net, x, 1, stats if stats is not None else reference_statistics(net, x, max_pixels))
    return y[..., :h, :w]


def _bar(tiles: Tiles, passes: int, desc: str) -> tqdm:
    """Passes over the tiles, counted by the tile, on stderr where it is a terminal (not into a log
    or a pipe): a 102-megapixel photo takes minutes. Each residual block counts as a pass."""
    return tqdm(total=passes * tiles.count, desc=desc, unit=" passes", unit_scale=1 / tiles.count, leave=False, disable=None,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f}{unit} [{elapsed}<{remaining}]")


def _exact(net: TransformerNet, x: torch.Tensor, tiles: Tiles, hold: torch.dtype) -> torch.Tensor:
    """The encoder in tiles, its statistics gathered norm by norm, the last one's input kept whole
    (a pass fewer) in `hold`; the residual blocks whole; the decoder in tiles as the encoder."""
    stats = tiles.gather(net.encoder, x, 1, len(_norms(net.encoder)) - 1)
    parts, e = tiles.until_norm(net.encoder, x, 1, stats, keep=hold)
    assert e is not None
    last_norm = _norms(net.encoder)[-1][1]  # the encoder ends in conv, norm, ReLU
    _normalise(e, FixedNorm(last_norm, *parts.result()), relu=True)  # (1, 4c, H/m, W/m)
    size, work = _body_bytes(net, x), _work_dtype(x)
    spare = 0 if hold != work else 2 if size <= KEEP_BYTES else 1 if size <= LEAN_BYTES else 0
    body = _residuals_in_place(net.residuals, e, spare, work, done=lambda: tiles.tick(tiles.count))
    del e
    stats = tiles.gather(net.decoder, body, net.multiple, len(_norms(net.decoder)))
    return tiles.run(net.decoder, body, net.multiple, stats).mul_(net.output_scale)  # in place: a copy was 1.2 GB at 102 megapixels


def _residuals_in_place(blocks: nn.Sequential, x: torch.Tensor, spare: int = 2, work: torch.dtype | None = None,
                        done: Callable[[], object] = lambda: None) -> torch.Tensor:
    """blocks(x), written over x, with `spare` more buffers of its size and the bands', `done` called
    after each block; with none, x may be held in a narrower dtype than the convs' `work` (default:
    x's). With two, each conv runs once: forward held five more (each conv's reflection-padded copy
    and oneDNN's reorders of its input and output, whole; measured on a 12-megapixel photo's
    blocks). With one, each block's second conv runs twice, for its statistics and then for the sum.
    With none, its first conv three times too, for the rows the second conv reads (`_block_alone`)."""
    residual = [block for block in blocks if isinstance(block, ResidualBlock)]
    if len(residual) != len(blocks):
        y = blocks(x.to(work or x.dtype)).to(x.dtype)
        for _ in blocks:
            done()
        return y
    if spare == 0:
        for block in residual:
            _block_alone(block, x, work or x.dtype)
            done()
        return x
    assert work in (None, x.dtype), "only a block alone widens its bands"
    branch = torch.empty_like(x)
    out = torch.empty_like(x) if spare > 1 else None
    for block in residual:
        _normalise(branch, _conv_norm(block.conv1, block.in1, _sliced(x), x.shape[-2], branch), relu=True)
        norm = _conv_norm(block.conv2, block.in2, _sliced(branch), branch.shape[-2], out)
        if out is None:  # x += norm(conv2(branch)), the conv again, band by band
            for r0, r1, y in _conv_bands(block.conv2, _sliced(branch), branch.shape[-2]):
                x[..., r0:r1, :] += norm(y)
        else:
            _normalise(out, norm, relu=False)
            x += out
        done()
    return x


def _block_alone(block: ResidualBlock, x: torch.Tensor, work: torch.dtype) -> None:
    """x += in2(conv2(relu(in1(conv1(x))))) with no other tensor of x's size: the branch's rows are
    made again from x's wherever conv2 reads them, and each band of the sum is written once the
    next band, which reads the rows above it, has been made. Bands run in `work`."""
    h = x.shape[-2]
    rows = _sliced(x, work)
    norm1 = _conv_norm(block.conv1, block.in1, rows, h, None)

    def branch(a: int, b: int) -> torch.Tensor:  # relu(in1(conv1(x)))[a:b], rounded as stored
        return norm1(_conv_rows(block.conv1, rows, h, a, b)).relu_()

    norm2 = _conv_norm(block.conv2, block.in2, branch, h, None)
    pending: tuple[int, int, torch.Tensor] | None = None
    for r0, r1, y in _conv_bands(block.conv2, branch, h):
        band = rows(r0, r1) + norm2(y)
        if pending is not None:
            x[..., pending[0] : pending[1], :] = pending[2]
        pending = r0, r1, band
    assert pending is not None  # every tensor has a row
    x[..., pending[0] : pending[1], :] = pending[2]


RowsOf = Callable[[int, int], torch.Tensor]  # a tensor's rows a to b: sliced, or made again


def _sliced(x: torch.Tensor, dtype: torch.dtype | None = None) -> RowsOf:
    return lambda a, b: x[..., a:b, :].to(dtype or x.dtype)


def _conv_rows(conv: ConvLayer, rows: RowsOf, h: int, r0: int, r1: int) -> torch.Tensor:
    """conv(x)[..., r0:r1, :] from the rows of x (h of them) it reaches, reflected at the image's
    edges as ReflectionPad2d does."""
    reflect, conv2d = cast(nn.ReflectionPad2d, conv[0]), cast(nn.Conv2d, conv[1])
    pad = int(reflect.padding[0])
    a, b = max(0, r0 - pad), min(h, r1 + pad)
    return conv2d(F.pad(rows(a, b), (pad, pad, pad - (r0 - a), pad - (b - r1)), mode="reflect"))


def _conv_bands(conv: ConvLayer, rows: RowsOf, h: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """conv(x) in bands of rows: (first row, row after the last, the band's output)."""
    for r0 in range(0, h, BAND):
        r1 = min(h, r0 + BAND)
        yield r0, r1, _conv_rows(conv, rows, h, r0, r1)


def _conv_norm(conv: ConvLayer, norm: nn.InstanceNorm2d, rows: RowsOf, h: int, out: torch.Tensor | None) -> FixedNorm:
    """The norm of conv(x) with the statistics combined from its bands'; conv(x) into `out` where given."""
    parts = Moments()
    for r0, r1, y in _conv_bands(conv, rows, h):
        parts.add(y)
        if out is not None:
            out[..., r0:r1, :] = y
    return FixedNorm(norm, *parts.result())


def _normalise(x: torch.Tensor, norm: FixedNorm, relu: bool) -> None:
    """x = norm(x), ReLU'd where asked, in place, in bands."""
    for r0 in range(0, x.shape[-2], BAND):
        y = x[..., r0 : r0 + BAND, :]
        z = norm(y)
        y.copy_(z.relu_() if relu else z)


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the network's convs run in on x."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


def _body_channels(net: TransformerNet) -> int:
    """The residual blocks' channels: those of the encoder's last norm."""
    return _norms(net.encoder)[-1][1].num_features


def _body_bytes(net: TransformerNet, x: torch.Tensor) -> int:
    """The size of one tensor at the residual blocks' size for x, in the dtype it would run in."""
    cells = math.ceil(x.shape[-2] / net.multiple) * math.ceil(x.shape[-1] / net.multiple)
    return _body_channels(net) * cells * _work_dtype(x).itemsize


def _exact_pixels(net: TransformerNet) -> int:
    """The most pixels with exact statistics: the blocks' tensor in BODY_BYTES at 2 bytes a value."""
    return BODY_BYTES // (2 * _body_channels(net)) * net.multiple**2


def _hold_dtype(net: TransformerNet, x: torch.Tensor) -> torch.dtype | None:
    """The dtype to hold the residual blocks' tensor in for exact statistics; None where it does
    not fit BODY_BYTES. In fp32 (the photo precision on AVX2-only CPUs), float16 where float32 does
    not fit: 11 bits of mantissa and no product rounded, against bf16's 8 for every conv
    (docs/design.md#tiles)."""
    size, work = _body_bytes(net, x), _work_dtype(x)
    if size <= BODY_BYTES:
        return work
    return torch.float16 if work == torch.float32 and size // 2 <= BODY_BYTES else None


class Moments:
    """The mean and variance per channel of a whole, from its parts (tile cores, bands) added one
    by one in float64 on the CPU (Chan et al.'s update). Nothing is kept per part: small tensors
    kept per tile until a pass ended were carved out of the tiles' freed buffers, and the heap grew
    by about a buffer a tile (docs/design.md#tiles)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = self.m2 = torch.zeros(0, dtype=torch.float64)  # (C,) once a part is added

    def add(self, y: torch.Tensor) -> None:
        """A part, (1, C, h, w). Two passes of sums: torch.var_mean over (0, 2, 3) took 7 times as
        long on the CPU (torch 2.15)."""
        y, pixels = y.float(), y.shape[-2] * y.shape[-1]
        mean = y.sum(dim=(0, 2, 3)) / pixels
        m2 = (y - mean.view(1, -1, 1, 1)).square_().sum(dim=(0, 2, 3)).cpu().double()
        mean = mean.cpu().double()
        if not self.count:
            self.count, self.mean, self.m2 = pixels, mean, m2
            return
        total = self.count + pixels
        delta = mean - self.mean
        self.mean.add_(delta, alpha=pixels / total)
        self.m2.add_(m2).add_(delta.square_(), alpha=self.count * pixels / total)
        self.count = total

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and variance of the whole: (1, C, 1, 1) each."""
        return self.mean.float().view(1, -1, 1, 1), (self.m2 / self.count).float().view(1, -1, 1, 1)


class _Stop(Exception):
    """Ends a tile's pass at the norm whose statistics are being gathered."""


Box = tuple[int, int, int, int, int, int, int, int]  # the core's top, left, bottom, right; the tile's, with margins
Span = tuple[int, int, int, int]  # along one side: the core's start and end, the tile's


class Tiles:
    """Tiles of at most `tile` pixels with `margin` around them over an image padded to `size`, at
    multiples of `step`; a stage of the network (encoder, decoder, or all of it) runs on a tensor
    at 1/stride of that size."""

    def __init__(self, size: tuple[int, int], tile: int, margin: int, step: int,
                 dtype: torch.dtype | None = None) -> None:
        self.size, self.tile, self.margin, self.step = size, tile, margin, step
        self.dtype = dtype  # tiles are cut in it (default: x's), for a stage whose input is held narrower
        self.count = len(self.spans(size[0])) * len(self.spans(size[1]))
        self.bar: tqdm | None = None  # counts every tile of every pass where set

    def tick(self, tiles: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(tiles)

    def spans(self, length: int) -> list[Span]:
        """Cores as even as `step` allows, each in a tile of one size: the margins shift inwards at
        the image's edges. No thin last tile with its margins, and each pass asks malloc for the
        same sizes tile after tile: with freed memory kept for reuse, the peak at 37 megapixels was
        4.0-5.6 GB from run to run, against 5.3-6.4 with tiles of several sizes (docs/design.md#tiles)."""
        count = math.ceil(length / self.tile)
        core = math.ceil(length / count / self.step) * self.step
        window = min(length, core + 2 * self.margin)
        spans = []
        for start in range(0, length, core):
            t0 = min(max(0, start - self.margin), length - window)
            spans.append((start, min(length, start + core), t0, t0 + window))
        return spans

    def boxes(self) -> Iterator[Box]:
        columns = self.spans(self.size[1])
        for top, bottom, t0, t1 in self.spans(self.size[0]):
            for left, right, l0, l1 in columns:
                yield top, left, bottom, right, t0, l0, t1, l1

    def crop(self, x: torch.Tensor, stride: int, box: Box) -> torch.Tensor:
        """Box's tile of x, padded as forward pads where it runs past the end of an unpadded x."""
        t0, l0, t1, l1 = box[4:]
        t = x[..., t0 // stride : t1 // stride, l0 // stride : l1 // stride].to(self.dtype or x.dtype)
        short = ((l1 - l0) // stride - t.shape[-1], (t1 - t0) // stride - t.shape[-2])
        return F.pad(t, (0, short[0], 0, short[1]), mode="replicate") if any(short) else t

    def core(self, z: torch.Tensor, box: Box) -> tuple[torch.Tensor, int, int]:
        """The core's part of a tile's feature map z, and where it goes in z's whole (its top and left)."""
        top, left, bottom, right, t0, l0, t1, _ = box
        s = (t1 - t0) // z.shape[-2]  # z's stride
        a, b = (top - t0) // s, (left - l0) // s
        return z[..., a : a + (bottom - top) // s, b : b + (right - left) // s], top // s, left // s

    def run(self, stage: nn.Module, x: torch.Tensor, stride: int, stats: NormStats) -> torch.Tensor:
        """The stage's output, whole: (1, C, H, W) of the padded size."""
        fixed = _with_norms(stage, stats)
        out = None
        for box in self.boxes():
            core, top, left = self.core(fixed(self.crop(x, stride, box)), box)
            if out is None:
                out = core.new_empty(1, core.shape[1], *self.size)
            out[..., top : top + core.shape[-2], left : left + core.shape[-1]] = core
            self.tick()
        assert out is not None  # every image has a tile
        return out

    def gather(self, stage: nn.Module, x: torch.Tensor, stride: int, count: int) -> NormStats:
        """The statistics of the stage's first `count` norms, a pass over the tiles each."""
        stats: NormStats = []
        for _ in range(count):
            stats.append(self.until_norm(stage, x, stride, stats)[0].result())
        return stats

    def until_norm(self, stage: nn.Module, x: torch.Tensor, stride: int, stats: NormStats,
                   keep: torch.dtype | None = None) -> tuple[Moments, torch.Tensor | None]:
        """Every tile up to the stage's norm number len(stats), the norms before it fixed to `stats`:
        the moments of what that norm sees in each core and, with `keep`, that input whole in that dtype."""
        fixed = _with_norms(stage, stats)
        parts = Moments()
        box: list[Box] = []
        whole: list[torch.Tensor] = []

        def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
            z = inputs[0]
            core, top, left = self.core(z, box[0])
            parts.add(core)
            if keep is not None:
                if not whole:
                    s = (box[0][6] - box[0][4]) // z.shape[-2]
                    whole.append(z.new_empty(1, z.shape[1], self.size[0] // s, self.size[1] // s, dtype=keep))
                whole[0][..., top : top + core.shape[-2], left : left + core.shape[-1]] = core
            raise _Stop

        fixed.get_submodule(_norms(stage)[len(stats)][0]).register_forward_pre_hook(record)
        for b in self.boxes():
            box[:] = [b]
            try:
                fixed(self.crop(x, stride, b))
            except _Stop:
                pass
            self.tick()
        return parts, whole[0] if whole else None


def _with_norms(stage: nn.Module, stats: NormStats) -> nn.Module:
    """A copy of `stage` whose first len(stats) instance norms use `stats` instead of their input's own."""
    fixed = copy.deepcopy(stage)
    for (name, norm), (mean, var) in zip(_norms(fixed), stats):
        fixed.set_submodule(name, FixedNorm(norm, mean, var))
    return fixed


def _norms(net: nn.Module) -> list[tuple[str, nn.InstanceNorm2d]]:
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)]


def norm_statistics(net: nn.Module, reference: torch.Tensor) -> NormStats:
    """The mean and variance every InstanceNorm2d of `net` sees on `reference` (1, 3, h, w).
    Hooks go on a copy, so the shared network is never touched."""
    probe = copy.deepcopy(net)
    stats: NormStats = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        x = inputs[0].float()
        stats.append((x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)))

    for _, m in _norms(probe):
        m.register_forward_hook(record)
    probe(reference)
    return stats


def reference_image(x: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """(1, 3, H, W) scaled down (area average) to at most `max_pixels`, the largest single pass."""
    h, w = x.shape[-2:]
    scale = min(1.0, math.sqrt(max_pixels / (h * w)))
    if scale == 1.0:
        return x
    return F.interpolate(x, size=(max(1, int(h * scale)), max(1, int(w * scale))), mode="bicubic", antialias=True).clamp(0, 1)


def reference_statistics(net: nn.Module, x: torch.Tensor, max_pixels: int) -> NormStats:
    """The statistics of (1, 3, H, W) `x` as the largest single pass sees them, carried on to its own
    size: means linearly and variances geometrically in the logarithm of the area, from copies at
    `max_pixels` and half that. With 4 shipped networks and 4 photos at 6.8 and 12 megapixels, the
    tiles came 1.45-4.5x closer to a single pass at full size than with the copy at `max_pixels`
    alone (docs/design.md#tiles)."""
    large = reference_image(x, max_pixels)
    stats = norm_statistics(net, large)
    area, large_area = x.shape[-2] * x.shape[-1], large.shape[-2] * large.shape[-1]
    if area <= large_area or max_pixels < 256 * 256:  # from copies of 140x140 (borders weigh more) it was worse
        return stats
    small = reference_image(x, max_pixels // 2)
    steps = math.log(area / large_area) / math.log(large_area / (small.shape[-2] * small.shape[-1]))
    carried = []
    for (small_mean, small_var), (mean, var) in zip(norm_statistics(net, small), stats):
        log_var, small_log_var = var.clamp(min=1e-12).log(), small_var.clamp(min=1e-12).log()
        carried.append((mean + steps * (mean - small_mean), (log_var + steps * (log_var - small_log_var)).exp()))
    return carried
