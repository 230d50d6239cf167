import pytest
import torch

from fast_style.losses import PerceptualLoss, gram_matrix, total_variation
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
