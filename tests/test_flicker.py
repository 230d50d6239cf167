import pytest
import torch

from fast_style.flicker import flicker, pan_clip


def test_the_clip_moves_exactly_by_the_step() -> None:
    photo = torch.rand(3, 60, 80)
    clip = pan_clip(photo, frames=5, size=(32, 40), step=(2, 3))
    assert clip.shape == (5, 3, 32, 40)
    assert torch.equal(clip[1][:, :-2, :-3], clip[0][:, 2:, 3:])


def test_a_pointwise_network_does_not_flicker_and_noise_does() -> None:
    clip = pan_clip(torch.rand(3, 60, 80), frames=6, size=(32, 40))
    assert flicker(lambda x: 1 - x, clip) == pytest.approx(0, abs=1e-7)
    torch.manual_seed(0)
    assert flicker(lambda x: (x + 0.1 * torch.randn_like(x)).clamp(0, 1), clip) > 0.05


def test_a_window_that_leaves_the_photo_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves the"):
        pan_clip(torch.rand(3, 40, 40), frames=10, size=(32, 32))
