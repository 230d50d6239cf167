import pytest
import torch

from fast_style.flicker import flicker, pan_clip, zoom_clip


def test_the_pan_moves_exactly_by_the_step() -> None:
    photo = torch.rand(3, 60, 80)
    clip = pan_clip(photo, frames=5, size=(32, 40), step=(2, 3))
    assert clip.frames.shape == (5, 3, 32, 40)
    assert torch.equal(clip.frames[1][:, :-2, :-3], clip.frames[0][:, 2:, 3:])


def test_a_pointwise_network_does_not_flicker_and_noise_does() -> None:
    clip = pan_clip(torch.rand(3, 60, 80), frames=6, size=(32, 40))
    assert flicker(lambda x: 1 - x, clip) == pytest.approx(0, abs=1e-7)
    torch.manual_seed(0)
    assert flicker(lambda x: (x + 0.1 * torch.randn_like(x)).clamp(0, 1), clip) > 0.05


def ramp(h: int, w: int) -> torch.Tensor:
    """A photo that bilinear resampling reproduces exactly: brightness rises to the right and down."""
    return (torch.linspace(0, 0.5, w)[None, :] + torch.linspace(0, 0.5, h)[:, None]).expand(3, h, w).clone()


def test_the_zoom_magnifies_the_centre_by_the_rate_each_frame() -> None:
    clip = zoom_clip(ramp(50, 81), frames=4, size=(30, 41), rate=1.1)
    assert clip.frames.shape == (4, 3, 30, 41)
    for t in range(4):
        row, column = clip.frames[t, 0, 15], clip.frames[t, 0, :, 20]
        # The centre 41 of 81 columns and 30 of 50 rows: spans of 0.25 and 0.5 * 29/49 of brightness.
        assert (row[-1] - row[0]).item() == pytest.approx(0.25 / 1.1**t, rel=1e-4)
        assert (column[-1] - column[0]).item() == pytest.approx(0.5 * 29 / 49 / 1.1**t, rel=1e-4)
        assert clip.frames[t].mean().item() == pytest.approx(clip.frames[0].mean().item(), abs=1e-5)  # centre stays put


def test_a_pointwise_network_does_not_flicker_on_a_zoom_and_noise_does() -> None:
    clip = zoom_clip(ramp(50, 81), frames=6, size=(30, 41))
    assert flicker(lambda x: 1 - x, clip) == pytest.approx(0, abs=1e-6)
    torch.manual_seed(0)
    assert flicker(lambda x: (x + 0.1 * torch.randn_like(x)).clamp(0, 1), clip) > 0.05


@pytest.mark.parametrize("make", [lambda p: pan_clip(p, frames=10, size=(32, 32)), lambda p: zoom_clip(p, frames=10, size=(48, 32))])
def test_a_window_that_leaves_the_photo_is_refused(make) -> None:
    with pytest.raises(ValueError, match="leaves the"):
        make(torch.rand(3, 40, 40))


class _Pointwise(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - x


class _Pattern(_Pointwise):
    """Adds a pattern fixed to the frame, which does not follow a zoom of the scene."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return super().forward(x) + 0.1 * torch.cos(torch.arange(h)[:, None] * 1.3 + torch.arange(w) * 0.7)


def test_the_stability_term_sees_a_zoom_only_when_asked() -> None:
    """stability.zoom: the copy is magnified, and compared with the output magnified alike. A
    pointwise network is zoom-equivariant (no loss); one that paints a fixed pattern is not."""
    from fast_style.config import LossConfig
    from fast_style.module import StyleTransferModule

    loss = {**LossConfig(vgg_weights="random").__dict__}
    style = {"name": "wave", "image": "wave.jpg", "size": 32, "weight": 1e10}
    batch = ramp(40, 48)[None].repeat(2, 1, 1, 1)
    losses = {}
    for zoom in (0.0, 0.1):
        module = StyleTransferModule({"channels": 8, "res_blocks": 1}, style, loss, {"lr": 1e-3},
                                     stability={"weight": 1.0, "noise": 0.0, "shift": 0, "zoom": zoom})
        for name, net in [("pointwise", _Pointwise()), ("pattern", _Pattern())]:
            module.transformer = net
            torch.manual_seed(0)
            losses[name, zoom] = module.stability_loss(batch, module.transformer(batch)).item()
    assert losses["pointwise", 0.0] == losses["pattern", 0.0] == 0  # no shift, no zoom: the copy is the photo
    assert losses["pointwise", 0.1] == pytest.approx(0, abs=1e-10)
    assert losses["pattern", 0.1] > 1e-4
