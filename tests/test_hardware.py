"""Precision decided from the hardware (fast_style.hardware), for both classes of x86 CPU: the
one this runs on and, where it has AVX-512, an AVX2-only one imitated with ISA caps."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import BF16_CPU, CAN_IMITATE_AVX_VNNI, VNNI_CPU, avx2_env, run_train, side_by_side
from fast_style import Stylizer, hardware
from test_train import FAST

x86 = pytest.mark.skipif(not hardware.is_x86(), reason="int8 and the ISA caps are for x86 CPUs")


def python(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_training_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: True)
    precision, line = hardware.training_precision("auto", "auto")
    assert precision == "bf16-mixed" and line.startswith("precision auto: bf16-mixed (this CPU has AVX512-bf16")
    assert hardware.training_precision("bf16-mixed", "cpu") == ("bf16-mixed", None)
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: False)
    precision, line = hardware.training_precision("auto", "cpu")
    assert precision == "32-true" and "no bf16 instructions" in line
    precision, line = hardware.training_precision("bf16-mixed", "cpu")
    assert precision == "bf16-mixed" and line.startswith("warning: trainer.precision=bf16-mixed on a CPU without bf16")
    assert "\n" not in line
    assert hardware.training_precision("32-true", "cpu") == ("32-true", None)


@x86
def test_bf16_is_fast_only_where_the_cpu_has_it() -> None:
    assert hardware.cpu_has_fast_bf16() == BF16_CPU
    if BF16_CPU:  # and as an AVX2 CPU (elsewhere this process is one already: the line above)
        capped = python("from fast_style.hardware import cpu_has_fast_bf16; print(cpu_has_fast_bf16())", avx2_env())
        assert capped.strip() == "False"


@x86
def test_int8_saturation_is_found_by_running_a_conv() -> None:
    assert hardware.int8_pairs_saturate() == (not VNNI_CPU)  # no VNNI: vpmaddubsw, pairs added in 16 bits
    if VNNI_CPU:
        code = "from fast_style.hardware import int8_pairs_saturate; print(int8_pairs_saturate())"
        assert python(code, avx2_env()).strip() == "True"
        if CAN_IMITATE_AVX_VNNI:  # AVX2 with AVX-VNNI: vpdpbusd adds in 32 bits, so 8-bit activations stay
            assert python(code, avx2_env(vnni=True)).strip() == "False"


def test_the_training_run_says_which_precision_it_chose(tmp_path: Path, photo_dir: Path) -> None:
    result = run_train(tmp_path, *FAST, f"data.root={photo_dir}", "trainer=debug")
    chosen = "bf16-mixed" if BF16_CPU else "32-true"
    assert f"precision auto: {chosen} (" in result.stdout + result.stderr
    assert "channels_last auto: on (" in result.stdout + result.stderr


def test_training_runs_channels_last_on_cpus_only_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_style.config import LossConfig
    from fast_style.module import StyleTransferModule

    on, line = hardware.training_channels_last("auto", "cpu")  # "auto" would be a GPU on a machine with one
    assert on and line.startswith("channels_last auto: on (a CPU")
    assert hardware.training_channels_last(False, "cpu") == (False, None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hardware.training_channels_last("auto", "auto") == (False, None)  # measured slower on an H200
    assert hardware.training_channels_last("auto", "cpu")[0]
    style = {"name": "wave", "image": "wave.jpg", "size": 32, "weight": 1e10}
    loss = {**LossConfig(vgg_weights="random").__dict__}
    module = StyleTransferModule({"channels": 8, "res_blocks": 1}, style, loss, {"lr": 1e-3}, channels_last=True)
    convs = [p for p in module.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)  # the VGG's too
    assert any(not p.is_contiguous() for p in convs)


@x86
def test_bf16_asked_for_on_an_avx2_cpu_is_warned_about(tmp_path: Path) -> None:
    # The photo folder is empty, so the run stops right after its precision is resolved.
    (tmp_path / "empty").mkdir()
    overrides = [*FAST, f"data.root={tmp_path / 'empty'}", "trainer.precision=bf16-mixed"]
    if BF16_CPU:  # as an AVX2 CPU, in a process of its own
        result = subprocess.run([sys.executable, "-m", "fast_style.train", *overrides], cwd=tmp_path, env=avx2_env(),
                                capture_output=True, text=True)
    else:
        result = run_train(tmp_path, *overrides, check=False)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "emulated" in line]
    assert len(lines) == 1 and "trainer.precision=bf16-mixed on a CPU without bf16 instructions" in lines[0]


def test_stylize_warns_of_a_precision_the_cpu_emulates(tiny_model: Path, tmp_path: Path) -> None:
    """A 712x474 photo took 69 s in bf16 and 61 s in fp16 under the AVX2 cap, 4.4 s in fp32, without a word.
    In processes of their own, as a user runs it (and as an AVX2 CPU where this one has bf16), side by side."""
    from PIL import Image

    Image.new("RGB", (3, 2), "teal").save(tmp_path / "p.png")
    runs = {precision: subprocess.Popen(
        [sys.executable, "-m", "fast_style.stylize", "--model", str(tiny_model), str(tmp_path / "p.png"), "-o",
         str(tmp_path / f"{precision}.png"), "--precision", precision],
        env=avx2_env() if BF16_CPU else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for precision in ("bf16", "fp16")}
    for precision, (status, stderr) in side_by_side(runs, timeout=300).items():
        assert status == 0 and (tmp_path / f"{precision}.png").is_file(), stderr[-2000:]
        assert [line for line in stderr.splitlines() if line.startswith("warning:")] == [
            f"warning: precision {precision} on a CPU without {precision} instructions is emulated, tens of times "
            "slower than fp32; precision auto picks what runs fast here"]


def test_streams_get_the_fastest_path_within_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    if hardware.is_x86():
        assert hardware.stream_path(cpu) == ("int8", False)
    monkeypatch.setitem(sys.modules, "torchao.quantization.pt2e", None)  # as if torchao were missing
    assert hardware.stream_path(cpu) == (hardware.inference_precision(cpu), True)


FRESH_TENSOR = """
import resource, sys, time, torch
import fast_style.stylizer  # loaded, as in a command (without its libraries, this toy tensor faulted every time)
from fast_style import hardware

def faults_of_a_fresh_tensor() -> int:  # 64 MB written, freed: what each large tensor of a frame pays
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 << 20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""

FAULTS = FRESH_TENSOR + """
default = min(faults_of_a_fresh_tensor() for _ in range(4))
assert hardware.keep_freed_memory()
# The first few may still fault: a small allocation just above a freed block keeps it from the
# heap's top, and one split off it leaves it short; once a few are freed, one fits. The first reuse
# came at the 2nd to 4th tensor under Python 3.11, the 2nd to 5th under 3.12 (30 runs each).
print(default, min(faults_of_a_fresh_tensor() for _ in range(10)))
"""


@pytest.mark.skipif(sys.platform != "linux" or hardware.platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_command_reuses_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    # A process of its own: the setting lasts as long as the process.
    result = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    default, kept = map(int, result.stdout.split())
    assert default > 10_000 and kept < 100  # 16,384 pages of 4 KB faulted in every time, against none at best


LENT = FRESH_TENSOR + """
def resident_mb() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() >> 20

hardware.RELEASE_AFTER = 2.0
if sys.argv[1] == "command":
    hardware.keep_freed_memory()
with hardware.freed_memory_kept():
    with hardware.freed_memory_kept():  # nested, as two threads' calls overlap
        # 8, as the first reuse may come late (FAULTS above): once in CI none of the first 4 was reused
        inside = min(faults_of_a_fresh_tensor() for _ in range(8))
        if sys.argv[1] == "later":  # a script that streams, after a photo
            hardware.keep_freed_memory()
between = min(faults_of_a_fresh_tensor() for _ in range(3))  # as between a stream's frames: kept still
kept = resident_mb()  # the 64 MB freed, still held
time.sleep(3)
print(inside, between, kept - resident_mb())
"""


@pytest.mark.skipif(sys.platform != "linux" or hardware.platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_memory_is_kept_while_the_engine_works_and_handed_back_when_it_rests() -> None:
    """The Python API (docs/speed.md: a photo twice as fast with freed memory kept) without
    holding a photo's memory after it; once keep_freed_memory() is called, as a command does, it
    is kept for good."""
    ways = [subprocess.Popen([sys.executable, "-c", LENT, way], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for way in ("api", "command", "later")]  # side by side: 5 s of imports each
    outs = [way.communicate(timeout=120) for way in ways]
    runs = [subprocess.CompletedProcess(way.args, way.returncode, *out) for way, out in zip(ways, outs, strict=True)]
    assert [r.returncode for r in runs] == [0, 0, 0], "".join(r.stderr[-2000:] for r in runs)
    inside, between, handed_back = map(int, runs[0].stdout.split())
    assert inside < 100 and between < 100 and handed_back >= 60  # MB
    for run in runs[1:]:  # keep_freed_memory() before the engine's calls, or while one runs
        inside, between, handed_back = map(int, run.stdout.split())
        assert inside < 100 and between < 100 and handed_back < 10


def test_engine_calls_on_the_cpu_keep_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from fast_style import engine
    from fast_style.transformer import TransformerConfig, TransformerNet

    calls = []

    @contextlib.contextmanager
    def lent():  # type: ignore[no-untyped-def]
        calls.append(1)
        yield

    monkeypatch.setattr(engine, "freed_memory_kept", lent)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1))
    small = engine.Engine(net, "cpu", precision="fp32", max_pass_pixels=64 * 64)
    small(torch.rand(1, 3, 64, 64))
    small(torch.rand(1, 3, 64, 96))  # in tiles
    assert calls == [1, 1]


def test_stylize_keeps_freed_memory(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from fast_style import stylize

    calls = []
    monkeypatch.setattr(hardware, "keep_freed_memory", lambda: calls.append(1))  # imported when a command runs
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    assert stylize.main(["--model", str(tiny_model), str(photo), "-o", str(tmp_path / "b.png")]) == 0
    assert calls == [1]


@pytest.mark.parametrize(("capability", "precision"), [((9, 0), "fp16"), ((7, 0), "fp16"), ((6, 1), "fp32")])
def test_pictures_on_cuda_take_fp16_where_there_are_tensor_cores(monkeypatch: pytest.MonkeyPatch,
                                                                 capability: tuple, precision: str) -> None:
    """On an H200 eager fp16 beat fp32 and bf16 from 480p up (docs/speed.md, CUDA); before Volta
    there are no tensor cores and fp16 is slow or emulated."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: capability >= (8, 0))
    assert hardware.inference_precision(torch.device("cuda")) == precision



def _widths() -> set[int]:
    from torch._inductor.cpu_vec_isa import valid_vec_isa_list

    return {isa.bit_width() for isa in valid_vec_isa_list()}


@x86
@pytest.mark.slow
@pytest.mark.skipif(not {256, 512} <= _widths(), reason="needs a CPU with AVX-512, to fill the cache at another width")
def test_compiled_kernels_cached_at_one_vector_width_are_not_served_at_another(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inductor's cache key left the width out: kernels written for AVX-512, served under
    # ATEN_CPU_CAPABILITY=avx2 (or to a machine of another width sharing the cache), gave NaN.
    # Inductor reads the variable at each compile; the shape is test_fast_paths_give_the_same_picture's.
    x = torch.rand(2, 3, 37, 53)
    plain = Stylizer.load(tiny_model)(x)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    torch._dynamo.reset()
    wide = (Stylizer.load(tiny_model, compile=True)(x) - plain).abs().max().item()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    torch._dynamo.reset()  # a new compile, which finds the first in Inductor's cache on disk
    narrow = (Stylizer.load(tiny_model, compile=True)(x) - plain).abs().max().item()
    assert wide < 1e-4 and narrow < 1e-4, (wide, narrow)  # nan < 1e-4 is False
