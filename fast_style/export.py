"""A trained network as a file other runtimes load: ONNX, with batch, height and width free.
(TorchScript is deprecated; a torch.export program would fix whether the input needs padding.)"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from fast_style.atomic import atomic_write
from fast_style.transformer import TransformerNet

FORMATS = (".onnx",)


def export_network(net: TransformerNet, path: str | Path) -> Path:
    """Write atomically; the graph takes (B, 3, H, W) in [0, 1] of any size and returns the same
    size, unclamped (clamp to [0, 1] for display)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"{path}: export formats are {', '.join(FORMATS)}")
    net = copy.deepcopy(net).float().cpu().eval()
    example = torch.rand(2, 3, 37, 53)  # sizes that need padding; a size of 1 would be fixed in the graph
    dims = {"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}}
    with atomic_write(path) as tmp:
        program = torch.onnx.export(net, (example,), dynamo=True, input_names=["image"],
                                    output_names=["stylized"], dynamic_shapes=dims, verbose=False)
        program.save(str(tmp))
    return path
