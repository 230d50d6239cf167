from pathlib import Path

import numpy as np
import pytest
import torch

from fast_style import Stylizer
from fast_style.stylize import main


@pytest.mark.slow
def test_onnx_export_matches_pytorch_on_any_size(tiny_model: Path, tmp_path: Path) -> None:
    import onnxruntime

    out = tmp_path / "net.onnx"
    assert main(["--model", str(tiny_model), "--export", str(out)]) == 0
    session = onnxruntime.InferenceSession(str(out))
    net = Stylizer.load(tiny_model, device="cpu").net
    for shape in [(1, 3, 37, 53), (2, 3, 120, 90), (1, 3, 5, 3), (1, 3, 64, 96)]:
        x = torch.rand(*shape)
        got = session.run(None, {"image": x.numpy()})[0]
        with torch.no_grad():
            want = net(x).numpy()
        assert got.shape == shape and np.abs(got - want).max() < 1e-3


def test_export_refuses_to_overwrite_and_unknown_formats(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "net.onnx"
    target.write_bytes(b"keep")
    assert main(["--model", str(tiny_model), "--export", str(target)]) == 1
    assert target.read_bytes() == b"keep"
    assert main(["--model", str(tiny_model), "--export", str(tmp_path / "net.tflite")]) == 1
    assert "export formats are .onnx, .pt" in capsys.readouterr().err



@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_loads_without_fast_style_and_matches(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "net.pt"
    assert main(["--model", str(tiny_model), "--export", str(out)]) == 0
    scripted = torch.jit.load(str(out))  # what a libtorch app does: no fast_style classes involved
    net = Stylizer.load(tiny_model, device="cpu").net
    for shape in [(1, 3, 37, 53), (2, 3, 5, 3), (1, 3, 64, 96)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            got, want = scripted(x), net(x)
        assert got.shape == shape and (got - want).abs().max() < 1e-5
