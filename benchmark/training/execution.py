"""A run's execution settings, applied for its duration: torch's CPU threads and, where asked, PyTorch's
deterministic algorithms, with the alerts of operations that ran without one collected for the result."""

from __future__ import annotations

import contextlib
import os
import warnings

import torch

from benchmark.runs.spec import Execution
from benchmark.training.devices import keep_freed_host_memory, resolve_device

NONDETERMINISTIC = " does not have a deterministic implementation"  # PyTorch's warning, after the operation's name


class RunSettings:
    """What :func:`run_settings` set for a run: whether deterministic algorithms are on, and the warnings raised
    so far (``caught``), among them PyTorch's alerts for operations that ran without a deterministic
    implementation (in its warn-only mode)."""

    def __init__(self, deterministic: bool, caught: list):
        self.deterministic, self.caught = deterministic, caught

    def determinism(self) -> dict:
        """For the result: ``deterministic`` (on, and no operation ran without a deterministic implementation) and,
        when some did, ``nondeterministic_ops``, their names."""
        alerts = [str(w.message) for w in self.caught if NONDETERMINISTIC in str(w.message)]
        ops = sorted({alert.split(NONDETERMINISTIC)[0] for alert in alerts})
        return {"deterministic": self.deterministic and not ops, **({"nondeterministic_ops": ops} if ops else {})}


@contextlib.contextmanager
def run_settings(execution: Execution):
    """For the duration of a run: ``execution.threads`` torch CPU threads and, where ``execution.deterministic`` asks
    (:class:`~benchmark.runs.spec.Execution`: by default on CUDA only), PyTorch's deterministic algorithms (cuDNN
    without autotuning; cuBLAS with a fixed workspace, set before CUDA's first use in this process): required when
    ``deterministic`` is True, else in warn-only mode, whose alerts are collected. Yields the
    :class:`RunSettings`; the previous settings are restored afterwards and the warnings other than the alerts
    are shown then. Also keeps freed host memory in the process from then on
    (:func:`~benchmark.training.devices.keep_freed_host_memory`), which changes no value."""
    keep_freed_host_memory()
    deterministic = execution.deterministic
    if deterministic is None:
        deterministic = resolve_device(execution.device).type == "cuda"
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.set_num_threads(execution.threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=execution.deterministic is None)
        torch.backends.cudnn.benchmark = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield RunSettings(deterministic, caught)
    finally:
        torch.set_num_threads(previous[0])
        if deterministic:  # only what was set: the call imports torch's compiler, 1-2 s in the checks
            torch.use_deterministic_algorithms(previous[1])
            torch.backends.cudnn.benchmark = previous[2]
        shown = {}
        for w in caught:
            if NONDETERMINISTIC not in str(w.message):
                shown.setdefault((str(w.message), w.category, w.filename, w.lineno), w)
        for w in shown.values():
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
