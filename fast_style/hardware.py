"""What this machine runs fast. Every precision default, for training and for stylizing, is
decided here from the hardware in use, never hard-coded: CPUs of one kind differ (AVX-512 with
bf16 and VNNI on some, AVX2 alone on most laptops, where bf16 is emulated hundreds of times
slower and int8 convs saturate). docs/cpus.md has the measurements behind each choice."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from fast_style.config import PRECISION_NAMES

PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.bfloat16, torch.float16, None)))  # autocast dtypes


def cpu_has_fast_bf16() -> bool:
    """AVX512-bf16 or AMX, as oneDNN sees them (so ONEDNN_MAX_CPU_ISA caps it too)."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cpu_has_fast_fp16() -> bool:
    """AVX512-fp16 or AMX-fp16, as oneDNN sees them."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_fp16_supported()


def emulated_precision(device: torch.device, precision: str) -> str | None:
    """A warning line where an explicit precision is one this CPU only emulates: under the AVX2
    cap, `stylize` of a 712x474 photo took 69 s in bf16 and 61 s in fp16, against 4.4 s in fp32."""
    fast = {"bf16": cpu_has_fast_bf16, "fp16": cpu_has_fast_fp16}.get(precision)
    if device.type != "cpu" or fast is None or fast():
        return None
    return (f"warning: precision {precision} on a CPU without {precision} instructions is emulated, "
            "tens of times slower than fp32; precision auto picks what runs fast here")


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


@functools.cache
def int8_pairs_saturate() -> bool:
    """Whether this CPU's int8 convs saturate (no VNNI), found by running one: a 1x1 conv of
    activations 255 and weights 127 over 4 channels is 129,540, or 2 x 32,767 where each pair of
    products is added in 16 bits (vpmaddubsw). It asks oneDNN itself, so ONEDNN_MAX_CPU_ISA counts."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized tensors are deprecated, but still the way to ask
            from torch.ao.nn.quantized import functional as qF

            engine = torch.backends.quantized.engine
            torch.backends.quantized.engine = "onednn"
            try:
                x = torch.quantize_per_tensor(torch.full((1, 4, 1, 1), 255.0), 1.0, 0, torch.quint8)
                w = torch.quantize_per_tensor(torch.full((1, 4, 1, 1), 127.0), 1.0, 0, torch.qint8)
                y = qF.conv2d(x, w, torch.zeros(1), scale=1024.0, zero_point=0, dtype=torch.quint8)
            finally:
                torch.backends.quantized.engine = engine
        return y.dequantize().item() < 100_000
    except Exception:  # noqa: BLE001 - the probe's API gone: assume the worst; 7 bits are safe everywhere
        return True


def inductor_options() -> dict[str, Any]:  # torch.compile's `options`
    """Inductor's on-disk graph cache keys a CPU graph without the vector width its C++ was written
    for (torch 2.15): a cache filled on an AVX-512 CPU, served under ATEN_CPU_CAPABILITY=avx2, gave
    NaN pictures (measured), and so would a cache shared with a machine of another width. Naming
    the width Inductor picks anyway puts it in the key. (int8 graphs are frozen: never cached.)"""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    width = pick_vec_isa().bit_width()  # 0 where nothing is vectorized: left to Inductor
    return {"cpp.simdlen": width} if width else {}


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's
RELEASE_AFTER = 1.0  # seconds without an engine call before the memory freed meanwhile is handed back
_kept = False  # keep_freed_memory() was called: for good
_lent_changed = threading.Condition()


class _Lent:
    calls = 0  # inside freed_memory_kept()
    last = 0.0  # when the last one ended (time.monotonic)
    holding = False  # the thresholds are raised
    releaser = False  # its thread has started


def keep_freed_memory() -> bool:
    """For a command that stylizes and exits: glibc's malloc keeps freed memory for reuse instead
    of handing large blocks back, so a stream's tensors stop faulting in fresh pages every frame
    (600-2,900 page faults a 480p frame in `stylize`'s threads: 3-6% of the pipeline, docs/speed.md).
    The process then holds its peak memory until it exits, which a library must not impose."""
    global _kept
    _kept = _keep()
    return _kept


def _keep() -> bool:
    libc = _glibc()
    if libc is None:
        return False
    # Both thresholds or neither: setting one turns off glibc's sliding threshold, and either alone
    # measured worse than the default (4,200 and 17,000 faults a frame).
    if not (libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) or libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)):
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[None]:
    """Around each engine call: freed memory kept for reuse while calls go on, and handed back
    RELEASE_AFTER seconds after the last. A photo's tensors were fresh pages otherwise, twice its
    time (docs/speed.md); handed back after each call, a stream's frames paid for them again every
    frame. For the Python API and the page's server, which must not hold a photo's peak after it;
    nothing inside a command, which keeps freed memory for good."""
    if _kept or _glibc() is None:
        yield
        return
    with _lent_changed:
        _Lent.calls += 1
        _Lent.holding = _Lent.holding or _keep()
        if not _Lent.releaser:
            threading.Thread(target=_release_when_idle, name="fast_style-release-memory", daemon=True).start()
            _Lent.releaser = True
    try:
        yield
    finally:
        with _lent_changed:
            _Lent.calls -= 1
            _Lent.last = time.monotonic()
            _lent_changed.notify_all()


def _release_when_idle() -> None:
    libc = _glibc()
    assert libc is not None
    with _lent_changed:
        while True:
            idle = time.monotonic() - _Lent.last
            if not _Lent.holding or _Lent.calls:
                _lent_changed.wait()
            elif idle < RELEASE_AFTER:
                _lent_changed.wait(RELEASE_AFTER - idle)
            else:
                if not _kept:  # keep_freed_memory() since: for good
                    # Where glibc's sliding thresholds end once a large block has been freed
                    # (they cannot be made sliding again), and the memory handed back.
                    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
                    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
                    libc.malloc_trim(0)
                _Lent.holding = False


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None)


def cpu_description() -> str:
    """For benchmarks: the CPU's model and instruction sets, and the caps in force."""
    flags, model = set(), platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), "x86_64"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags |= set(line.split(":", 1)[1].split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"]
    isa = ", ".join(f for f in wanted if f in flags) or "no AVX2"
    caps = ", ".join(f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ)
    yes = {True: "yes", False: "no"}
    fast = f"fast bf16: {yes[cpu_has_fast_bf16()]}; int8 pairs saturate: {yes[int8_pairs_saturate()]}"
    return f"{model} [{isa}]" + (f" capped by {caps}" if caps else "") + f"; {fast}; {torch.get_num_threads()} threads"


def inference_precision(device: torch.device) -> str:
    """For pictures: fp16 on CUDA GPUs with tensor cores (since Volta), bf16 on CPUs with
    AVX512-bf16 or AMX, else fp32. On an H200 (docs/speed.md, CUDA) eager fp16 took 15.3 ms a
    1080p frame against fp32's 17.4 and bf16's 21.6, and compiled the two halves ran alike
    (5.1 ms); fp16 keeps more mantissa bits than bf16, and the network's activations stay far
    below its 65504 limit (the largest, on the content photos: 469). Measured on the shipped
    starry_night at 480p on CPU (benchmarks/precision.py), bf16 stays within a mean of 2/255 and
    a 99th percentile of 15/255 of fp32 per pixel: the same picture. At any size it moves the
    picture as far as rounding the input to 8 bits would (docs/stylize.md, `--precision`)."""
    if device.type == "cuda":
        return "fp16" if torch.cuda.get_device_capability(device) >= (7, 0) else "fp32"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def stream_path(device: torch.device) -> tuple[str, bool]:
    """(precision, compile) for videos and live sources, where a one-time cost per frame size
    (seconds; kernels cached on disk) pays for itself. On x86 CPUs int8, the fastest path on both
    classes measured (AVX-512 with VNNI, and AVX2 alone with 7-bit activations), whose content and
    style losses and flicker stay those of fp32 (docs/cpus.md); elsewhere the picture precision,
    compiled."""
    if device.type == "cpu" and is_x86():
        try:
            from fast_style.quantize import require_int8

            require_int8(device)
            return "int8", False  # int8 is always compiled
        except RuntimeError:
            pass
    return inference_precision(device), device.type in ("cpu", "cuda")


def available_memory() -> int | None:
    """Bytes this process can still take without being killed: Linux's MemAvailable and free
    swap, within a container's cgroup limit; None where neither is known (macOS, Windows)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        free = (int(fields["MemAvailable"].split()[0]) + int(fields.get("SwapFree", "0 kB").split()[0])) * 1024
    except (OSError, KeyError, ValueError):
        return None
    with contextlib.suppress(OSError, ValueError):  # cgroup v2; "max" where none is set
        cgroup = Path("/sys/fs/cgroup")
        free = min(free, int((cgroup / "memory.max").read_text()) - int((cgroup / "memory.current").read_text()))
    return free


# A smaller run plans on this share of the free memory, the rest left to what else runs.
PLANNED_SHARE = 0.9


def memory_short(need: float) -> float | None:
    """Where a run estimated to take `need` bytes would be killed by the kernel, as a batch or a
    picture too large was, minutes in and without a line: the bytes free (a smaller run plans on
    PLANNED_SHARE of them), else None. Refused only where even 0.8x the estimate does not fit, as
    estimates are measured on one network and one CPU; None too where memory is not known."""
    free = available_memory()
    return free if free is not None and 0.8 * need > free else None


def training_device(accelerator: str) -> str:
    """What Lightning's `accelerator` resolves to: cuda, mps or cpu."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "cuda"
    if accelerator in ("auto", "gpu", "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def training_channels_last(requested: bool | str, accelerator: str) -> tuple[bool, str | None]:
    """Whether training runs its tensors channels-last (`channels_last=auto`), and a line saying
    why. On CPUs, where oneDNN's convolutions take NHWC without reordering: a step took 0.67x
    the time with AMX in bf16, 0.85x on AVX-512 in fp32, and the same on AVX-512 bf16 without
    AMX and on AVX2 (docs/cpus.md). Off on GPUs: on an H200 a bf16 step at batch 32 took 1.05x
    as long channels-last (docs/speed.md, CUDA)."""
    if requested != "auto":
        return bool(requested), None
    if training_device(accelerator) != "cpu":
        return False, None
    return True, ("channels_last auto: on (a CPU: oneDNN's convs take NHWC as it is; measured: 1.5x a step with AMX, "
                  "as fast without it)")


def training_precision(requested: str, accelerator: str) -> tuple[str, str | None]:
    """Lightning's precision for `trainer.precision`, and a line to print: why `auto` chose it,
    or a warning that an explicit choice is slow on this hardware."""
    device = training_device(accelerator)
    cuda, mps = device == "cuda", device == "mps"
    if requested == "auto":
        if cuda:
            if torch.cuda.is_bf16_supported():
                return "bf16-mixed", "precision auto: bf16-mixed (a CUDA GPU with bf16: 1.36x fp32 on an H200, measured)"
            return "16-mixed", "precision auto: 16-mixed (a CUDA GPU without bf16: fp16 with loss scaling)"
        if mps:
            return "32-true", "precision auto: 32-true (Apple MPS: mixed precision not measured there yet)"
        if cpu_has_fast_bf16():
            return "bf16-mixed", "precision auto: bf16-mixed (this CPU has AVX512-bf16 or AMX: 1.6-2.05x fp32, measured)"
        return "32-true", "precision auto: 32-true (this CPU has no bf16 instructions; bf16 would be emulated, ~300x slower)"
    if str(requested).startswith("bf16") and not cuda and not mps and not cpu_has_fast_bf16():
        return requested, (f"warning: trainer.precision={requested} on a CPU without bf16 instructions is emulated, "
                           "about 300x slower than 32-true; use trainer.precision=auto")
    return requested, None
