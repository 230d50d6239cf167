from pathlib import Path

import pytest
import torch
from PIL import Image

from fast_style.arbitrary import ArbitraryConfig, ArbitraryNet, StyleReader
from fast_style.losses import PerceptualLoss, gram_matrix, total_variation
from fast_style.pixels import load_style_image, to_pil
from fast_style.vgg import VGG16Features


@pytest.fixture(scope="module")
def vgg() -> VGG16Features:
    torch.manual_seed(0)
    return VGG16Features(weights="random")


def test_gram_is_normalised_by_chw() -> None:
    f = torch.ones(2, 4, 3, 5)
    assert torch.allclose(gram_matrix(f), torch.full((2, 4, 4), 1 / 4))
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    assert torch.allclose(gram_matrix(f), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)


def test_total_variation_of_flat_image_is_zero() -> None:
    assert total_variation(torch.full((1, 3, 9, 9), 0.3)) == 0
    assert total_variation(torch.rand(1, 3, 9, 9)) > 0


def test_style_target_is_broadcast_over_batch(vgg: VGG16Features) -> None:
    loss = PerceptualLoss(vgg)
    loss.set_style(torch.rand(1, 3, 48, 40))
    assert loss.gram_0.shape == (1, 64, 64)
    x = torch.rand(1, 3, 32, 32)
    single = loss(x, x)
    double = loss(x.expand(3, -1, -1, -1), x.expand(3, -1, -1, -1))
    assert single["content"] == 0  # output == content
    assert torch.allclose(single["style"], double["style"])


def test_weights_scale_their_terms(vgg: VGG16Features) -> None:
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    style = torch.rand(1, 3, 32, 32)
    base = PerceptualLoss(vgg, content_weight=1.0, style_weight=1.0, tv_weight=1.0)
    scaled = PerceptualLoss(vgg, content_weight=10.0, style_weight=100.0, tv_weight=0.0)
    base.set_style(style)
    scaled.set_style(style)
    l1, l2 = base(a, b), scaled(a, b)
    assert torch.allclose(l2["content"], 10 * l1["content"])
    assert torch.allclose(l2["style"], 100 * l1["style"])
    assert l2["tv"] == 0 and l1["tv"] > 0
    assert torch.allclose(l1["total"], l1["content"] + l1["style"] + l1["tv"])


def test_vgg_is_frozen_and_stays_in_eval(vgg: VGG16Features) -> None:
    vgg.train()
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())
    out = vgg(torch.rand(1, 3, 64, 64), ["relu4_3", "relu1_2"])
    assert out["relu1_2"].shape == (1, 64, 64, 64) and out["relu4_3"].shape == (1, 512, 8, 8)


def test_a_painting_is_what_is_painted_not_what_its_transparency_hides(tmp_path: Path) -> None:
    """A PNG keeps colours under its transparent pixels, black in most editors: read as they were,
    a painting with transparent margins (half of it here) made the `any` model's output dark
    (a mean of 75 against 125 for the painted part alone, with 13% of the pixels below 40)."""
    torch.manual_seed(0)
    painted = torch.rand(3, 40, 30)
    rgba = torch.zeros(4, 40, 50)  # transparent black margins, left and right
    rgba[:3, :, 10:40], rgba[3, :, 10:40] = painted, 1
    rgba[3, 0, 10] = 0  # a transparent pixel inside the painted part's box: white, as a page shows it
    Image.fromarray((rgba * 255).round().byte().permute(1, 2, 0).numpy(), "RGBA").save(tmp_path / "margins.png")
    seen = (painted * 255).round() / 255
    seen[:, 0, 0] = 1
    assert torch.equal(load_style_image(tmp_path / "margins.png", None)[0], seen)  # train, evaluate, --optimize
    styles = StyleReader(ArbitraryNet(ArbitraryConfig(style_size=64)), vgg_weights="random")  # --style-image, the page, the Python API
    torch.manual_seed(0)
    from_file = styles.statistics(Image.open(tmp_path / "margins.png"))
    assert torch.allclose(from_file, styles.statistics(to_pil(seen)), atol=1e-6)
    with pytest.raises(ValueError, match="the painting is transparent all over"):
        styles.code(Image.new("LA", (20, 20)))


def test_a_small_copy_of_a_painting_enlarged_to_the_style_size_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 256-px copy of wave.jpg enlarged to 512 reads a style 0.31 of the way to another painting's."""
    for side in (300, 400):
        Image.new("RGB", (side, side // 2), "navy").save(tmp_path / f"p{side}.png")
    with caplog.at_level("WARNING", logger="fast_style"):
        assert load_style_image(tmp_path / "p300.png", 512).shape == (1, 3, 256, 512)
        load_style_image(tmp_path / "p400.png", 512)  # 1.28x: no line
        load_style_image(tmp_path / "p300.png", None)  # its own size
        StyleReader(ArbitraryNet(ArbitraryConfig(style_size=512)), vgg_weights="random").code(tmp_path / "p300.png")
    said = [r.getMessage() for r in caplog.records]
    line = f"warning: {tmp_path}/p300.png is 300x150, enlarged 1.7x to the style size of 512 px: its strokes are read blurred"
    assert len(said) == 2 and all(s.startswith(line) for s in said), said
