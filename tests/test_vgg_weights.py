import os
import re
import urllib.error
from pathlib import Path

import pytest
import torch

from fast_style import vgg as vgg_module
from fast_style.styles import STYLES_DIR
from fast_style.stylize import main as stylize
from fast_style.vgg import VGG16Features, VGGWeightsError
from conftest import make_photo

CACHED = Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth"


def test_the_vgg_built_here_is_torchvisions() -> None:
    """Built without importing torchvision (4.6 s): the same layers, URL and random weights."""
    from torchvision.models import VGG16_Weights
    from torchvision.models.vgg import cfgs, make_layers

    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = make_layers(cfgs["D"])[: vgg_module.LAYERS["relu4_3"] + 1]
    ours = VGG16Features("random").features
    assert repr(ours) == repr(theirs) and vgg_module.WEIGHTS_URL == VGG16_Weights.IMAGENET1K_V1.url
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))


@pytest.mark.slow
def test_real_imagenet_weights_load_and_are_the_published_ones() -> None:
    if not CACHED.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the VGG weights: {CACHED} is missing (TORCH_HOME={os.environ.get('TORCH_HOME')})")
        pytest.skip(f"VGG-16 weights not cached at {CACHED}; set TORCH_HOME (see data/README.md)")
    vgg = VGG16Features("imagenet")
    conv1 = vgg.features[0]
    # Values of torchvision's published vgg16-397923af.pth, conv1_1.
    assert conv1.weight.shape == (64, 3, 3, 3)
    assert conv1.weight.sum().item() == pytest.approx(-3.24293, abs=1e-4)
    assert conv1.bias[:3].tolist() == pytest.approx([0.403388, 0.377794, 0.464362], abs=1e-5)


def test_missing_weights_give_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    cache = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # nothing cached
    with monkeypatch.context() as patch:
        patch.setattr(torch.hub, "load_state_dict_from_url", offline)
        with pytest.raises(VGGWeightsError, match="TORCH_HOME.*vgg_weights="):
            VGG16Features("imagenet")
        # stylize's any-painting path says it in one line, with its own option's name
        photo = make_photo(tmp_path / "photo.jpg", (40, 30))
        assert stylize(["--style-image", str(STYLES_DIR / "wave.jpg"), str(photo), "-o", str(tmp_path / "out.png")]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("error: VGG-16 ImageNet weights are not in ") and "stylize and evaluate: --vgg-weights PATH" in line
        assert not (tmp_path / "out.png").exists()
    # A damaged file in the cache was said to be "not in" it
    cache.parent.mkdir(parents=True)
    cache.write_text("not weights")
    with pytest.raises(VGGWeightsError, match=rf"^{re.escape(str(cache))}: VGG-16 ImageNet weights that cannot be read "
                                              r"\(\w+: .*\); delete the file to download it again$"):
        VGG16Features("imagenet")


def test_weights_from_an_explicit_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = VGG16Features("random")
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in source.features.state_dict().items()}, path)
    loaded = VGG16Features(str(path))
    assert torch.equal(loaded.features[0].weight, source.features[0].weight)
    with pytest.raises(VGGWeightsError, match="not found"):
        VGG16Features(str(tmp_path / "nope.pth"))
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(VGGWeightsError, match="lack"):
        VGG16Features(str(tmp_path / "wrong.pth"))
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # torch's words: a paragraph, with terminal escapes
    with pytest.raises(VGGWeightsError, match=r"module.pth: not a VGG-16 state dict that loads safely \(weights alone, "):
        VGG16Features(str(tmp_path / "module.pth"))


def test_random_weights_only_when_asked() -> None:
    assert vgg_module.load_vgg_state("random") is None
