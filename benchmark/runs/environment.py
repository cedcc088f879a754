"""What a result was computed with: software versions, the source's git commit, the host and the device."""

from __future__ import annotations

import functools
import hashlib
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn", "mnist1d")
SOURCE = Path(__file__).resolve().parent


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout this package runs from, with ``+dirty`` when it has uncommitted changes; None
    outside a git checkout (an installed wheel)."""
    try:
        head = subprocess.run(["git", "-C", str(SOURCE), "rev-parse", "HEAD"], capture_output=True, text=True)
        status = subprocess.run(
            ["git", "-C", str(SOURCE), "status", "--porcelain", "--", "."], capture_output=True, text=True
        )
    except OSError:  # no git on this machine
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


@functools.lru_cache(maxsize=4)
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The CPU's model name and a digest of its vendor, family, model number, feature flags and cache size (from
    /proc/cpuinfo on Linux; elsewhere only the platform's processor string and no digest). Two machines with the
    same torch and instruction set can still sum in another order (the math libraries choose kernels by vendor,
    flags and cache), so this is what says whether two CPU results can be bitwise equal."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    identity = " ".join(fields.get(key, "") for key in ("vendor_id", "cpu family", "model", "flags", "cache size"))
    return {
        "name": fields.get("model name") or platform.processor() or None,
        "features": hashlib.sha256(identity.encode()).hexdigest()[:12] if fields else None,
    }


def environment(device: torch.device) -> dict:
    """Python, the benchmark and its main packages' versions, the git commit, host, platform, CPU model and
    instruction set, and on CUDA the toolkit version and device name."""
    cuda = device.type == "cuda"
    return {
        "python": platform.python_version(),
        "benchmark": package_version("group-robust-bench"),
        "packages": {name: package_version(name) for name in PACKAGES},
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
    }
