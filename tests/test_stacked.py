"""Stacked training (benchmark.training.stacking): runs trained together as one stacked model give each run's numbers
alone, update each row as its own optimiser would, and fail one run without stopping the others."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import BUILTIN_METHODS, SMALL_HETERO, bench_in_process, small_hetero_options, toy_dataset
from test_trainer import NanAfterThree  # registers test-nan-after-3: NaN from its fourth step

from benchmark.core.registry import METHODS, register_method
from benchmark.data import build_dataset
from benchmark.runs.spec import Execution, Run, RunSpec, TrainConfig
from benchmark.sweeps.placement import stack_tasks
from benchmark.training.engine import train
from benchmark.training.run_training import NonFiniteLoss
from benchmark.training.stacking import stack_problem, train_stacked

EPOCHS = 4  # every built-in method's stages fit
LOSS_RTOL = 1e-4  # measured: at most 4e-6 relative between a run stacked and alone, over 4 epochs of all methods
ACC_TOL = 0.5  # points: one val or test sample of a 200-sample group; measured: every accuracy equal

if "test-raise-at-5" not in METHODS:

    @register_method("test-raise-at-5")
    class RaiseAtFive(NanAfterThree):
        """ERM whose loss raises at its fifth step (it counts steps as test-nan-after-3 does)."""

        def loss(self, data, batch):
            self.steps += 1
            if self.steps == 5:
                raise RuntimeError("broken at step 5")
            return torch.nn.functional.cross_entropy(self.model(data, batch), batch.y), {}

    @register_method("test-alone")
    class Alone(RaiseAtFive):
        """A method that asks to train one run at a time."""

        stackable = False


@pytest.fixture(scope="module")
def small():
    return build_dataset("digits-hetero", small_hetero_options())


def spec(method: str, seed: int = 0, dataset: str = "digits-hetero", **train) -> RunSpec:
    options = small_hetero_options() if dataset == "digits-hetero" else {}
    config = TrainConfig(**{"epochs": EPOCHS, **({} if dataset == "digits-hetero" else {"batch_size": 8}), **train})
    return RunSpec(dataset, options, method, {}, seed, config)


def alone(run_spec: RunSpec, data) -> list[dict]:
    records = []
    train(run_spec, data, records.append, Execution(device="cpu"))
    return records


def together(specs: list[RunSpec], data) -> tuple[list[list[dict]], dict]:
    records, outcomes = [[] for _ in specs], {}
    train_stacked(specs, data, [r.append for r in records], outcomes.__setitem__, Execution(device="cpu"))
    return records, outcomes


def assert_close(stacked: list[dict], single: list[dict]) -> None:
    assert [r["stage"] for r in stacked] == [r["stage"] for r in single]
    for a, b in zip(stacked, single):
        assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=LOSS_RTOL), (a["epoch"], a["train_loss"])
        for split in ("val", "test"):
            for metric in ("acc", "wga"):
                assert abs(a[split][metric] - b[split][metric]) <= ACC_TOL, (a["epoch"], split, metric)


def test_every_builtin_method_stacked_gives_its_numbers_alone(small):
    specs = [spec(m) for m in BUILTIN_METHODS] + [spec("erm", seed=1, lr=3e-3, weight_decay=1e-3)]
    records, outcomes = together(specs, small)
    assert sorted(outcomes) == list(range(len(specs)))
    for run_spec, stacked in zip(specs, records):
        assert_close(stacked, alone(run_spec, small))
    first = outcomes[0]
    steps = EPOCHS * -(-len(small.indices_cpu("train")) // 100)
    assert first["stacked_runs"] == len(specs) and first["steps"] == steps
    assert [s["name"] for s in outcomes[BUILTIN_METHODS.index("jtt")]["stages"]] == ["identify", "upweighted"]


def test_sgd_runs_stack_too(small):
    specs = [spec("erm", seed=s, optimizer="sgd", lr=0.05, weight_decay=1e-3 * s, epochs=2) for s in (0, 1)]
    records, _ = together(specs, small)
    for run_spec, stacked in zip(specs, records):
        assert_close(stacked, alone(run_spec, small))


def test_a_failing_run_stops_alone_and_the_others_keep_their_numbers():
    """On the toy set (batches of 8) a feature space is often absent from a batch: the stacked run's optimiser must
    skip that encoder as the run alone does (a gradient of zeros instead would move it by Adam's momentum)."""
    data = toy_dataset()
    specs = [spec(method, dataset="toy") for method in ("erm", "test-nan-after-3", "test-raise-at-5")]
    records, outcomes = together(specs, data)
    assert isinstance(outcomes[1], NonFiniteLoss) and "non-finite loss at step 4 " in str(outcomes[1])
    assert isinstance(outcomes[2], RuntimeError) and "broken at step 5" in str(outcomes[2])
    assert records[1] == [] and len(records[2]) == 0  # both stop in the first epoch (6 steps)
    assert_close(records[0], alone(specs[0], data))


def run(method: str, seed: int = 0, **train) -> Run:
    return Run(spec(method, seed, **train))


def test_stack_tasks_group_runs_that_may_train_together():
    runs = [run("erm", s) for s in range(3)] + [run("groupdro", 0), run("erm", 0, epochs=2), run("test-alone", 0)]
    runs.append(run("erm", 5, lr=5e-3))  # lr and weight decay may differ within a stack
    tasks = stack_tasks(runs, 2)
    names = [[(r.spec.method, r.spec.seed, r.spec.train.epochs) for r in task] for task in tasks]
    assert names == [
        [("erm", 0, 4), ("erm", 1, 4)],
        [("erm", 2, 4), ("groupdro", 0, 4)],
        [("erm", 0, 2)],
        [("test-alone", 0, 4)],
        [("erm", 5, 4)],
    ]
    assert stack_tasks(runs, 1) == [[r] for r in runs]


def test_stack_problem_names_what_keeps_runs_apart(small):
    assert stack_problem(small, [spec("erm"), spec("jm1", seed=3, lr=1e-2)]) is None
    assert "training settings" in stack_problem(small, [spec("erm"), spec("erm", epochs=2)])
    assert "one run at a time" in stack_problem(small, [spec("erm"), spec("test-alone")])
    assert "train.compile" in stack_problem(small, [spec("erm", compile="aot_eager")])


def test_runs_rejected_for_stacking_train_alone_with_their_numbers(small):
    specs = [spec("erm", epochs=2), spec("erm", epochs=3)]
    records, outcomes = together(specs, small)
    assert [outcomes[i]["stacked_runs"] for i in (0, 1)] == [1, 1]
    timing = ("time_s", "train_s")
    for run_spec, stacked in zip(specs, records):
        drop = lambda records: [{k: v for k, v in r.items() if k not in timing} for r in records]  # noqa: E731
        assert drop(stacked) == drop(alone(run_spec, small))  # bitwise: the one-run trainer


def test_bench_run_stack_writes_every_run_and_resumes(tmp_path):
    args = ["run", "--methods", "erm,groupdro", "--seeds", "0,1", *SMALL_HETERO, "--out", str(tmp_path), "--no-report"]
    first = bench_in_process(*args, "--stack", "3", "--workers", "1")
    assert first.returncode == 0, first.stderr
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("digits-hetero/*/*/result.json"))]
    assert sorted(r["stacked_runs"] for r in results) == [1, 3, 3, 3] and all(r["status"] == "ok" for r in results)
    again = bench_in_process(*args, "--stack", "3", "--workers", "1")
    assert again.returncode == 0 and "finished" not in again.stdout  # nothing left to train
    bad = bench_in_process(*args, "--stack", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: bad --stack 0: must be between 1 and 1024"


def test_the_stack_encodes_every_runs_batches_in_one_call(small, monkeypatch):
    """In training and evaluation alike a stacked run's own encoders are never called: the stack's vmapped call of
    the template (the first run's encoders) encodes for every run, and each run's loss and evaluation read the
    latents computed for its batches."""
    import benchmark.training.engine as engine

    calls = []

    class Recording(engine.RunTraining):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.spec.seed == 1:  # the second run: not the template
                for encoder in self.method.model.encoders:
                    encoder.register_forward_hook(lambda module, inputs, output: calls.append(len(output)))

    monkeypatch.setattr(engine, "RunTraining", Recording)
    records, outcomes = together([spec("erm", seed=s, epochs=2) for s in (0, 1)], small)
    assert outcomes[1]["stacked_runs"] == 2 and len(records[1]) == 2
    assert calls == []
