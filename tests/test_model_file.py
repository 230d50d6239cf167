import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fast_style.model_file import ModelFileError, load_model, save_model
from fast_style.transformer import TransformerConfig, TransformerNet


def test_safetensors_round_trip_rebuilds_the_net_from_the_file_alone(tmp_path: Path) -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2))
    path = save_model(tmp_path / "m.safetensors", net, {"style": "wave", "steps": 12})
    loaded, info = load_model(path)
    assert loaded.config == TransformerConfig(channels=8, res_blocks=2)
    assert info["style"] == "wave" and info["steps"] == 12
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), net.eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind


def test_the_realtime_layout_is_rebuilt_from_the_file(tmp_path: Path) -> None:
    config = TransformerConfig(channels=8, res_blocks=2, layout="realtime")
    path = save_model(tmp_path / "m.safetensors", TransformerNet(config), {"style": "wave"})
    assert load_model(path)[0].config == config


def test_tensors_that_do_not_fit_the_declared_network(tmp_path: Path) -> None:
    small = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    path = save_model(tmp_path / "m.safetensors", small, {})
    state = {k: v for k, v in small.state_dict().items()}
    save_file(state, str(path), metadata={"fast_style": '{"config": {"channels": 16, "res_blocks": 1}}'})
    with pytest.raises(ModelFileError, match="m.safetensors: weights do not fit the declared network"):
        load_model(path)


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelFileError, match="no fast_style metadata"):
        load_model(tmp_path / "other.safetensors")
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_model(tmp_path / "junk.safetensors")


class Exploit:
    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/fast_style_pickle_ran")


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "payload": Exploit()}, f)
    with pytest.raises(ModelFileError, match="evil.ckpt: cannot be loaded safely"):
        load_model(path)
    assert not MARKER.exists()
