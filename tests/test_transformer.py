import pytest
import torch

from fast_style.transformer import TransformerConfig, TransformerNet


@pytest.mark.parametrize("h,w", [(37, 53), (341, 250), (256, 256), (1, 1), (3, 5), (8, 9)])
def test_any_size_comes_back_the_same_size(h: int, w: int) -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1)).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_input_is_not_modified() -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    x = torch.rand(1, 3, 37, 53)
    before = x.clone()
    net(x)
    assert torch.equal(x, before)


def test_default_is_johnsons_network() -> None:
    net = TransformerNet()
    assert sum(p.numel() for p in net.parameters()) == 1_679_235
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules()) == 15
