import torch

from fast_style.tiling import fixed_norm_stats, stylize_tiled
from fast_style.transformer import TransformerConfig, TransformerNet


def test_tiles_reproduce_a_single_pass_exactly() -> None:
    """No seams: with the whole image as reference, tiles give the single-pass pixels."""
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2, output_scale=1.0)).eval()
    x = torch.rand(1, 3, 301, 263)  # odd sizes: the last tiles are ragged
    with torch.no_grad():
        whole = net(x)
        tiled = stylize_tiled(net, x, tile=96, reference_side=400)
    assert tiled.shape == x.shape
    assert (tiled - whole).abs().max() < 1e-4


def test_reference_statistics_stand_in_for_the_image_own() -> None:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        with fixed_norm_stats(net, x):
            same = net(x)
        with fixed_norm_stats(net, x * 0.2):
            other = net(x)
        assert (same - net(x)).abs().max() < 1e-4
        assert (other - net(x)).abs().max() > 1e-2
    assert "forward" not in vars(net.encoder[0][1])  # hooks removed afterwards
