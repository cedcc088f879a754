"""Where a training step's time goes (``bench profile --breakdown``): the step's operators, profiled with
:mod:`torch.profiler` and grouped by kind, each kind's share of the time and, for the kinds that do arithmetic,
its FLOPs (:class:`~torch.utils.flop_counter.FlopCounterMode`) and achieved GFLOP/s against the machine's peak.

Time is each operator's self time (CPU, or the device's on CUDA); what the steps took beyond all operators'
self time is the Python, autograd-engine and dispatch overhead between them (and the profiler's own).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.profiler import ProfilerActivity
from torch.utils.flop_counter import FlopCounterMode

from benchmark.training.devices import synchronize

KINDS = {  # kind -> substrings of operator names (the first match wins, in this order)
    "convolution": ("conv",),
    "matrix product": ("mm", "matmul", "linear"),
    "pooling": ("pool",),
    "optimizer": ("adam", "sgd", "optimizer"),
    "reduction and normalisation": ("sum", "mean", "norm", "softmax", "nll", "cross_entropy"),
    "copy, index and layout": (
        "copy",
        "index",
        "cat",
        "split",
        "view",
        "reshape",
        "strided",
        "transpose",
        "permute",
        "expand",
        "squeeze",
        "contiguous",
        "clone",
        "empty",
        "zero",
        "select",
        "slice",
        "scatter",
    ),
}
LAYOUT_NAMES = {"to", "t", "detach"}  # matched whole (as substrings they would catch unrelated names)
OTHER, OUTSIDE = "elementwise and other", "outside operators (Python, autograd, dispatch)"


def op_kind(name: str) -> str:
    """The kind of an operator by its name (``aten::convolution_backward`` -> ``convolution``)."""
    low = name.lower().removeprefix("aten::").removeprefix("aten.")  # the profiler's and the FLOP counter's names
    if low in LAYOUT_NAMES:
        return "copy, index and layout"
    return next((kind for kind, keys in KINDS.items() if any(key in low for key in keys)), OTHER)


def breakdown(step: Callable, batches: list, device: torch.device, peak_gflop_per_s: float) -> list[dict]:
    """One row per kind of operator over ``step(batch)`` for each of ``batches`` (warmed up by the caller):
    ms per step, share of the steps' time, and MFLOP per step, GFLOP/s and ×peak where the kind counts FLOPs."""
    flops: dict[str, float] = {}
    with FlopCounterMode(display=False) as counter:
        for batch in batches:
            step(batch)
    for op, count in counter.get_flop_counts().get("Global", {}).items():
        flops[op_kind(str(op))] = flops.get(op_kind(str(op)), 0) + count
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    synchronize(device)
    start = time.perf_counter()
    with torch.profiler.profile(activities=activities) as prof:
        for batch in batches:
            step(batch)
        synchronize(device)
    wall_us = (time.perf_counter() - start) * 1e6
    field = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    spent: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") or "optimizer" in event.key.lower():
            spent[op_kind(event.key)] = spent.get(op_kind(event.key), 0.0) + getattr(event, field)
    if device.type != "cuda":
        spent[OUTSIDE] = max(wall_us - sum(spent.values()), 0.0)
    total, n = sum(spent.values()), len(batches)
    rows = []
    for kind, us in sorted(spent.items(), key=lambda item: -item[1]):
        mflop = flops.get(kind, 0) / n / 1e6
        rate = mflop / (us / n) if us > 0 and mflop else None  # MFLOP per µs = TFLOP/s; ×1e3 for GFLOP/s
        rows.append(
            {
                "kind": kind,
                "ms_per_step": us / n / 1e3,
                "share": us / total,
                "mflop_per_step": mflop or None,
                "gflop_per_s": rate * 1e3 if rate else None,
                "ratio_to_peak": rate * 1e3 / peak_gflop_per_s if rate else None,
            }
        )
    return rows
