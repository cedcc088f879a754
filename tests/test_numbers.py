"""Refactors and speed work must not change a training number: a quick run of every built-in method, compared with
the losses and metrics committed in ``tests/golden/quick_runs.json``.

On the machine kind that wrote the file (same torch version, CPU instruction set, CPU model and feature flags) the
comparison is bitwise. Elsewhere, kernels that sum in another order may differ in the last bits (two AVX2 machines
with the same torch did, in the sixth digit of a loss), which a few epochs of training amplify, so it allows a
relative difference of :data:`LOSS_RTOL` in the losses and :data:`ACC_TOL` points in accuracies.
Regenerate the file (when a change is meant to change numbers, and say so in the commit; or to move the bitwise check
to another machine kind after the tolerance check passed there) with ``python tests/test_numbers.py --write``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BUILTIN_METHODS, small_hetero_options  # noqa: E402

from benchmark.core.registry import METHODS  # noqa: E402
from benchmark.data import build_dataset  # noqa: E402
from benchmark.plugins import load_plugins  # noqa: E402
from benchmark.runs.environment import cpu_model  # noqa: E402
from benchmark.runs.spec import Execution, RunSpec, TrainConfig  # noqa: E402
from benchmark.training.engine import train  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "quick_runs.json"
EPOCHS = 4  # every method's stages fit (dro-lt and jtt need at least two epochs)
LOSS_RTOL = 1e-3
ACC_TOL = 1.0  # points


def machine_kind() -> dict:
    """What decides whether CPU kernels are bitwise the same: the torch version, the instruction set used and the
    CPU itself (:func:`~benchmark.runs.environment.cpu_model`)."""
    return {
        "torch": torch.__version__.split("+")[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": cpu_model(),
    }


def quick_numbers(data, method: str) -> dict:
    """Per evaluation of a quick run: the stage, the mean training loss, and val/test accuracy and WGA."""
    spec = RunSpec("digits-hetero", small_hetero_options(), method, {}, 0, TrainConfig(epochs=EPOCHS))
    records: list[dict] = []
    train(spec, data, records.append, Execution(device="cpu"))
    return {
        "evals": [
            {
                "stage": r["stage"],
                "train_loss": r["train_loss"],
                **{f"{split}_{m}": r[split][m] for split in ("val", "test") for m in ("acc", "wga")},
            }
            for r in records
        ]
    }


def all_numbers() -> dict:
    load_plugins(())
    data = build_dataset("digits-hetero", small_hetero_options())
    return {method: quick_numbers(data, method) for method in BUILTIN_METHODS}


def differences(expected: dict, got: dict, exact: bool) -> list[str]:
    """Where ``got`` departs from ``expected``: every value bitwise when ``exact``, else within the tolerances."""
    problems = []
    for method, want in expected.items():
        have = got[method]["evals"]
        if len(have) != len(want["evals"]):
            problems.append(f"{method}: {len(have)} evaluations, expected {len(want['evals'])}")
            continue
        for i, (w, h) in enumerate(zip(want["evals"], have)):
            for key, value in w.items():
                if key == "stage":
                    ok = h[key] == value
                elif exact:
                    ok = h[key] == value
                elif key == "train_loss":
                    ok = math.isclose(h[key], value, rel_tol=LOSS_RTOL)
                else:
                    ok = abs(h[key] - value) <= ACC_TOL
                if not ok:
                    problems.append(f"{method} evaluation {i + 1} {key}: {h[key]!r}, expected {value!r}")
    return problems


def test_quick_runs_of_every_method_give_the_committed_numbers():
    golden = json.loads(GOLDEN.read_text())
    assert set(golden["runs"]) == set(BUILTIN_METHODS) and set(BUILTIN_METHODS) <= set(METHODS.names())
    exact = golden["machine"] == machine_kind()
    problems = differences(golden["runs"], all_numbers(), exact)
    assert not problems, f"{'bitwise' if exact else 'tolerance'} check failed:\n" + "\n".join(problems)


@pytest.mark.parametrize("exact", [True, False])
def test_the_comparison_catches_a_changed_number(exact):
    want = {"erm": {"evals": [{"stage": "erm", "train_loss": 1.0, "val_acc": 50.0}]}}
    assert not differences(want, want, exact)
    nudged = {"erm": {"evals": [{"stage": "erm", "train_loss": 1.0 + 1e-2, "val_acc": 50.0}]}}
    assert differences(want, nudged, exact)
    one_point_off = {"erm": {"evals": [{"stage": "erm", "train_loss": 1.0, "val_acc": 50.0 + 1e-9}]}}
    assert bool(differences(want, one_point_off, exact)) == exact


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({"machine": machine_kind(), "epochs": EPOCHS, "runs": all_numbers()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
