"""The gallery network: conditional instance norm, mixing, the model file."""

from pathlib import Path

import pytest
import torch

from conftest import as_stored

from fast_style.gallery import GalleryConfig, GalleryNet, mix_weights
from fast_style.model_file import load_model, read_model, save_model

STYLES = ("starry_night", "wave", "the_scream")


def gallery(seed: int = 0) -> GalleryNet:
    torch.manual_seed(seed)
    net = GalleryNet(GalleryConfig(styles=STYLES, channels=8, res_blocks=1, output_scale=1.0))
    with torch.no_grad():  # as if trained: each painting its own norm parameters
        net.scales.uniform_(0.5, 1.5)
        net.shifts.normal_(0, 0.5)
    return net.eval()


def test_a_fixed_mix_is_a_single_style_network_with_those_norms() -> None:
    net, x = gallery(), torch.rand(2, 3, 30, 42)
    for weights in (net.one_hot(1), mix_weights(STYLES, {"starry_night": 0.6, "wave": 0.4})):
        with torch.no_grad():
            assert (net.single(weights)(x) - net(x, weights)).abs().max() < 1e-5
    with torch.no_grad():
        a, b = net(x, net.one_hot(0)), net(x, net.one_hot(1))
    assert (a - b).abs().mean() > 0.01  # the paintings differ


def test_mixing_interpolates_the_norm_parameters() -> None:
    net = gallery()
    half = net.norm_parameters(mix_weights(STYLES, {"starry_night": 1, "the_scream": 1}))  # normalised: 0.5 each
    first, third = net.norm_parameters(net.one_hot(0)), net.norm_parameters(net.one_hot(2))
    for key in half:
        assert torch.allclose(half[key], (first[key] + third[key]) / 2)
    assert mix_weights(STYLES, {"wave": 3}).tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="no style 'udnie' in this gallery"):
        mix_weights(STYLES, {"udnie": 1})
    with pytest.raises(ValueError, match="not all 0"):
        mix_weights(STYLES, {"wave": 0})
    for bad in (float("nan"), float("inf")):  # a NaN picture, or NaN weights
        with pytest.raises(ValueError, match="must be finite, 0 or more"):
            mix_weights(STYLES, {"wave": 1, STYLES[0]: bad})


def test_gradients_reach_only_the_painting_of_the_step() -> None:
    net = gallery().train()
    net(torch.rand(1, 3, 16, 16), net.one_hot(2)).mean().backward()
    assert net.scales.grad[2].abs().sum() > 0 and net.scales.grad[:2].abs().sum() == 0
    norms = [m for m in net.body.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and all(m.weight.grad is None for m in norms)  # the body's own norm parameters are unused
    assert net.body.encoder[0][0][1].weight.grad.abs().sum() > 0  # the shared convs learn


def test_a_gallery_file_round_trips(tmp_path: Path) -> None:
    net = gallery()
    path = save_model(tmp_path / "g.safetensors", net, {"style": "gallery", "style_images": ["a.jpg", "b.jpg", "c.jpg"]})
    assert read_model(path).architecture == "gallery"
    loaded, record = load_model(path)
    assert isinstance(loaded, GalleryNet) and loaded.styles == STYLES and record.style_images == ["a.jpg", "b.jpg", "c.jpg"]
    x, w = torch.rand(1, 3, 20, 20), net.one_hot(1)
    with torch.no_grad():
        assert torch.equal(loaded(x, w), as_stored(net)(x, w))


def test_the_stylizer_takes_a_style_or_a_mix_per_call(tmp_path: Path) -> None:
    from fast_style import Stylizer

    net = gallery()
    path = save_model(tmp_path / "g.safetensors", net, {"style": "gallery"})
    stylizer = Stylizer.load(path, device="cpu")
    x = torch.rand(1, 3, 24, 32)
    assert stylizer.styles == STYLES and stylizer.name == "starry_night"  # the first, unless told
    mix = {"starry_night": 0.6, "wave": 0.4}
    with torch.no_grad():
        expected = as_stored(net).single(mix_weights(STYLES, mix))(x).clamp(0, 1)
    assert (stylizer(x, style=mix) - expected).abs().max() < 1e-5
    assert torch.equal(stylizer(x, style="wave"), Stylizer.load(path, device="cpu", style="wave")(x))
    assert not torch.equal(stylizer(x, style="wave"), stylizer(x, style="the_scream"))
    assert Stylizer.load(path, device="cpu", style=mix).name == "starry_night60_wave40"
    with pytest.raises(ValueError, match="no style 'udnie' in this gallery"):
        stylizer(x, style="udnie")


def test_a_style_spec_is_a_name_or_a_mix() -> None:
    from fast_style.models import parse_style

    assert parse_style("wave") == "wave"
    assert parse_style("starry_night=0.6, wave=0.4") == {"starry_night": 0.6, "wave": 0.4}
    assert parse_style("starry_night,wave") == {"starry_night": 1.0, "wave": 1.0}  # was one style's name, not found
    for spec, message in [("wave=1e400", "'wave=1e400' is not NAME=WEIGHT (a name, a finite weight)"),  # tracebacks
                          ("wave=nan,udnie=1", "'wave=nan' is not NAME=WEIGHT"),
                          ("wave=0.5,wave=0.5", "wave is named twice"), (",wave", "'' is not NAME=WEIGHT"),
                          ("wave=abc", "'wave=abc' is not NAME=WEIGHT")]:
        with pytest.raises(ValueError) as raised:
            parse_style(spec)
        assert str(raised.value).startswith(f"--style {spec!r}: {message}")


def test_a_painting_takes_a_single_style_network_norms() -> None:
    """How a gallery starts from a trained single-style network (train init_weights=...)."""
    from fast_style.transformer import TransformerNet

    net = gallery()
    torch.manual_seed(1)
    single = TransformerNet(net.body.config).eval()
    with torch.no_grad():
        for m in single.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
    net.body.load_state_dict(single.state_dict())
    net.set_norms(1, single)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert (net(x, net.one_hot(1)) - single(x)).abs().max() < 1e-5
        assert (net(x, net.one_hot(0)) - single(x)).abs().max() > 1e-3


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_a_gallery_exports_whole_with_its_styles_named_or_as_the_style_asked(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    """`--style a=0.5,b=0.5 --export` wrote the whole gallery, the mix dropped without a word, and
    nothing said in which order the graph's style input takes its weights."""
    import onnxruntime

    from fast_style.export import export_network
    from fast_style.stylize import main

    net = as_stored(gallery())
    path = save_model(tmp_path / "g.safetensors", net, {"style": "gallery"})
    assert main(["--model", str(path), "--export", str(tmp_path / "g.onnx")]) == 0
    assert capsys.readouterr().err == ("note: {} takes a second input, style: 3 weights, one a painting, in this order "
                                       "(its metadata's 'styles'): starry_night, wave, the_scream\n").format(tmp_path / "g.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"))
    assert session.get_modelmeta().custom_metadata_map == {"styles": "starry_night,wave,the_scream"}
    assert main(["--model", str(path), "--style", "wave=0.3,the_scream=0.7", "--export", str(tmp_path / "mix.pt")]) == 0
    x, mix = torch.rand(1, 3, 41, 29), {"wave": 0.3, "the_scream": 0.7}
    with torch.no_grad():
        assert (torch.jit.load(str(tmp_path / "mix.pt"))(x) - net(x, mix_weights(STYLES, mix))).abs().max() < 1e-5
    assert [i.name for i in session.get_inputs()] == ["image", "style"]
    for weights in (net.one_hot(2), mix_weights(STYLES, {"starry_night": 0.3, "wave": 0.7})):
        [y] = session.run(None, {"image": x.numpy(), "style": weights.numpy()})
        with torch.no_grad():
            assert abs(torch.from_numpy(y) - net(x, weights)).max() < 1e-3
    with pytest.raises(ValueError, match=r"exports to .onnx only .*; one style or mix of it exports to either: stylize --style"):
        export_network(net, tmp_path / "g.pt")


def test_evaluate_reports_each_style_of_a_gallery(tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    from fast_style.evaluate import main as evaluate

    net = gallery()
    path = save_model(tmp_path / "g.safetensors", net, {"style": "gallery", "style_size": 64,
                                                        "style_images": ["starry_night.jpg", "wave.jpg", "the_scream.jpg"]})
    assert evaluate(["--model", str(path), "--photos", str(photo_dir), "--size", "32", "--json", "--vgg-weights", "random"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["styles"]) == list(STYLES) and report["photos"] == 5
    assert [report["styles"][s]["setup"]["style_image"] for s in STYLES] == ["starry_night.jpg", "wave.jpg", "the_scream.jpg"]
    totals = [report["styles"][s]["model"]["total"] for s in STYLES]
    assert len(set(totals)) == 3  # each style scored on its own painting
    assert "single" not in json.dumps(report)
    # A single-style network of a style beside the gallery file: scored on the same photos and
    # painting, and the gallery's style against it.
    save_model(tmp_path / "wave.safetensors", net.single(net.one_hot(1)), {"style": "wave", "style_size": 64})
    assert evaluate(["--model", str(path), "--photos", str(photo_dir), "--size", "32", "--json", "--vgg-weights", "random"]) == 0
    wave = json.loads(capsys.readouterr().out)["styles"]["wave"]
    assert wave["single"]["total"] == pytest.approx(wave["model"]["total"], rel=1e-3)  # the same network, so 1.0
    assert wave["single_ratio"] == pytest.approx(1.0, rel=1e-3)
    assert evaluate(["--model", str(path), "--photos", str(photo_dir), "--size", "32", "--vgg-weights", "random"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[2:]] == [*STYLES, "mean"]
    assert lines[1].split()[-3:] == ["total", "/", "single"]
    assert [len(line.split()) for line in lines[2:]] == [4, 5, 4, 5]  # a ratio for wave alone, and its mean
    assert evaluate(["--model", str(path), "--style", "the_scream", "--photos", str(photo_dir), "--size", "32", "--json",
                     "--vgg-weights", "random"]) == 0  # one style of the gallery
    assert list(json.loads(capsys.readouterr().out)["styles"]) == ["the_scream"]


def test_norm_parameters_can_learn_faster_than_the_shared_network() -> None:
    from fast_style.config import LossConfig
    from fast_style.module import StyleTransferModule

    loss = {**LossConfig(vgg_weights="random").__dict__}
    style = {"name": "gallery", "images": ["wave.jpg", "udnie.jpg"], "size": 32, "weight": 1e10}
    module = StyleTransferModule({"channels": 8, "res_blocks": 1}, style, loss, {"lr": 1e-3, "norm_lr": 1e-2})
    norms, body = module.configure_optimizers().param_groups
    assert norms["lr"] == 1e-2 and body["lr"] == 1e-3
    assert {id(p) for p in norms["params"]} == {id(module.transformer.scales), id(module.transformer.shifts)}
    assert len(body["params"]) == len(list(module.transformer.body.parameters()))
