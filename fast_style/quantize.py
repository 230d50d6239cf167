"""int8 inference on CPU: the convolutions in 8-bit integers, which AVX512-VNNI and AMX run twice
as fast as bf16. Quantized the PyTorch 2 way (torchao's pt2e: export, calibrate, convert), then
compiled by Inductor, which fuses each quantize / conv / dequantize into one oneDNN int8 conv.

Activations are quantized per tensor with ranges observed on the frames themselves (the first
batch of each frame size) and on a bundled painting, weights per output channel. Instance norm
and the residual adds stay in floating point (bf16 where the CPU has it).

Without VNNI (AVX2 CPUs, AVX-512 without VNNI), oneDNN multiplies u8 activations by s8 weights
with vpmaddubsw, which adds each pair of products in 16 bits and saturates: 255 x 127 x 2 does
not fit. Measured under ONEDNN_MAX_CPU_ISA=AVX2, that made starry_night 11/255 from fp32 instead
of 0.8/255. There the activations get 7 bits (0-127, PyTorch's `reduce_range`), so a pair never
overflows: 1.3/255 (docs/cpus.md). Whether pairs saturate is asked of oneDNN by running one conv
(fast_style.hardware.int8_pairs_saturate)."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable

import torch

from fast_style.hardware import int8_pairs_saturate, is_x86
from fast_style.images import open_rgb
from fast_style.lanes import release_gil_in_compiled_kernels
from fast_style.pixels import resize, to_tensor
from fast_style.styles import STYLES_DIR
from fast_style.transformer import TransformerNet

# Calibrated on the first frame alone, a video that fades in from black would get ranges of zero
# width and come out as noise (measured: a mean error of 70/255). A picture with the full range of
# colours, seen beside it, keeps the ranges wide (3/255, against 2.4/255 calibrated on the frame).
REFERENCE_PICTURE = STYLES_DIR / "starry_night.jpg"
# Ranges are observed on the frame, or above this size on a copy scaled down to it and then given
# to the graph made for the frame: the same ranges (a 4K frame through starry_night: 1.08/255 from
# fp32 against 1.05), and its int8 network made in 29 s at 3.1 GB peak instead of 53 s at 3.8.
CALIBRATION_PIXELS = 1920 * 1080


class Int8Unavailable(RuntimeError):
    pass


def _torchao():  # noqa: ANN202 (torchao's modules)
    pytree_log = logging.getLogger("torch.utils._pytree")
    level = pytree_log.level
    pytree_log.setLevel(logging.ERROR)  # torchao 0.18 on torch 2.15 warns of its own enum registration
    try:
        from torchao.quantization.pt2e import quantize_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer
    except ImportError as e:
        raise Int8Unavailable(f"int8 needs torchao ({e}): pip install torchao") from None
    finally:
        pytree_log.setLevel(level)
    return quantize_pt2e, x86_inductor_quantizer


def require_int8(device: torch.device) -> None:
    """Fails early, with the reason, where int8 cannot run."""
    if device.type != "cpu":
        raise Int8Unavailable(f"int8 runs on the CPU only, not on {device.type}")
    if not is_x86():
        raise Int8Unavailable(f"int8 needs an x86 CPU, not {platform.machine()}")
    _torchao()


def quantize_int8(net: TransformerNet, calibration: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A compiled int8 version of `net` for inputs of calibration's shape (B, 3, H, W), on CPU."""
    require_int8(calibration.device)
    pt2e, x86 = _torchao()
    config = x86.get_default_x86_inductor_quantization_config(reduce_range=int8_pairs_saturate())

    def observing(x: torch.Tensor) -> torch.fx.GraphModule:
        """The network as a graph for x's shape, with an observer on every activation to quantize."""
        graph = torch.export.export(net.eval(), (x,)).module()
        return pt2e.prepare_pt2e(graph, x86.X86InductorQuantizer().set_global(config))

    with torch.no_grad():
        b, _, h, w = calibration.shape
        scale = min(1.0, (CALIBRATION_PIXELS / (h * w)) ** 0.5)
        sample = resize(calibration, round(h * scale), round(w * scale)).clamp(0, 1) if scale < 1 else calibration
        observed = observing(sample)
        observed(sample)  # records the range of every activation that gets quantized
        reference = resize(to_tensor(open_rgb(REFERENCE_PICTURE))[None], *sample.shape[-2:]).clamp(0, 1)
        observed(reference.expand(b, -1, -1, -1))
        if sample is not calibration:  # the same graph at the frame's size takes the ranges
            ranges = observed.state_dict()
            observed = observing(calibration)
            observed.load_state_dict(ranges)
        quantized = pt2e.convert_pt2e(observed)
        release_gil_in_compiled_kernels()  # lanes run their norms and quantizes side by side
        compiled = torch.compile(quantized, dynamic=False)
        # Freezing folds the weights into the graph as constants, which lets Inductor prepack them
        # for oneDNN and replace each dequantize -> conv -> quantize pattern with an int8 conv. Set
        # for this compilation alone (compile's own options= does not reach the freezing pass).
        with torch._inductor.config.patch(freezing=True):
            compiled(calibration)
    return compiled
