"""Keeping freed host memory in the process (:func:`benchmark.training.devices.keep_freed_host_memory`): repeated
forward passes stop page-faulting (that no number changes, the golden runs of ``test_numbers.py`` check bitwise)."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys

import pytest

FORWARD_PASSES = """
import json, resource, sys, torch
from benchmark.training.devices import keep_freed_host_memory
if sys.argv[1] == "keep":
    assert keep_freed_host_memory()
torch.set_num_threads(1)  # as in runs; with two threads the plain process sometimes stopped faulting too
x = torch.randn(512, 1, 16, 16)
conv1, conv2 = torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.Conv2d(16, 32, 3, padding=1)
faults = []
with torch.no_grad():
    for _ in range(4):  # an evaluation's shapes, one split after another
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.sigmoid(torch.nn.functional.max_pool2d(conv2(conv1(x)), 2)).sum()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def page_faults(mode: str) -> list[int]:
    """Minor page faults of each of four forward passes in a fresh process, with or without the setting."""
    out = subprocess.run([sys.executable, "-c", FORWARD_PASSES, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallopt"), reason="the C library has no mallopt (not glibc)")
def test_repeated_forward_passes_stop_page_faulting():
    plain, kept = page_faults("plain"), page_faults("keep")
    # 512 x 16 x 16 x 16 floats are 8 MiB (2,048 pages): glibc's adaptive defaults fault the activations in again in
    # most passes (8,192-12,257 faults; an occasional later pass 0: in 3 of 9 processes, one pass of three); kept, the
    # heap may still grow once to its high-water mark (measured: 0 or 2,048 in one later pass)
    assert sum(faults > 1000 for faults in plain[1:]) >= 2, plain
    assert sum(kept[1:]) < sum(plain[1:]) / 4, (kept, plain)
