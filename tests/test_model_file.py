import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import as_stored
from fast_style.model_file import FORMAT_VERSION, ModelFileError, ModelRecord, load_model, read_model, save_model
from fast_style.styles import style_image_path
from fast_style.transformer import TransformerConfig, TransformerNet


def test_safetensors_round_trip_rebuilds_the_net_from_the_file_alone(tmp_path: Path) -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2))
    path = save_model(tmp_path / "m.safetensors", net, {"style": "wave", "steps": 12})
    loaded, info = load_model(path)
    assert loaded.config == TransformerConfig(channels=8, res_blocks=2)
    assert info.style == "wave" and info.steps == 12
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), as_stored(net).eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind


def test_parameters_are_stored_in_float16_unless_asked_or_too_large(tmp_path: Path) -> None:
    from safetensors import safe_open

    net = TransformerNet(TransformerConfig(channels=8, res_blocks=2))
    with torch.no_grad():
        net.decoder[-1][1].bias[0] = 1e6  # beyond float16: kept as float32, not stored as inf
    half = save_model(tmp_path / "half.safetensors", net, {})
    full = save_model(tmp_path / "full.safetensors", net, {}, dtype=torch.float32)
    with safe_open(str(half), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes.pop("decoder.2.1.bias") == "F32" and set(dtypes.values()) == {"F16"}
    assert half.stat().st_size < 0.55 * full.stat().st_size
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        assert torch.equal(load_model(full)[0](x), net.eval()(x))  # float32 on request: exact
        assert load_model(half)[0].decoder[-1][1].bias[0] == 1e6


@pytest.mark.parametrize("layout", ["realtime", "realtime8"])
def test_the_realtime_layouts_are_rebuilt_from_the_file(tmp_path: Path, layout: str) -> None:
    config = TransformerConfig(channels=8, res_blocks=2, layout=layout)
    net = TransformerNet(config).eval()
    path = save_model(tmp_path / "m.safetensors", net, {"style": "wave"})
    loaded = load_model(path)[0]
    assert loaded.config == config
    x = torch.rand(1, 3, 20, 28)  # not a multiple of 8: realtime8 pads it
    with torch.no_grad():
        assert torch.equal(loaded(x), as_stored(net)(x))


def test_tensors_that_do_not_fit_the_declared_network(tmp_path: Path) -> None:
    small = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    path = save_model(tmp_path / "m.safetensors", small, {})
    state = {k: v for k, v in small.state_dict().items()}
    save_file(state, str(path), metadata={"fast_style": '{"format_version": 1, "architecture": "johnson", '
                                                        '"config": {"channels": 16, "res_blocks": 1}, "record": {}}'})
    with pytest.raises(ModelFileError, match="m.safetensors: weights do not fit the declared network"):
        load_model(path)


def test_damaged_weights_are_refused_not_drawn_black(tmp_path: Path) -> None:
    """A file whose last bytes were overwritten: NaN weights, and a black picture with exit status 0."""
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    path = save_model(tmp_path / "m.safetensors", net, {})
    data = bytearray(path.read_bytes())
    data[-64:] = b"\xff" * 64  # float16 NaNs
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=r"m.safetensors: weights \S+ hold NaN or infinite values \(a damaged file\?\)"):
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
    torch.save({"state_dict": {}, "payload": Exploit()}, path)  # a zip, as Lightning writes
    with pytest.raises(ModelFileError) as refused:  # torch's words: a paragraph, with terminal escapes, on loading it unsafely
        load_model(path)
    assert str(refused.value) == (f"{path}: not a checkpoint of fast_style: it holds Python objects besides weights, which "
                                  "loading would run (a fast_style run's checkpoints hold weights and settings only)")
    torch.save({"state_dict": {"a": torch.zeros(2)}}, path)  # weights, no settings
    with pytest.raises(ModelFileError, match=r"evil.ckpt: not a Lightning checkpoint of fast_style \(it has no fast_style settings\)$"):
        load_model(path)
    with open(path, "wb") as f:  # torch's older plain pickle
        pickle.dump({"state_dict": {}, "payload": Exploit()}, f)
    with pytest.raises(ModelFileError, match=r"evil.ckpt: not a model file \(a .safetensors exported by train, or a Lightning .ckpt\)"):
        load_model(path)
    assert not MARKER.exists()


def test_every_shipped_model_loads_and_says_what_it_was_trained_on() -> None:
    """Each in float16 (save_model), with its record."""
    shipped = sorted((Path(__file__).parents[1] / "checkpoints").glob("*.safetensors"))
    assert len(shipped) >= 6
    from fast_style.arbitrary import ArbitraryNet
    from fast_style.gallery import GalleryNet
    from fast_style.styles import bundled_styles

    for path in shipped:
        net, record = load_model(path)
        assert isinstance(record, ModelRecord) and record.style == path.stem, path
        assert record.steps > 0 and record.weights["style"] > 0, path
        float32 = {torch.float32} if isinstance(net, ArbitraryNet) else set()  # its input statistics
        assert {t.dtype for t in read_model(path).state.values()} == {torch.float16} | float32, path
        if isinstance(net, ArbitraryNet):  # any painting: it records the painters held out of its training
            assert record.held_out and len(record.held_out) >= 10, path
            net = net.single(torch.zeros(net.code_shape))
        elif isinstance(net, GalleryNet):  # its paintings by name: the bundled ones here, the others in ../shared
            assert [Path(p).stem for p in record.style_images] == list(net.styles), path
            assert set(bundled_styles()) <= set(net.styles)
            net = net.single(net.one_hot(len(net.styles) - 1))
        else:
            assert style_image_path(record.style_image or f"{record.style}.jpg").is_file()  # the oldest lacks the field
        assert net(torch.rand(1, 3, 20, 28)).shape == (1, 3, 20, 28)


def test_format_0_and_format_1_files_read_alike(tmp_path: Path) -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    old = {"config": net.config.to_dict(), "style": "wave", "steps": 3, "style_image": "wave.jpg"}
    save_file(state, str(tmp_path / "old.safetensors"), metadata={"fast_style": json.dumps(old)})
    save_model(tmp_path / "new.safetensors", net, ModelRecord(style="wave", steps=3, style_image="wave.jpg"))
    a, b = read_model(tmp_path / "old.safetensors"), read_model(tmp_path / "new.safetensors")
    assert (a.format_version, b.format_version) == (0, FORMAT_VERSION)
    assert (a.architecture, a.config, a.record) == (b.architecture, b.config, b.record)


def test_a_newer_format_or_an_unknown_architecture_is_one_clear_line(tmp_path: Path) -> None:
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    for name, header, message in [
        ("future", {"format_version": FORMAT_VERSION + 1, "architecture": "johnson", "config": {}, "record": {}},
         f"model format {FORMAT_VERSION + 1} is newer than this fast_style reads"),
        ("alien", {"format_version": 1, "architecture": "gallery9", "config": {}, "record": {}},
         re.escape("architecture 'gallery9' is not one this fast_style knows (johnson, gallery, arbitrary)")),
        ("later", {"format_version": 1, "architecture": "johnson", "config": {**net.config.to_dict(), "antialias": True},
                   "record": {}},
         re.escape("its network has settings this fast_style does not know (antialias); upgrade fast_style")),
    ]:
        save_file(state, str(tmp_path / f"{name}.safetensors"), metadata={"fast_style": json.dumps(header)})
        with pytest.raises(ModelFileError, match=message):
            load_model(tmp_path / f"{name}.safetensors")
