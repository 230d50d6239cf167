"""The frozen VGG-16 (Simonyan & Zisserman 2014) that the perceptual losses look through."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from fast_style.config import VGG_MIN_SIDE

# Index of each named ReLU in torchvision's vgg16().features.
LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)  # its config "D", up to relu4_3


def vgg16_layers() -> nn.Sequential:
    """torchvision's `make_layers(cfgs["D"])[:23]`, built here: importing torchvision took 4.6 s
    (its ops import torch._dynamo), half of `stylize --style-image` on a photo. The same modules in
    the same order, so the same random weights from the same seed."""
    layers: list[nn.Module] = []
    channels = 3
    for v in CHANNELS:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(v)
    return nn.Sequential(*layers)


class VGGWeightsError(RuntimeError):
    pass


def load_vgg_state(weights: str) -> dict[str, torch.Tensor] | None:
    """`imagenet`: torch hub's URL cache, where torchvision keeps it too (downloads once, then
    offline); a path: that file; `random`: None, for fast tests only, never a fallback."""
    if weights == "random":
        return None
    if weights == "imagenet":
        cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(WEIGHTS_URL)
        try:
            state = torch.hub.load_state_dict_from_url(WEIGHTS_URL, progress=True, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure to fetch has the same remedy
            why = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"  # torch's can be a paragraph
            if cache.is_file():  # it was "not in" the cache where a damaged or foreign file was
                raise VGGWeightsError(f"{cache}: VGG-16 ImageNet weights that cannot be read ({why}); delete the file "
                                      "to download it again") from None
            raise VGGWeightsError(
                f"VGG-16 ImageNet weights are not in {cache} and could not be downloaded ({why}). Connect once to "
                f"download them, or copy vgg16-397923af.pth into $TORCH_HOME/hub/checkpoints/, or name the file "
                f"(train: loss.vgg_weights=PATH; stylize and evaluate: --vgg-weights PATH)"
            ) from None
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise VGGWeightsError(f"{path}: VGG-16 weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # torch's words: a paragraph, with terminal escapes, on loading it unsafely
            raise VGGWeightsError(f"{path}: not a VGG-16 state dict that loads safely (weights alone, as torch.save "
                                  "writes them: torchvision's vgg16-397923af.pth)") from None
        except Exception as e:  # noqa: BLE001
            raise VGGWeightsError(f"{path}: not a readable VGG-16 state dict ({str(e).strip().splitlines()[0]})") from None
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


class VGG16Features(nn.Module):
    """VGG-16 up to relu4_3, frozen. Takes RGB in [0, 1]; ImageNet normalisation
    happens here and nowhere else."""

    mean: torch.Tensor  # buffers: (1, 3, 1, 1)
    std: torch.Tensor

    def __init__(self, weights: str = "imagenet") -> None:
        super().__init__()
        # torchvision's VGG-16 conv stack, without building the 120M-weight classifier.
        with torch.random.fork_rng():  # `random` is the same random VGG in every process: comparable losses
            torch.manual_seed(0)
            self.features = vgg16_layers()
        state = load_vgg_state(weights)
        if state is not None:
            missing, _ = self.features.load_state_dict(state, strict=False)
            if missing:
                raise VGGWeightsError(f"{weights}: VGG-16 weights lack {', '.join(missing[:4])}")
        self.features.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # frozen: never leaves eval mode

    def forward(self, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        if min(x.shape[-2:]) < VGG_MIN_SIDE:  # a pooling's "Output size is too small", before
            raise ValueError(f"a {x.shape[-1]}x{x.shape[-2]} picture is too small for VGG-16's losses "
                             f"({VGG_MIN_SIDE} pixels or more a side)")
        wanted = {LAYERS[name]: name for name in layers}
        out = {}
        h = (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
                if len(out) == len(wanted):
                    break
        return out
