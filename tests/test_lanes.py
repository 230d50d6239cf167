"""Frames side by side, one thread each, in order; only where they pay."""

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fast_style import Stylizer
from fast_style.lanes import (CORES, LANE_MACS, Lanes, lane_count, macs_per_pixel, release_gil_in_compiled_kernels,
                              thread_count)
from fast_style.video import stylize_frames


def test_lanes_keep_the_order_run_side_by_side_on_one_thread_each_and_restore_the_count() -> None:
    before = torch.get_num_threads()
    seen: list[tuple[int, int]] = []
    running, most = 0, 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        seen.append((threading.get_ident(), torch.get_num_threads()))
        time.sleep(0.02 * (i % 3))  # later items finish first now and then
        with lock:
            running -= 1
        return i * i

    with Lanes(2) as lanes:
        assert list(lanes.map(work, range(9))) == [i * i for i in range(9)]
    assert most == 2 and len({ident for ident, _ in seen}) == 2
    assert {threads for _, threads in seen} == {1}
    assert torch.get_num_threads() == before
    with thread_count(1):  # a caller's own count comes back too, not the machine's
        with Lanes(2) as lanes:
            list(lanes.map(work, range(3)))
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_lane_goes_on_to_the_next_frames_while_the_oldest_one_is_slow() -> None:
    """With frames handed out ahead, the free lane takes frames 1-3 while frame 0 still runs
    (without, it waits for frame 0, and frame 0 would wait here for frame 3 in vain)."""
    third_done = threading.Event()
    waited: list[bool] = []

    def work(i: int) -> int:
        if i == 0:
            waited.append(third_done.wait(timeout=10))
        if i == 3:
            third_done.set()
        return i

    with Lanes(2, ahead=2) as lanes:
        assert list(lanes.map(work, range(8))) == list(range(8))
    assert waited == [True]


def test_a_failure_in_a_lane_reaches_the_caller() -> None:
    def work(i: int) -> int:
        if i == 3:
            raise RuntimeError("out of memory")
        return i

    got = []
    with Lanes(2) as lanes, pytest.raises(RuntimeError, match="out of memory"):
        for x in lanes.map(work, range(6)):
            got.append(x)
    assert got == [0, 1, 2]


def test_multiply_adds_are_counted_per_input_pixel() -> None:
    assert macs_per_pixel(nn.Conv2d(3, 8, 3, padding=1)) == 8 * 3 * 9
    strided = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 4, 1, groups=2))
    assert macs_per_pixel(strided) == (8 * 3 * 9 + 4 * 4) / 4


def test_lanes_only_for_light_networks_on_a_cpu() -> None:
    cpu = torch.device("cpu")
    assert lane_count(cpu, LANE_MACS / 2) == CORES
    assert lane_count(cpu, LANE_MACS * 2) == 1
    assert lane_count(torch.device("cuda"), 1e6) == 1
    shipped = Stylizer.load(Path(__file__).parents[1] / "checkpoints" / "starry_night.safetensors", device="cpu")
    assert shipped.lanes_for(480, 854) == 1  # 63 GMAC a 480p frame: one frame on every core
    assert shipped.lanes_for(480, 854, size=256) == CORES


def test_frames_in_lanes_are_the_frames_of_one_lane(tiny_model: Path) -> None:
    stylizer = Stylizer.load(tiny_model, device="cpu")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (36, 52, 3), dtype=np.uint8) for _ in range(7)]
    one = list(stylize_frames(stylizer, iter(frames), lanes=1))
    two = list(stylize_frames(stylizer, iter(frames), lanes=2))
    assert len(two) == 7
    for a, b in zip(one, two):  # the same frames in the same order (sums split over threads may round apart)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def python_beside(run: Callable[[], object]) -> int:
    """How many times a Python loop in another thread got to run in the middle 60% of `run()`."""
    stamps: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())

    beside = threading.Thread(target=loop)
    beside.start()
    time.sleep(0.05)
    start = time.perf_counter()
    run()
    end = time.perf_counter()
    stop.set()
    beside.join()
    margin = 0.2 * (end - start)
    return sum(start + margin < t < end - margin for t in stamps)


def test_compiled_kernels_let_other_threads_run() -> None:
    """Inductor's CPU kernels held the GIL while they ran: two lanes took turns for the norms
    and quantizes around their int8 convs (38 frames a second of realtime8 on two lanes, 53 now)."""
    assert release_gil_in_compiled_kernels()
    torch._dynamo.reset()
    f = torch.compile(lambda x: torch.sin(x * 2 + 1).cos().sum(), dynamic=False)
    x = torch.rand(30_000_000)
    with thread_count(1):
        f(x)  # compiled, then timed
        assert python_beside(lambda: f(x)) > 100  # with the GIL held throughout: none


FX_TRACES = """
import torch
from fast_style.lanes import trace_inductors_dummy_once
{warm}
traced = []
trace = torch.fx.Tracer.trace
def counting(self, *args, **kwargs):
    if type(self).call_module is torch.fx.Tracer.call_module:  # fx's own: a module of another thread fails
        traced.append(type(self).__name__)
    return trace(self, *args, **kwargs)
torch.fx.Tracer.trace = counting
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.InstanceNorm2d(4), torch.nn.ReLU())
torch.compile(net)(torch.rand(1, 3, 16, 16))
print(len(traced))
"""


@pytest.mark.slow  # a fresh process: Inductor's dummy is traced once a process
def test_once_warmed_a_compile_replaces_no_module_call_of_other_threads() -> None:
    """While torch.fx's own tracer runs, every nn.Module called in any thread fails ("module is not
    installed as a submodule"): 243,425 NameErrors beside 3,000 traces of `lambda a: a`. The
    first compile of a process makes one such trace (Inductor's dummy module), unless the
    page's start has already made it."""
    code = FX_TRACES.format(warm="trace_inductors_dummy_once()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "0", result.stderr[-2000:]
