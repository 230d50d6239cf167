"""HDR video frames (ITU-R BT.2100: PQ or HLG, BT.2020 colours) to the SDR sRGB the networks take.

A phone's HDR clip (an iPhone records HLG by default) read as if its numbers were SDR comes out
flat and grey: its diffuse white sits at 75% of the signal (HLG; 58% in PQ) and its colours are
BT.2020's, which SDR's numbers make duller. The mapping here follows ITU-R BT.2408: HDR
reference white (203 cd/m2) becomes SDR white, colours are converted in linear light, and the
highlights above white roll off smoothly instead of clipping.

FFmpeg 8's swscale maps HDR to SDR too (PyAV's `reformat(dst_color_trc=..., dst_color_primaries=...)`,
45 ms a 1080p frame against about 130 ms here), to the same levels below white, but it clips
everything above (an HLG signal from 75% up: 255), which flattens a sky: measured and dropped."""

from __future__ import annotations

import functools

import numpy as np

PQ, HLG = 16, 18  # FFmpeg's AVCOL_TRC_SMPTE2084 and AVCOL_TRC_ARIB_STD_B67
REFERENCE_WHITE = 203.0  # cd/m2, BT.2408: the level of SDR's 100%
HLG_PEAK = 1000.0  # cd/m2: the display HLG's system gamma of 1.2 is defined for (BT.2100)
KNEE = 0.85  # SDR linear level above which highlights are compressed (reference white: 0.925)
ENCODE_LEVELS = 4096  # linear levels of the sRGB encoding table
ROWS = 64  # rows converted at a time: the passes stay in the cache (3x faster a 1080p frame than whole)

# Linear BT.2020 RGB -> linear BT.709/sRGB RGB (ITU-R BT.2087), and the two luminance weights.
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]],
                           np.float32)
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], np.float32)
BT709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084's EOTF: signal in [0, 1] -> cd/m2."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.clip(e, 0, 1) ** (1 / m2)
    return 10000 * (np.maximum(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1)


def hlg_to_scene(e: np.ndarray) -> np.ndarray:
    """BT.2100 HLG's inverse OETF: signal in [0, 1] -> scene light in [0, 1]."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = np.clip(e, 0, 1)
    return np.where(e <= 0.5, e * e / 3, (np.exp((np.maximum(e, 0.5) - c) / a) + b) / 12)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


@functools.cache
def _tables(transfer: int) -> tuple[np.ndarray, np.ndarray]:
    """Every 16-bit signal's light (the transfer function computed once, not per pixel), and
    sRGB's 8-bit code of ENCODE_LEVELS linear levels (steps of under one code)."""
    signal = np.arange(65536) / 65535
    light = pq_to_nits(signal) / REFERENCE_WHITE if transfer == PQ else hlg_to_scene(signal)
    codes = srgb_encode(np.arange(ENCODE_LEVELS) / (ENCODE_LEVELS - 1))
    return light.astype(np.float32), np.rint(codes * 255).astype(np.uint8)


def hdr_to_sdr(rgb: np.ndarray, transfer: int) -> np.ndarray:
    """(H, W, 3) uint16 BT.2020 R'G'B' (PQ or HLG) -> (H, W, 3) uint8 sRGB. NumPy, one thread:
    it runs in a video's reader thread, beside the network's threads, not against them."""
    out = np.empty(rgb.shape, np.uint8)
    for top in range(0, rgb.shape[0], ROWS):
        out[top : top + ROWS] = _band_to_sdr(rgb[top : top + ROWS], transfer)
    return out


def _band_to_sdr(rgb: np.ndarray, transfer: int) -> np.ndarray:
    light, codes = _tables(transfer)
    x = light[rgb]  # (h, W, 3) linear BT.2020
    if transfer == HLG:  # the OOTF of a 1,000 cd/m2 display: system gamma 1.2 on luminance, hues kept
        x *= ((HLG_PEAK / REFERENCE_WHITE) * np.maximum(x @ BT2020_LUMA, 1e-9) ** 0.2)[..., None]
    x = np.maximum(x @ BT2020_TO_BT709.T, 0)  # 1.0: SDR white; colours outside BT.709's gamut: to its edge
    luminance = np.maximum(x @ BT709_LUMA, 1e-9)
    x *= (roll_off(luminance) / luminance)[..., None]  # compressed on luminance: hues kept
    x /= np.maximum(x.max(axis=-1, keepdims=True), 1)  # a channel still above 1: scaled, not clipped
    return codes[np.rint(x * (ENCODE_LEVELS - 1)).astype(np.intp)]


def roll_off(x: np.ndarray) -> np.ndarray:
    """Identity up to KNEE, then a smooth approach to 1 with the same slope at the knee:
    highlights keep their gradations instead of clipping flat."""
    d = np.maximum((x - KNEE) / (1 - KNEE), 0)
    return np.minimum(x, KNEE + (1 - KNEE) * d / (1 + d))
