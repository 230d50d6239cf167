import contextlib
import copy
import getpass
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from fast_style.model_file import save_model
from fast_style.transformer import TransformerConfig, TransformerNet

T = TypeVar("T")


def pytest_collection_finish(session: pytest.Session) -> None:
    """A test module's `start_early()`, once, where any of its tests is to run: work of a process
    of its own (tests/test_typing.py's mypy) then runs beside the tests before it."""
    for module in {id(item.module): item.module for item in session.items if hasattr(item, "module")}.values():
        if hasattr(module, "start_early"):
            module.start_early()


K = TypeVar("K")


def side_by_side(procs: dict[K, subprocess.Popen], timeout: float) -> dict[K, tuple[int, str]]:
    """(exit status, stderr) of processes started at once: tests whose processes spend their time
    importing run them side by side. None is left running, whatever happens (a timeout of
    `communicate`, unlike `subprocess.run`'s, leaves the child alive)."""
    done = {}
    try:
        for key, proc in procs.items():
            _, stderr = proc.communicate(timeout=timeout)
            done[key] = (proc.returncode, stderr)
    finally:
        for proc in procs.values():
            proc.kill()
    return done


def make_photo(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A smooth random picture (gradients plus a blob), size = (width, height)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rgb = np.stack([xx, yy, np.sin(6 * xx + rng.uniform(0, 6)) * 0.5 + 0.5], axis=-1)
    rgb = (rgb * 255 * rng.uniform(0.5, 1.0, 3)).clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    return make_photo_dir(tmp_path / "photos")


def make_photo_dir(root: Path) -> Path:
    """Four photos of odd sizes, one nested two folders down, and a file that is no photo."""
    for i, size in enumerate([(80, 60), (64, 96), (120, 90), (70, 70)]):
        make_photo(root / f"p{i}.jpg", size, seed=i)
    make_photo(root / "nested" / "deeper" / "q.png", (90, 72), seed=9)
    (root / "notes.txt").write_text("not a photo")
    return root


def as_stored(net: torch.nn.Module) -> torch.nn.Module:
    """The network as a model file holds it: its parameters rounded to float16 (save_model)."""
    stored = copy.deepcopy(net)
    with torch.no_grad():
        for p in stored.parameters():
            p.copy_(p.half())
    return stored


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=8, res_blocks=1, output_scale=1.0))  # untrained, yet not flat
    return save_model(tmp_path / "models" / "tiny.safetensors", net, {"style": "tiny", "steps": 0})


# The real photos and paintings beside the project (../shared/data); FAST_STYLE_DATA moves them.
SHARED_DATA = Path(os.environ.get("FAST_STYLE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def run_train(cwd: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    """`train OVERRIDES...` in cwd (its runs/ and checkpoints/ land there), in this process."""
    [result] = run_train_many([(cwd, list(overrides))])
    if check and result.returncode != 0:
        pytest.fail(f"train failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def run_train_many(cases: list[tuple[Path, list[str]]]) -> list[subprocess.CompletedProcess]:
    """`train` runs in this process, one after the other, as the command line would run them: a new
    process spends 8 s (AVX-512 Zen 4) to 20 s (AVX2 Zen 3) importing torch, torchvision and
    Lightning, which was most of a short run's time. Tests that need a process of their own (kill -9,
    Ctrl-C, DDP, other CPU caps) start one."""
    import fast_style.fit  # noqa: F401  Lightning's import adds warning filters: not a run's, which are checked below
    from fast_style.train import main

    results = []
    for cwd, argv in cases:
        out, err, code = io.StringIO(), io.StringIO(), 0
        # Lightning's own loggers may hold the stderr of import time: point them here for the run.
        handlers = [h for name in ("lightning", "lightning.pytorch", "lightning.fabric")
                    for h in logging.getLogger(name).handlers if isinstance(h, logging.StreamHandler)]
        old_streams = [h.stream for h in handlers]
        for h in handlers:
            h.setStream(err)
        old_argv, old_cwd = sys.argv, os.getcwd()
        try:
            os.chdir(cwd)
            sys.argv = ["train", *argv]
            # The warnings a user would see, into its stderr: pytest would otherwise take them all.
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings(record=True) as caught:
                filters = list(warnings.filters)
                try:
                    main()
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 1
                assert warnings.filters == filters, "a run left its warning filters to the process"
                for w in caught:
                    err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
            for h, stream in zip(handlers, old_streams):
                h.setStream(stream)
        results.append(subprocess.CompletedProcess(["train", *argv], code, out.getvalue(), err.getvalue()))
    return results


def stop_group(proc: subprocess.Popen, ready: Callable[[], T]) -> tuple[T, str]:
    """Once `ready()` has returned, SIGTERM to the process group `proc` leads (start_new_session),
    as a scheduler's stop sends it: what `ready` returned, and the process's stderr. The process
    is killed whatever happens, so a failed wait leaves nothing running."""
    try:
        value = ready()
        os.killpg(proc.pid, signal.SIGTERM)
        return value, proc.communicate(timeout=120)[1]
    finally:
        proc.kill()


def answers_in_a_fresh_process(main: str, argvs: list[list[str]], cwd: Path,
                                heavy: tuple[str, ...]) -> tuple[list[str], subprocess.CompletedProcess]:
    """Each command line through `main` (a function of argv) in one new interpreter: the exit
    statuses (or return values) in order, then which of the `heavy` modules it imported."""
    code = (f"import sys\n{main}\nfor argv in {argvs!r}:\n    try:\n        print('answer:', call(argv))\n"
            f"    except SystemExit as e:\n        print('answer:', e.code)\n"
            f"print('answer:', [m for m in {heavy!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=False)
    return [line.removeprefix("answer: ") for line in result.stdout.splitlines() if line.startswith("answer: ")], result


def metadata(path: Path) -> dict:
    """The raw JSON header of a model file."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["fast_style"])


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar over every event file of a run (each stage of a run,
    validate or fit, writes a file of its own)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = []
    for events in sorted((run / "tensorboard").glob("events.out.tfevents.*"), key=lambda p: int(p.name.split(".")[-1])):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            found += [(e.step, e.value) for e in acc.Scalars(tag)]
    return found


def record(path: Path) -> dict:
    """What a model file says its network was trained on."""
    return metadata(path)["record"]


def require(path: Path, what: str) -> None:
    """Skip where a developer lacks the shared data; in CI its absence is a failure."""
    if not path.exists():
        message = f"{what} not found at {path}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


# oneDNN and ATen limited to AVX2, as on most laptops, on a machine with AVX-512: bf16 emulated,
# no VNNI. With their own kernel cache, since Inductor's cache key misses the cap (a kernel
# compiled under it crashed an uncapped process with "free(): invalid next size": docs/cpus.md).
AVX2_CAP = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
CPU_FLAGS = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
CAN_IMITATE_AVX2 = "avx512f" in CPU_FLAGS and not any(k in os.environ for k in AVX2_CAP)
# Intel's laptop CPUs since Alder Lake (2021): AVX2 with AVX-VNNI (int8 pairs not saturated), no
# AVX-512, no bf16. oneDNN's AVX2_VNNI cap imitates them where the CPU has AVX-VNNI.
CAN_IMITATE_AVX_VNNI = "avx_vnni" in CPU_FLAGS and CAN_IMITATE_AVX2
# What the CPU has, from /proc/cpuinfo, as the cap in force (if any) leaves it: the AVX2 caps
# above take bf16 away, and VNNI too but for AVX2_VNNI on a CPU with AVX-VNNI.
_CAP = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
BF16_CPU = bool({"avx512_bf16", "amx_bf16"} & CPU_FLAGS) and not _CAP
VNNI_CPU = (bool({"avx512_vnni", "avx_vnni"} & CPU_FLAGS) and not _CAP) or (
    _CAP.startswith("AVX2_VNNI") and "avx_vnni" in CPU_FLAGS)


def avx2_env(vnni: bool = False) -> dict[str, str]:
    """The environment of a process capped to AVX2, or with `vnni` to AVX2 with AVX-VNNI."""
    isa = "AVX2_VNNI" if vnni else "AVX2"
    cache = Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}_{isa.lower()}"
    return {**os.environ, **AVX2_CAP, "ONEDNN_MAX_CPU_ISA": isa, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
