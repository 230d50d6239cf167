"""A camera's sensor noise, taken out of stream frames before the network. In flat areas the
network's strokes follow differences below one 8-bit step of its input, so noise that differs in
every frame redraws them: at 2 steps of noise a still webcam's picture flickered 3.4 times what a
clean pan leaves under the grid lock (docs/video.md, Sensor noise). Video files have mostly lost
that noise in their codec; cameras and live streams have not."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fast_style.motion import LUMA, Motion

PASS = 8.0  # a local change of luma (3x3 mean of |frame - state|, 8-bit steps) the frame passes whole at
KEEP = 0.75  # the most of the state a frame keeps: where the scene stays, noise falls to about 0.38 of itself
CUT = 0.5  # above this share of the picture passing whole, a cut or a lost lock: start afresh


class Denoise:
    """`denoise(frame, motion)` for each frame of a stream in order, with the frame's `Motion` from
    a `fast_style.motion.GridLock`: a recursive filter, state += k (frame - state), whose state
    follows the scene's measured pan by whole pixels (so a clean pan comes out unchanged), with k
    from 1 - KEEP up to 1 as the local change grows, so what moves against the scene passes
    through. A zoom starts it afresh: a state resampled every frame blurred the picture
    (benchmarks/sensor_noise.py)."""

    def __init__(self) -> None:
        self._state: torch.Tensor | None = None  # (H, W, 3) float, 8-bit steps
        self._motion = Motion(0.0, 0.0)

    def __call__(self, frame: np.ndarray, motion: Motion) -> np.ndarray:
        """(H, W, 3) uint8 -> the same, filtered (a new array; the frame is not changed)."""
        x = torch.from_numpy(frame.astype(np.float32))  # a copy: frames may be read-only
        state, before = self._state, self._motion
        self._state, self._motion = x, motion  # afresh, unless the filter runs below
        if state is None or state.shape != x.shape or motion.scale != before.scale:
            return frame
        h, w = x.shape[:2]
        dy, dx = round((motion.y - before.y) * motion.scale), round((motion.x - before.x) * motion.scale)
        if abs(dy) >= h or abs(dx) >= w:
            return frame
        # (H, W, 3): the state where the scene now is; what came into view has no past: the frame
        moved = x.clone()
        ys, xs = slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx))
        moved[ys, xs] = state[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
        change = x - moved
        luma = F.pad((change @ LUMA).abs_()[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]  # (H + 2, W + 2)
        rows = luma[:, :-2] + luma[:, 1:-1] + luma[:, 2:]  # a 3x3 sum, in two passes (avg_pool2d: 3x slower)
        k = (rows[:-2] + rows[1:-1] + rows[2:]).div_(9 * PASS).clamp_(1 - KEEP, 1)  # (H, W)
        if np.count_nonzero(k.numpy() >= 1) > CUT * k.numel():  # numpy: a sixth of torch's time here
            return frame
        self._state = change.mul_(k[..., None]).add_(moved)  # in place: 3 ms a 480p frame on one core
        # between the state and the frame, so within [0, 255]; numpy rounds it in 0.2 ms, torch 0.4
        return np.rint(self._state.numpy()).astype(np.uint8)
