from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import make_photo
from fast_style import Stylizer
from fast_style.blend import blend, keep_photo_color
from fast_style.stylize import main


def test_strength_ends_are_the_photo_and_the_stylized_image() -> None:
    photo, stylized = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert torch.equal(blend(photo, stylized, 0.0), photo)
    assert torch.equal(blend(photo, stylized, 1.0), stylized)


def test_half_strength_keeps_contrast_where_a_linear_mix_washes_out() -> None:
    torch.manual_seed(0)
    photo = 0.5 + 0.2 * torch.randn(1, 3, 64, 64)
    stylized = 0.5 + 0.2 * torch.randn(1, 3, 64, 64)
    linear = 0.5 * photo + 0.5 * stylized
    mixed = blend(photo, stylized, 0.5)
    assert linear.std() < 0.75 * photo.std()  # the washed-out average
    assert mixed.std() == pytest.approx(photo.std().item(), rel=0.1)


def test_preserve_color_keeps_the_photo_chroma_and_the_stylized_luminance() -> None:
    photo = torch.full((1, 3, 8, 8), 0.35)
    photo[:, 0] = 0.6  # a reddish photo (its chroma stays in gamut at the stylized luminance)
    stylized = torch.rand(1, 3, 8, 8) * 0.3 + 0.2
    out = keep_photo_color(stylized, photo)
    luma = lambda x: 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # noqa: E731
    assert torch.allclose(luma(out), luma(stylized), atol=2e-3)
    assert (out[:, 0] > out[:, 1]).all() and (out[:, 0] > out[:, 2]).all()  # still red


def test_cli_flags(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photo = make_photo(tmp_path / "p.png", (30, 20))
    assert main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "o.png"), "--strength", "0"]) == 0
    assert Image.open(tmp_path / "o.png").tobytes() == Image.open(photo).convert("RGB").tobytes()
    assert main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "c.png"), "--preserve-color", "--strength", "0.6"]) == 0
    assert Image.open(tmp_path / "c.png").size == (30, 20)
    with pytest.raises(SystemExit):
        main(["--model", str(tiny_model), str(photo), "--strength", "2"])
    assert "--strength must be between 0 and 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="strength must be between 0 and 1"):
        Stylizer.load(tiny_model, strength=-1)
