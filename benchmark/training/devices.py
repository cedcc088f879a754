"""The training device: resolving ``--device``, waiting for queued work, peak memory, and the host allocator
setting that keeps freed memory in the process."""

from __future__ import annotations

import ctypes
import resource

import torch

from benchmark.core.errors import BenchError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without it is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """Peak CUDA memory allocated by tensors, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda-allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process-rss"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 1 << 30  # freed heap memory is returned to the OS only beyond 1 GiB


def keep_freed_host_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the OS (fixed thresholds:
    blocks up to :data:`MMAP_THRESHOLD` from the heap, the heap trimmed only beyond :data:`TRIM_THRESHOLD`);
    True if set, False where the C library has no ``mallopt`` (not glibc).

    With glibc's adaptive defaults every evaluation of a run allocated its large activations afresh and
    touched them page by page: about 10,000 page faults per split and epoch on digits-hetero, none with these
    settings: about a quarter less evaluation time, though training ran about 3% slower in the default suite, so
    its wall time fell only about 1% (README "Speed"). Only where memory lives changes, not a value; the process
    keeps its peak heap, which its peak RSS already counted."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
