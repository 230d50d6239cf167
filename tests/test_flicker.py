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
