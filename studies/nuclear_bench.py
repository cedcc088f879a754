"""Time anchor-w2's W2² fit (:func:`benchmark.methods.anchor_w2.cell_w2`, forward and backward) with each way of
computing its nuclear norms, on a batch shaped like the default dataset's, and check that they agree.

    python studies/nuclear_bench.py [--device cuda] [--repeats 200]

A digits-hetero batch: 100 latents (k = 64) in 4 groups × 10 classes, cells padded to the largest (as the sampler
counts it). Prints the median milliseconds per call of each way and the largest relative difference of the values.
On CUDA ``svd`` is a batched SVD of 64-wide matrices and ``gram`` a batched symmetric eigensolver on the Gram
matrices (at most as wide as the largest cell); which is faster there is what this measures.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmark.methods.anchor_w2 import NUCLEAR_NORMS, cell_w2
from benchmark.training.devices import synchronize

GROUPS, CLASSES, K, BATCH = 4, 10, 64, 100


def main() -> None:
    """Time each way of computing the nuclear norms and print how far their values differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    cells = torch.randint(GROUPS * CLASSES, (BATCH,), generator=gen).to(device)
    n_pad = int(torch.bincount(cells).max())
    z = torch.randn(BATCH, K, generator=gen).to(device).requires_grad_()
    m = torch.zeros(CLASSES, K, device=device, requires_grad=True)
    L = torch.eye(K, device=device).repeat(CLASSES, 1, 1).requires_grad_()
    values = {}
    for how in NUCLEAR_NORMS:
        times = []
        for repeat in range(args.repeats + 10):  # the first 10 warm up
            synchronize(device)
            start = time.perf_counter()
            w2, _ = cell_w2(z, cells, GROUPS * CLASSES, n_pad, m, L, nuclear=how)
            w2.sum().backward()
            synchronize(device)
            if repeat >= 10:
                times.append(time.perf_counter() - start)
        values[how] = w2.detach()
        print(f"{how}: {1000 * statistics.median(times):.3f} ms per forward and backward ({device}, n_pad {n_pad})")
    gap = ((values["gram"] - values["svd"]).abs() / values["svd"].abs().clamp_min(1e-12)).max().item()
    print(f"largest relative difference of the cells' W2²: {gap:.2e}")


if __name__ == "__main__":
    main()
