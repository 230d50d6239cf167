"""Mixing a stylized image with its photo: style strength and colour preservation."""

from __future__ import annotations

import torch

# ITU-R BT.601 RGB <-> YCbCr (full range, chroma centred on 0).
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(x), x)  # (B, 3, H, W)


def keep_photo_color(stylized: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The stylized luminance with the photo's chroma: the painting's strokes in the photo's
    colours (luminance-only transfer, Gatys et al. 2016, arXiv:1606.05897)."""
    y = _mix(_RGB_TO_YCBCR, stylized)[:, :1]
    cbcr = _mix(_RGB_TO_YCBCR, photo)[:, 1:]
    return _mix(torch.linalg.inv(_RGB_TO_YCBCR), torch.cat([y, cbcr], dim=1)).clamp(0, 1)


def blend(photo: torch.Tensor, stylized: torch.Tensor, strength: float) -> torch.Tensor:
    """`strength` 0 gives the photo, 1 the stylized image. In between, a plain linear mix of
    two unrelated textures loses contrast (at 0.5 the variance of each drops to a quarter: a
    washed-out, ghosted picture). The variance-preserving blend of Heitz & Neyret 2018
    ("High-Performance By-Example Noise using a Histogram-Preserving Blending Operator")
    divides the mixed deviations by sqrt(w1^2 + w2^2), so each stays as vivid as it was."""
    if strength >= 1:
        return stylized
    if strength <= 0:
        return photo
    w1, w2 = 1 - strength, strength
    m1, m2 = photo.mean(dim=(2, 3), keepdim=True), stylized.mean(dim=(2, 3), keepdim=True)
    deviation = (w1 * (photo - m1) + w2 * (stylized - m2)) / (w1**2 + w2**2) ** 0.5
    return (w1 * m1 + w2 * m2 + deviation).clamp(0, 1)
