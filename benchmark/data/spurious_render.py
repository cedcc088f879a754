"""Rendering for the spurious splits (:mod:`benchmark.data.spurious`): backgrounds, digit strokes and colours
drawn from a numpy generator, composed into 3×SIZE×SIZE RGB images in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 16  # output images are 3×SIZE×SIZE


def blend(background: torch.Tensor, mask: torch.Tensor, stroke: torch.Tensor) -> torch.Tensor:
    """Paint ``stroke`` colours (n×3) over ``background`` (n×3×H×W) with opacity ``mask`` (n×1×H×W)."""
    return (background * (1 - mask) + stroke[:, :, None, None] * mask).clamp(0.0, 1.0)


def texture(n: int, rng: np.random.Generator, blotches: float, grain: float, cells: int = 4) -> torch.Tensor:
    """A background texture (n×1×SIZE×SIZE): coarse Gaussian noise upsampled (blotches) plus pixel noise (grain)."""
    coarse = torch.from_numpy(rng.standard_normal((n, 1, cells, cells), dtype=np.float32))
    fine = torch.from_numpy(rng.standard_normal((n, 1, SIZE, SIZE), dtype=np.float32))
    return blotches * F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False) + grain * fine


def stroke_mask(digits: np.ndarray, rng: np.random.Generator, size: int, shift: int, opacity: float) -> torch.Tensor:
    """Opacity masks (n×1×SIZE×SIZE): digits (n×8×8 in [0, 1]) upsampled to size×size, centred, then moved by
    a random shift of up to ``shift`` pixels along each axis (what leaves the canvas is cropped)."""
    n, pad = len(digits), shift + size
    big = F.interpolate(torch.from_numpy(digits).unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False)
    dy, dx = (pad + (SIZE - size) // 2 + rng.integers(-shift, shift + 1, size=n) for _ in range(2))
    rows = torch.from_numpy(dy[:, None] + np.arange(size))[:, :, None]
    cols = torch.from_numpy(dx[:, None] + np.arange(size))[:, None, :]
    canvas = torch.zeros(n, SIZE + 2 * pad, SIZE + 2 * pad)
    canvas[torch.arange(n)[:, None, None], rows, cols] = big[:, 0].clamp(0.0, 1.0)
    return opacity * canvas[:, None, pad : pad + SIZE, pad : pad + SIZE]


def uniform(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
    """A float32 tensor of uniform samples in [low, high)."""
    return torch.from_numpy(rng.uniform(low, high, shape).astype(np.float32))


def jitter(base: tuple[float, float, float], n: int, rng: np.random.Generator, scale: float) -> torch.Tensor:
    """``n`` RGB colours (n×3): ``base`` plus independent Gaussian jitter per channel."""
    return torch.tensor(base) + torch.from_numpy(scale * rng.standard_normal((n, 3), dtype=np.float32))
