"""A trained network as a file other runtimes load, with batch, height and width free: ONNX
(onnxruntime, TensorRT, browsers) or TorchScript `.pt` (`torch.jit.load`, C++ libtorch; no Python
package of ours needed). TorchScript is deprecated upstream but still what libtorch apps load."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from fast_style.atomic import atomic_write
from fast_style.transformer import TransformerNet

FORMATS = (".onnx", ".pt")


def export_network(net: TransformerNet, path: str | Path) -> Path:
    """Write atomically; the graph takes (B, 3, H, W) in [0, 1] of any size and returns the same
    size, unclamped (clamp to [0, 1] for display)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"{path}: export formats are {', '.join(FORMATS)}")
    net = copy.deepcopy(net).float().cpu().eval()
    if path.suffix == ".pt":
        with warnings.catch_warnings(), atomic_write(path) as tmp:
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.script is deprecated"
            torch.jit.save(torch.jit.script(net), str(tmp))
        return path
    example = torch.rand(2, 3, 37, 53)  # sizes that need padding; a size of 1 would be fixed in the graph
    dims = {"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}}
    with atomic_write(path) as tmp:
        program = torch.onnx.export(net, (example,), dynamo=True, input_names=["image"],
                                    output_names=["stylized"], dynamic_shapes=dims, verbose=False)
        program.save(str(tmp))
    return path
