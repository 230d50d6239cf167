"""HDR video frames (ITU-R BT.2100: PQ or HLG, BT.2020 colours) to the SDR sRGB the networks take.

A phone's HDR clip (an iPhone records HLG by default) read as if its numbers were SDR comes out
flat and grey: its diffuse white sits at 75% of the signal (HLG; 58% in PQ) and its colours are
BT.2020's, which SDR's numbers make duller. The mapping here follows ITU-R BT.2408: HDR
reference white (203 cd/m2) becomes SDR white, colours are converted in linear light, and the
highlights above white roll off smoothly instead of clipping."""

from __future__ import annotations

import functools

import numpy as np
import torch

PQ, HLG = 16, 18  # FFmpeg's AVCOL_TRC_SMPTE2084 and AVCOL_TRC_ARIB_STD_B67
REFERENCE_WHITE = 203.0  # cd/m2, BT.2408: the level of SDR's 100%
HLG_PEAK = 1000.0  # cd/m2: the display HLG's system gamma of 1.2 is defined for (BT.2100)
KNEE = 0.85  # SDR linear level above which highlights are compressed (reference white: 0.925)
ENCODE_LEVELS = 4096  # linear levels of the sRGB encoding table

# Linear BT.2020 RGB -> linear BT.709/sRGB RGB (ITU-R BT.2087), and BT.2020's luminance weights.
BT2020_TO_BT709 = torch.tensor([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]])
BT2020_LUMA = torch.tensor([0.2627, 0.6780, 0.0593])
BT709_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])


def pq_to_nits(e: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084's EOTF: signal in [0, 1] -> cd/m2."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = e.clamp(0, 1) ** (1 / m2)
    return 10000 * ((p - c1).clamp(min=0) / (c2 - c3 * p)) ** (1 / m1)


def hlg_to_scene(e: torch.Tensor) -> torch.Tensor:
    """BT.2100 HLG's inverse OETF: signal in [0, 1] -> scene light in [0, 1]."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = e.clamp(0, 1)
    return torch.where(e <= 0.5, e * e / 3, (torch.exp((e - c) / a) + b) / 12)


def roll_off(x: torch.Tensor) -> torch.Tensor:
    """Identity up to KNEE, then a smooth approach to 1 with the same slope at the knee:
    highlights keep their gradations instead of clipping flat."""
    d = ((x - KNEE) / (1 - KNEE)).clamp(min=0)
    return torch.minimum(x, KNEE + (1 - KNEE) * d / (1 + d))


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    x = linear.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


@functools.cache
def _tables(transfer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every 16-bit signal's light (the transfer function computed once, not per pixel), and
    sRGB's 8-bit code of ENCODE_LEVELS linear levels (steps of under one code)."""
    signal = torch.arange(65536, dtype=torch.float64) / 65535
    light = pq_to_nits(signal) / REFERENCE_WHITE if transfer == PQ else hlg_to_scene(signal)
    codes = srgb_encode(torch.arange(ENCODE_LEVELS, dtype=torch.float64) / (ENCODE_LEVELS - 1))
    return light.float(), codes.mul(255).round().to(torch.uint8)


def hdr_to_sdr(rgb: np.ndarray, transfer: int) -> np.ndarray:
    """(H, W, 3) uint16 BT.2020 R'G'B' (PQ or HLG) -> (H, W, 3) uint8 sRGB."""
    light, codes = _tables(transfer)
    x = light[torch.from_numpy(rgb.astype(np.int64))]  # (H, W, 3) linear BT.2020
    if transfer == HLG:  # the OOTF of a 1,000 cd/m2 display: system gamma 1.2 on luminance, hues kept
        x *= (HLG_PEAK / REFERENCE_WHITE) * (x @ BT2020_LUMA).clamp(min=1e-9)[..., None] ** 0.2
    x = (x @ BT2020_TO_BT709.T).clamp(min=0)  # 1.0: SDR white; BT.2020 colours outside BT.709's gamut go to its edge
    luminance = (x @ BT709_LUMA).clamp(min=1e-9)[..., None]
    x *= roll_off(luminance) / luminance  # compressed on luminance: hues kept
    x /= x.amax(dim=-1, keepdim=True).clamp(min=1)  # a channel still above 1: scaled, not clipped
    return codes[x.mul_(ENCODE_LEVELS - 1).round_().long()].numpy()
