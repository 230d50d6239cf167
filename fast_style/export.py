"""A trained network as a file other runtimes load, with batch, height and width free: ONNX
(onnxruntime, TensorRT, browsers) or TorchScript `.pt` (`torch.jit.load`, C++ libtorch; no Python
package of ours needed). TorchScript is deprecated upstream but still what libtorch apps load."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from torch import nn

from fast_style.atomic import atomic_write
from fast_style.gallery import GalleryNet
from fast_style.transformer import TransformerNet

FORMATS = (".onnx", ".pt")


class _GalleryGraph(nn.Module):
    """The gallery with the norm parameters computed in the graph: (image, style) -> stylized."""

    def __init__(self, net: GalleryNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.net(image, style)


def export_network(net: TransformerNet | GalleryNet, path: str | Path, overwrite: bool = True) -> Path:
    """Write atomically; the graph takes (B, 3, H, W) in [0, 1] of any size and returns the same
    size, unclamped (clamp to [0, 1] for display). A gallery's ONNX graph takes its style weights
    as a second input, `style`: (N,) float, one weight a painting (normalised by the caller), in
    the order its metadata's `styles` lists them.
    `overwrite=False`: FileExistsError if `path` exists when the graph is written."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"{path}: export formats are {', '.join(FORMATS)}")
    net = copy.deepcopy(net).float().cpu().eval()
    if isinstance(net, GalleryNet):
        if path.suffix != ".onnx":
            raise ValueError(f"{path}: a gallery network exports to .onnx only (TorchScript cannot script its style "
                             "input); one style or mix of it exports to either: stylize --style NAME --export FILE.pt")
        example = (torch.rand(2, 3, 37, 53), net.one_hot(0))
        dims = {"image": {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")},
                "style": None}
        with atomic_write(path, replace=overwrite) as tmp:
            program = torch.onnx.export(_GalleryGraph(net).eval(), example, dynamo=True, input_names=["image", "style"],
                                        output_names=["stylized"], dynamic_shapes=dims, verbose=False)
            program.model.metadata_props["styles"] = ",".join(net.styles)
            program.save(str(tmp))
        return path
    if path.suffix == ".pt":
        with warnings.catch_warnings(), atomic_write(path, replace=overwrite) as tmp:
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.script is deprecated"
            torch.jit.save(torch.jit.script(net), str(tmp))
        return path
    example = torch.rand(2, 3, 37, 53)  # sizes that need padding; a size of 1 would be fixed in the graph
    dims = {"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}}
    with atomic_write(path, replace=overwrite) as tmp:
        program = torch.onnx.export(net, (example,), dynamo=True, input_names=["image"],
                                    output_names=["stylized"], dynamic_shapes=dims, verbose=False)
        program.save(str(tmp))
    return path
