import pytest
import torch

from fast_style.transformer import (
    LAYOUTS,
    SpaceToDepthConv,
    TransformerConfig,
    TransformerNet,
    UpsampledConv,
    for_inference,
)


@pytest.mark.parametrize("layout", ["johnson", "realtime", "realtime8"])
@pytest.mark.parametrize("h,w", [(37, 53), (341, 250), (256, 256), (1, 1), (3, 5), (8, 9), (15, 17)])
def test_any_size_comes_back_the_same_size(h: int, w: int, layout: str) -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1, layout=layout)).eval()
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


@pytest.mark.parametrize("layout,parameters,smallest", [("realtime", 182_739, (16, 24)), ("realtime8", 344_643, (8, 12))])
def test_the_realtime_layouts_keep_one_conv_at_full_resolution(layout: str, parameters: int, smallest: tuple) -> None:
    """Their cost is what makes them real time on AVX2 (docs/realtime.md): count the convs that run
    at the input's size and at the residual blocks' size, and the parameters of model=<layout>."""
    net = TransformerNet(TransformerConfig(channels=16, res_blocks=4, layout=layout)).eval()
    assert sum(p.numel() for p in net.parameters()) == parameters
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:]))) for m in net.modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 96))
    for hook in hooks:
        hook.remove()
    assert sizes.count((64, 96)) == 1  # the last conv, 16 channels to 3
    assert sizes.count(smallest) == 1 + 2 * 4  # the last strided conv and the residual blocks'
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())


def test_an_unknown_layout_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="unknown network layout 'unet' \\(known: johnson, realtime, realtime8\\)"):
        TransformerNet(TransformerConfig(layout="unet"))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("h,w", [(37, 53), (64, 96), (1, 1)])
def test_the_upsamplings_computed_at_the_lower_size_give_the_same_picture(layout: str, h: int, w: int) -> None:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1, layout=layout)).eval()
    with torch.no_grad():
        for norm in net.decoder.modules():
            if isinstance(norm, torch.nn.InstanceNorm2d):  # not the 1 and 0 they start at
                norm.weight.uniform_(0.5, 2), norm.bias.uniform_(-1, 1)
    fast = for_inference(net, space_to_depth=True)
    assert not any(isinstance(m, torch.nn.Upsample) for m in fast.modules())
    assert sum(isinstance(m, UpsampledConv) for m in fast.decoder) == {"johnson": 2, "realtime": 2, "realtime8": 3}[layout]
    assert isinstance(fast.decoder[-1], SpaceToDepthConv) == (layout == "johnson")  # its 9x9 conv out
    assert any(isinstance(m, torch.nn.Upsample) for m in net.modules())  # a copy: the trained network is as it was
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        assert torch.allclose(fast(x), net(x), atol=1e-5)



@pytest.mark.filterwarnings("ignore:Accessing the data pointer of FakeTensor")  # torch's own deepcopy of one
@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_inference_network_is_made_on_the_networks_device(layout: str) -> None:
    """The first CUDA run failed here: the phase table stayed on the CPU while the weights were on
    the GPU. Fake tensors stand in for a GPU on any machine, and refuse to mix devices as CUDA does."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True), torch.device("cuda"):
        net = for_inference(TransformerNet(TransformerConfig(channels=8, res_blocks=1, layout=layout)), space_to_depth=True)
    assert {p.device.type for p in net.parameters()} == {"cuda"}
    assert any(isinstance(layer, UpsampledConv) for layer in net.decoder)
