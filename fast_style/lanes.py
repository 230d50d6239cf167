"""Frames of a stream side by side, each on a core of its own.

A small network splits each layer of one frame across the cores and waits at every layer for the
slowest of them; one frame per core skips the waits. Large networks lose by it: two frames'
activations no longer fit the caches (docs/realtime.md has the measurements)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import nn

T, R = TypeVar("T"), TypeVar("R")
LANE_MACS = 14e9  # a frame whose convolutions take up to this many multiply-adds gains from lanes (measured)


CORES = torch.get_num_threads()  # the count as first seen: what whole-frame work runs on


@contextmanager
def thread_count(n: int) -> Iterator[None]:
    """This thread's intra-op threads for the block. Torch keeps the count per thread once a
    thread has used it; setting it also sets the count that threads not yet started take, so
    work on every core says so (`thread_count(CORES)`) rather than trusting the default."""
    before = torch.get_num_threads()  # a thread's first call takes the process-wide count
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Inductor calls each CPU kernel it generates through a Python binding that keeps the GIL while
# the kernel runs (torch 2.15: `CppPythonBindingsCodeCache.call_entry_function`). The instance
# norms, quantizes and pads around an int8 network's oneDNN convs (which release it) are half of a
# real-time frame, so lanes took turns for them, and the reader and writer threads waited. Bound
# as below, the arguments are read with the GIL held and the kernel, C++ on raw pointers that
# touches no Python object, runs without it, as ATen's own operators do.
_HOLDS_GIL = "kernel({}); Py_RETURN_NONE;"
_RELEASES_GIL = ("struct NoGil {{ PyThreadState* s = PyEval_SaveThread(); ~NoGil() {{ PyEval_RestoreThread(s); }} }}; "
                 "[](auto... a) {{ NoGil no_gil; kernel(a...); }}({}); Py_RETURN_NONE;")


def release_gil_in_compiled_kernels() -> bool:
    """For kernels compiled from now on in this process; whether they release it. Changes only
    the binding this torch is known to generate (another is left as it is)."""
    try:
        from torch._inductor.codecache import CppPythonBindingsCodeCache as bindings
    except ImportError:
        return False
    if getattr(bindings, "call_entry_function", None) == _HOLDS_GIL:
        bindings.call_entry_function = _RELEASES_GIL
    return getattr(bindings, "call_entry_function", None) == _RELEASES_GIL


def trace_inductors_dummy_once() -> None:
    """Inductor traces one function with torch.fx the first time it compiles in a process (a
    cached dummy module, torch 2.15), and fx replaces nn.Module.__call__ for the whole process while
    it traces: a network called in another thread in that instant failed with NameError ("module
    is not installed as a submodule"; once in about 15 runs of tests/test_int8.py's deadlock
    check). Called before threads run networks beside a compile, it leaves no such instant."""
    try:
        from torch._inductor.loop_body import InterpreterShim

        InterpreterShim._dummy_gm()
    except (ImportError, AttributeError):
        pass


def _one_thread() -> None:
    torch.get_num_threads()
    torch.set_num_threads(1)


def macs_per_pixel(net: nn.Module) -> float:
    """The convolutions' multiply-adds per input pixel, counted on a small input."""
    total = 0

    def count(conv: nn.Conv2d, _: tuple, y: torch.Tensor) -> None:
        nonlocal total
        total += y.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, 64, 64, device=next(net.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return total / (64 * 64)


def lane_count(device: torch.device, frame_macs: float) -> int:
    """One lane a core for a light network on a CPU; one lane (all cores on each frame) otherwise."""
    if device.type != "cpu" or frame_macs > LANE_MACS:
        return 1
    return CORES


class Lanes:
    """`lanes.map(fn, items)`: fn over items, `lanes` at a time, each on one thread, results in
    order. `ahead`: items handed out beyond the lanes, so that a lane whose frame finished before
    the oldest one's starts the next at once instead of idling (for files, where throughput
    counts; a live source keeps 0, each item queued ahead being a frame of latency)."""

    def __init__(self, lanes: int, ahead: int = 0) -> None:
        self.lanes = lanes
        self.ahead = ahead if lanes > 1 else 0
        self._threads = torch.get_num_threads()  # the caller's count, given back at the end
        self._pool = ThreadPoolExecutor(lanes, initializer=_one_thread) if lanes > 1 else None

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self._pool is None:
            yield from map(fn, items)
            return
        running: deque[Future] = deque()
        for item in items:
            running.append(self._pool.submit(fn, item))
            if len(running) >= self.lanes + self.ahead:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            torch.set_num_threads(self._threads)  # the lanes set the count new threads take too

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
