"""A short training run on the real photos with the real VGG-16, then stylize with it."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import BF16_CPU, SHARED_DATA, record, require, run_train
from fast_style.stylize import main as stylize

VGG_FILE = Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth"


@pytest.mark.slow
def test_five_steps_on_real_photos_then_stylize_odd_sizes(tmp_path: Path) -> None:
    require(SHARED_DATA / "train", "the training photos")
    require(VGG_FILE, "the VGG-16 weights (set TORCH_HOME, see data/README.md)")
    run_train(tmp_path, "style=starry_night", f"data.root={SHARED_DATA / 'train'}", "trainer.max_steps=5",
              "data.image_size=128", "trainer.enable_progress_bar=false", "preview.every_n_steps=5")
    [run] = list((tmp_path / "runs" / "starry_night").iterdir())
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    model = tmp_path / "checkpoints" / "starry_night.safetensors"
    info = record(model)
    assert info["steps"] == 5 and info["images_seen"] == 20
    assert info["precision"] == ("bf16-mixed" if BF16_CPU else "32-true")  # trainer.precision=auto

    photo = Image.open(SHARED_DATA / "content" / "chicago.jpg")
    for w, h in [(341, 250), (37, 53)]:
        photo.resize((w, h)).save(tmp_path / f"in_{w}x{h}.png")
    out = tmp_path / "out"
    assert stylize(["--model", str(model), str(tmp_path / "in_341x250.png"), str(tmp_path / "in_37x53.png"), "-o", str(out)]) == 0
    assert Image.open(out / "in_341x250_starry_night.png").size == (341, 250)
    assert Image.open(out / "in_37x53_starry_night.png").size == (37, 53)
