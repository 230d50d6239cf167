import io
import platform
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image
from tqdm import tqdm

from fast_style import tiling
from fast_style.engine import Engine, pass_pixels
from fast_style.images import open_rgb
from fast_style.model_file import load_model
from fast_style.pixels import to_tensor
from fast_style.styles import STYLES_DIR
from fast_style.tiling import norm_statistics, reference_image, stylize_tiled
from fast_style.transformer import TransformerConfig, TransformerNet, for_inference

REALTIME8 = Path(__file__).parents[1] / "checkpoints" / "starry_night_realtime8.safetensors"


@pytest.mark.parametrize("layout", ["johnson", "realtime", "realtime8"])
def test_tiles_give_a_single_pass_picture_exactly(layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No seams and the image's own statistics, gathered through the tiles: the single pass's
    pixels. realtime8 reaches 80 px and strides by 8: a margin of 64 or tiles cut at 4 would show.
    The same with the residual blocks' second convs run twice (above KEEP_BYTES), and their first
    convs three times too (above LEAN_BYTES)."""
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2 if layout == "johnson" else 4,
                                           output_scale=1.0, layout=layout)).eval()
    x = torch.rand(1, 3, 301, 263)  # odd sizes: the last tiles are ragged, and padded as forward pads
    with torch.no_grad():
        whole = net(x)
        tiled = stylize_tiled(net, x, max_pixels=96 * 96, tile=96)
        inference = stylize_tiled(for_inference(net), x, max_pixels=96 * 96, tile=96)  # as the engine runs it
        monkeypatch.setattr(tiling, "KEEP_BYTES", 0)
        lean = stylize_tiled(for_inference(net), x, max_pixels=96 * 96, tile=96)
        monkeypatch.setattr(tiling, "LEAN_BYTES", 0)
        alone = stylize_tiled(for_inference(net), x, max_pixels=96 * 96, tile=96)
    assert tiled.shape == inference.shape == lean.shape == alone.shape == x.shape
    for y in (tiled, inference, lean, alone):
        assert (y - whole).abs().max() < 1e-4


@pytest.mark.parametrize("layout", ["johnson", "realtime", "realtime8"])
def test_tiles_in_bf16_round_as_a_single_pass_does(layout: str) -> None:
    """bf16, the photo precision on CPUs with AVX512-bf16: the fixed norms computed in float and
    rounded once, as InstanceNorm2d under autocast. Rounded in bf16 instead, these tiles were a mean
    of 1.1-1.8/255 from a single pass, against 0.37-0.69 (starry_night on a 12-megapixel photo: 0.94
    against 0.32)."""
    torch.manual_seed(0)
    net = for_inference(TransformerNet(TransformerConfig(channels=16, res_blocks=2, output_scale=1.0,
                                                         layout=layout)).eval())
    x = torch.rand(1, 3, 301, 263)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        error = (stylize_tiled(net, x, max_pixels=96 * 96, tile=96).float() - net(x).float()).abs()
    assert error.mean() * 255 < 0.9  # 0.69 for realtime8 under the AVX2 cap


@pytest.mark.parametrize("layout", ["johnson", "realtime", "realtime8"])
def test_in_fp32_past_body_bytes_the_blocks_tensor_is_held_in_float16(
        layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """62 to 125 megapixels for the full network: the blocks' tensor alone, in float16, between convs
    that run in float. starry_night on chicago at 2.2 megapixels so: a mean of 0.009/255 from a single
    pass, at most 0.16; held in bf16, 0.07 and 1.1. These random networks: 0.05-0.06 and at most
    0.54; in bf16, 0.37-0.49 and 2.5-3.5."""
    torch.manual_seed(0)
    net = for_inference(TransformerNet(TransformerConfig(channels=16, res_blocks=2, output_scale=1.0,
                                                         layout=layout)).eval())
    x = torch.rand(1, 3, 301, 263)
    held: list[torch.dtype] = []
    alone = tiling._block_alone

    def recorded(block: tiling.ResidualBlock, x: torch.Tensor, work: torch.dtype) -> None:
        held.append(x.dtype)
        alone(block, x, work)

    monkeypatch.setattr(tiling, "_block_alone", recorded)
    monkeypatch.setattr(tiling, "BODY_BYTES", tiling._body_bytes(net, x) - 1)
    with torch.no_grad():
        error = (stylize_tiled(net, x, max_pixels=96 * 96, tile=96) - net(x)).abs() * 255
    print(f"{layout}: a mean of {error.mean():.4f}/255, at most {error.max():.3f}")
    assert held == [torch.float16] * 2
    assert error.mean() < 0.15 and error.max() < 1


def test_past_float16s_range_the_blocks_tensor_is_held_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder's last conv 10^5 times larger: its output, held before its norm, overflows float16
    (the norm then takes the scale out again). Not a picture of NaN: the same again in bf16."""
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0)).eval()
    last_conv = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        for parameter in last_conv.parameters():
            parameter.mul_(1e5)
    x = torch.rand(1, 3, 200, 200)
    monkeypatch.setattr(tiling, "BODY_BYTES", tiling._body_bytes(net, x) - 1)
    with torch.no_grad():
        error = (stylize_tiled(net, x, max_pixels=64 * 64, tile=64) - net(x)).abs() * 255
    assert error.mean() < 0.5


@pytest.mark.parametrize("way", ["exact", "lean", "alone", "float16", "estimated"])
def test_a_terminal_sees_the_passes_over_the_tiles_to_the_end(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 102-megapixel photo takes minutes: on a terminal a bar counts every tile of every pass and
    each residual block as a pass, whichever way the statistics are made, and ends full."""
    bars: list[tqdm] = []

    class OnATerminal(tqdm):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
            bars.append(self)

    monkeypatch.setattr(tiling, "tqdm", OnATerminal)
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2, output_scale=1.0)).eval()
    x = torch.rand(1, 3, 301, 263)
    if way in ("lean", "alone"):
        monkeypatch.setattr(tiling, "KEEP_BYTES", 0)
    if way == "alone":
        monkeypatch.setattr(tiling, "LEAN_BYTES", 0)
    if way in ("float16", "estimated"):
        monkeypatch.setattr(tiling, "BODY_BYTES", tiling._body_bytes(net, x) // (1 if way == "float16" else 2) - 1)
    with torch.no_grad():
        stylize_tiled(net, x, max_pixels=96 * 96, tile=96)
    passes = 1 if way == "estimated" else 3 + 2 + 2 + 1  # the norms of the encoder, the blocks, the decoder's and its run
    [bar] = bars
    assert bar.n == bar.total == passes * 4 * 3  # tiles of 96 (76 and 88 in the core) over 304x264
    assert str(bar).startswith("263x301 in tiles: 100%") and f"| {passes}.0/{passes} passes [" in str(bar)


def test_tiles_are_of_one_shape_and_their_cores_cover_the_image_once() -> None:
    """A 37-megapixel photo: 6 rows of 880 and 7 columns of 1008 (the last 992), not 1024 and a
    sliver of 160; every tile 64 pixels wider than its core on each side, the margin shifted
    inwards at the image's edges."""
    h, w, margin = 5280, 7040, 64
    boxes = list(tiling.Tiles((h, w), 1024, margin, 4).boxes())
    assert len(boxes) == 6 * 7
    assert {(t1 - t0, l1 - l0) for _, _, _, _, t0, l0, t1, l1 in boxes} == {(880 + 2 * margin, 1008 + 2 * margin)}
    cover = torch.zeros(h, w, dtype=torch.int32)
    for top, left, bottom, right, t0, l0, t1, l1 in boxes:
        cover[top:bottom, left:right] += 1
        assert (top == 0 or top - t0 >= margin) and (bottom == h or t1 - bottom >= margin)
        assert (left == 0 or left - l0 >= margin) and (right == w or l1 - right >= margin)
        assert 0 <= t0 and t1 <= h and 0 <= l0 and l1 <= w
    assert (cover == 1).all()


def test_given_statistics_reproduce_a_single_pass_with_them() -> None:
    """The estimated path: with the image's own statistics handed in, the same pixels."""
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2, output_scale=1.0, layout="realtime8")).eval()
    x = torch.rand(1, 3, 301, 263)
    with torch.no_grad():
        tiled = stylize_tiled(net, x, max_pixels=96 * 96, tile=96, stats=norm_statistics(net, x))
        assert (tiled - net(x)).abs().max() < 1e-4


@pytest.mark.parametrize("spare", [2, 1, 0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_residual_blocks_in_place_give_forwards_tensor(dtype: torch.dtype, spare: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Their convs in bands of rows (here 8, the last of one row), each reaching into its
    neighbours and reflected at the image's edges; their norms' statistics from the bands'. With one
    spare tensor, each block's second conv runs again for the sum instead of being kept; with none,
    its branch is made again from the block's input, which is overwritten band by band meanwhile."""
    monkeypatch.setattr(tiling, "BAND", 8)
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=4, res_blocks=2)).eval()  # blocks of 16 channels
    for block in net.residuals:
        for norm in (block.in1, block.in2):
            torch.nn.init.normal_(norm.weight, 1, 0.3)
            torch.nn.init.normal_(norm.bias, 0, 0.3)
    x = torch.randn(1, 16, 33, 21).to(dtype)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        expected = net.residuals(x)
        y = tiling._residuals_in_place(net.residuals, x.clone(), spare)
    assert y.dtype == expected.dtype == dtype
    error = (y.float() - expected.float()).abs()
    print(f"{dtype}: a mean of {error.mean():.2e}, at most {error.max():.2e}, against values of {expected.float().std():.2f}")
    assert error.max() < (1e-4 if dtype == torch.float32 else 0.05) and error.mean() < (1e-6 if dtype == torch.float32 else 3e-3)


def test_statistics_are_estimated_only_where_the_residual_blocks_tensor_is_too_large(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Memory: with the full network, a 24- or 26-megapixel camera's photo is exact in fp32, each
    residual block's convs run once; a 36-megapixel one too, their second convs twice; a 61-megapixel
    one too, holding the blocks' tensor alone; a 102-megapixel one would hold 3.3 GB at the residual
    blocks' size, so it holds them in float16 in fp32 and in bf16 as they run. Past 125 megapixels
    the statistics are estimated, and the picture differs from a single pass: one line says so."""
    net = TransformerNet(TransformerConfig(output_scale=1.0))  # 128 channels at 1/16 of the pixels
    sizes = ((4160, 6240), (4912, 7360), (6336, 9504), (8736, 11648), (9600, 13200))
    camera, larger_camera, largest_camera, large, too_large = (
        torch.empty(1, 3, 1, 1).expand(1, 3, h, w) for h, w in sizes)
    assert tiling._body_bytes(net, camera) <= tiling.KEEP_BYTES < tiling._body_bytes(net, larger_camera)
    assert tiling._body_bytes(net, larger_camera) <= tiling.LEAN_BYTES < tiling._body_bytes(net, largest_camera)
    assert tiling._body_bytes(net, largest_camera) <= tiling.BODY_BYTES < tiling._body_bytes(net, large)
    assert [tiling._hold_dtype(net, x) for x in (largest_camera, large, too_large)] == [torch.float32, torch.float16, None]
    assert tiling._exact_pixels(net) // 10**6 == 125
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the engine's photo precision on some CPUs
        assert [tiling._hold_dtype(net, x) for x in (large, too_large)] == [torch.bfloat16, None]

    torch.manual_seed(0)
    small = TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0)).eval()
    x = torch.rand(1, 3, 200, 200)
    with torch.no_grad():
        whole = small(x)
        monkeypatch.setattr(tiling, "BODY_BYTES", tiling._body_bytes(small, x) // 2)  # just in float16
        stylize_tiled(small, x, max_pixels=64 * 64, tile=64)
        assert not caplog.records
        monkeypatch.setattr(tiling, "BODY_BYTES", tiling._body_bytes(small, x) // 2 - 1)  # not even in float16
        estimated = stylize_tiled(small, x, max_pixels=64 * 64, tile=64)
    assert 1e-3 < (estimated - whole).abs().mean()
    assert [r.getMessage().split(" from ")[0] for r in caplog.records] == \
        ["note: 200x200 is past the 0 megapixels that tiles give one pass's colours; its colours are estimated"]


def test_other_statistics_change_the_picture_and_the_shared_network_is_untouched() -> None:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        other = stylize_tiled(net, x, max_pixels=64 * 64, stats=norm_statistics(net, x * 0.2))
        assert (other - before).abs().max() > 1e-2
        assert torch.equal(net(x), before)
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules()) == 7  # its own norms: 3 in, 2 a block, 2 out


def test_another_thread_is_not_disturbed_by_a_tiled_image() -> None:
    """One Engine, two threads: a tiled image in one does not change the other's pictures
    (before, tiling patched the shared network's norm layers for the whole run)."""
    torch.manual_seed(0)
    engine = Engine(TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0)), "cpu",
                    max_pass_pixels=128 * 128)
    small, large = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 400, 400) * 0.3
    expected = engine(small)
    done = threading.Event()

    def tile_repeatedly() -> None:
        while not done.is_set():
            engine(large)

    worker = threading.Thread(target=tile_repeatedly)
    worker.start()
    try:
        results = [engine(small) for _ in range(40)]
    finally:
        done.set()
        worker.join()
    assert max((r - expected).abs().max().item() for r in results) < 1e-5


@pytest.mark.slow  # two passes over 4.2 megapixels
def test_at_the_full_network_threshold_a_shipped_network_tiles_give_the_single_pass_picture() -> None:
    """Just above the full network's one-pass limit, with a shipped network, the engine's tiles are
    the single pass's picture to float rounding: the look does not jump there. With statistics
    from a copy scaled to the threshold it was a mean of 0.27/255 here (1024 px: 17/255)."""
    net, _ = load_model(REALTIME8)
    limit = pass_pixels(TransformerNet(TransformerConfig()))
    h, w = 2000, 2100
    assert h * w > limit
    picture = open_rgb(STYLES_DIR / "the_scream.jpg").resize((w, h), Image.LANCZOS)  # a picture with real detail
    x = to_tensor(picture)[None]  # (1, 3, h, w)
    single = Engine(net, "cpu", precision="fp32")(x)  # realtime8 takes 8 times that in one pass
    tiled = Engine(net, "cpu", precision="fp32", max_pass_pixels=limit)(x)
    error = (tiled - single).abs()
    print(f"tiled against a single pass at {w}x{h}: a mean of {error.mean() * 255:.4f}/255, at most {error.max() * 255:.3f}/255")
    assert error.mean() * 255 < 0.01 and error.max() * 255 < 1


def test_a_network_takes_in_one_pass_what_its_widest_layer_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory follows the widest activation: the full network's 32 channels at full size allow
    2048x2048, the small one's 16 twice that, a realtime network's 16 at half size 8 times (a 4K
    video frame in one pass, in the stream precision)."""
    full = TransformerNet(TransformerConfig())
    assert pass_pixels(full) == 2048 * 2048
    assert pass_pixels(TransformerNet(TransformerConfig(channels=16))) == 2 * 2048 * 2048
    for layout in ("realtime", "realtime8"):
        assert pass_pixels(TransformerNet(TransformerConfig(channels=16, layout=layout))) == 8 * 2048 * 2048

    tiled: list[torch.Size] = []

    def record(net: torch.nn.Module, x: torch.Tensor, max_pixels: int) -> torch.Tensor:
        tiled.append(x.shape)
        return x

    monkeypatch.setattr("fast_style.engine.stylize_tiled", record)
    net = TransformerNet(TransformerConfig(channels=4, res_blocks=1, layout="realtime8"))
    x = torch.rand(1, 3, 2100, 2100)  # above the full network's limit
    Engine(net, "cpu")(x)
    assert tiled == []
    Engine(net, "cpu", max_pass_pixels=2048 * 2048)(x)
    assert tiled == [x.shape]


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="int8 needs an x86 CPU")
def test_an_int8_pass_takes_a_4k_frame_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """8-bit activations let an int8 pass take twice a float pass's pixels in about its memory: a
    4K frame through the full network's int8 stream path (3.6 s here) instead of float tiles (25 s)."""
    full = TransformerNet(TransformerConfig())
    assert pass_pixels(full, "int8") == 2 * pass_pixels(full) >= 3840 * 2160 > pass_pixels(full)

    tiled: list[torch.Size] = []
    quantized: list[torch.Size] = []
    monkeypatch.setattr("fast_style.engine.stylize_tiled", lambda net, x, max_pixels: tiled.append(x.shape) or x)
    monkeypatch.setattr(Engine, "_int8_net", lambda self, key, net, x: quantized.append(x.shape) or (lambda x: x))
    monkeypatch.setattr("fast_style.engine.PASS_BYTES", 64 * 64 * 4 * 4)  # a float pass: 64x64 for this network
    net = TransformerNet(TransformerConfig(channels=4, res_blocks=1))
    Engine(net, "cpu", precision="fp32")(torch.rand(1, 3, 64, 96))
    Engine(net, "cpu", precision="int8")(torch.rand(1, 3, 64, 96))
    Engine(net, "cpu", precision="int8")(torch.rand(1, 3, 96, 96))
    assert tiled == [(1, 3, 64, 96), (1, 3, 96, 96)] and quantized == [(1, 3, 64, 96)]


def test_estimated_statistics_follow_the_image_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where they are estimated (images too large for exact statistics): a copy scaled down to one
    pass has less fine detail than the image, so its statistics alone drift from the image's as the
    image grows (a 12-megapixel photo came out darker). Carried on from a second copy at half the
    pixels, the tiles come nearer a single pass at full size."""
    monkeypatch.setattr(tiling, "BODY_BYTES", 0)
    net, _ = load_model(REALTIME8)
    photo = to_tensor(open_rgb(Path(__file__).parents[1] / "data" / "examples" / "chicago.jpg"))[None]
    x = torch.nn.functional.interpolate(photo, size=(543, 724), mode="bicubic", antialias=True).clamp(0, 1)
    # 6x one pass, as a 24-megapixel photo is to the full network's. Not much smaller: with a copy of
    # 140x140 pixels, where the borders weigh more, carrying on was worse (docs/design.md#tiles).
    limit = 256 * 256
    with torch.no_grad():
        single = net(x).clamp(0, 1)
        scaled_only = stylize_tiled(net, x, limit, tile=256, stats=norm_statistics(net, reference_image(x, limit)))
        carried = Engine(net, "cpu", precision="fp32", max_pass_pixels=limit)(x)
    before, now = ((y.clamp(0, 1) - single).abs().mean().item() * 255 for y in (scaled_only, carried))
    print(f"from a single pass: {before:.2f}/255 with the scaled copy's statistics, {now:.2f}/255 carried on")
    assert now < 0.8 * before
