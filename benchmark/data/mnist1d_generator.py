"""MNIST-1D generated in one pass over the random draws and array operations over all samples.

The ``mnist1d`` package builds each sequence with a chain of small calls (``scipy.interpolate.interp1d``
objects, ``gaussian_filter`` on one sequence at a time): about 2 s for the 10,000 sequences of digits-hetero,
most of its 3.1-3.6 s build on this project's 2-core CPU (1.2-1.4 s with this). :func:`generate` draws the
same random numbers from the same seeded stream in the same order, then applies the package's transformation
(pad, dilate, scale, translate, correlated and iid noise, shear, subsample, standardise) with the same
floating-point operations on every sample at once, so its output equals ``mnist1d.data.make_dataset``'s bit
for bit (``tests/test_data.py`` checks this against the package). The templates and settings are the
package's own (``get_templates``, ``get_dataset_args``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

EPS = 1e-8  # added to the templates before padding, so that the signal stays non-zero where noise must not go


def linear_resample(signals: list[np.ndarray] | np.ndarray, length: int) -> np.ndarray:
    """Each signal sampled at ``length`` evenly spaced points of [0, 1] by linear interpolation over its own
    evenly spaced grid: what ``interp1d(kind="linear")`` computes for one float64 signal (it calls
    ``np.interp``, as this does)."""
    grids: dict[int, np.ndarray] = {}
    points = np.linspace(0, 1, length)
    out = np.empty((len(signals), length))
    for i, signal in enumerate(signals):
        grid = grids.get(len(signal))
        if grid is None:
            grid = grids[len(signal)] = np.linspace(0, 1, len(signal))
        out[i] = np.interp(points, grid, signal)
    return out


def generate(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_dataset``'s sequences (n × final length, float64, standardised over the whole set) and labels for
    ``num_samples`` and ``seed`` (n = ``num_samples`` rounded down to a multiple of 10), in the package's order
    (train split then test split). Uses its own ``RandomState``: no global random state changes."""
    from mnist1d.data import get_dataset_args, get_templates

    args, templates = get_dataset_args(), get_templates()
    rng = np.random.RandomState(seed)  # the stream np.random.seed(seed) starts, as make_dataset does
    per_class = num_samples // len(templates["y"])
    labels = np.repeat(templates["y"], per_class)
    n, dilated = len(labels), args.template_len + args.padding[-1]
    low, high = args.padding
    pad, shift = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    scale, shear = np.empty(n), np.empty(n)
    corr, iid = np.empty((n, dilated)), np.empty((n, dilated))
    for i in range(n):  # the draws of transform(), in its order
        pad[i] = low + int(rng.rand() * (high - low + 1))
        scale[i] = 1 + args.scale_coeff * (rng.rand() - 0.5)
        shift[i] = rng.choice(args.max_translation)
        corr[i] = args.corr_noise_scale * rng.randn(dilated)
        iid[i] = args.iid_noise_scale * rng.randn(dilated)
        shear[i] = args.shear_scale * (rng.rand() - 0.5)
    padded = [np.concatenate([templates["x"][y] + EPS, np.zeros(p)]) for y, p in zip(labels, pad)]
    x = linear_resample(padded, dilated)
    x *= scale[:, None]
    x = x[np.arange(n)[:, None], (np.arange(dilated) - shift[:, None]) % dilated]  # roll right
    mask = x != 0
    x = mask * x + (1 - mask) * gaussian_filter1d(corr, 2, axis=-1)
    x = x + iid
    x = x - shear[:, None] * np.linspace(-0.5, 0.5, dilated)
    x = linear_resample(x, args.final_seq_length)
    order = rng.permutation(n)
    x, labels = x[order], labels[order]
    return (x - x.mean()) / x.std(), labels
