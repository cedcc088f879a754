"""The trainer: selection rules, logging, non-finite losses, seeding."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import toy_dataset

from benchmark.core.registry import METHODS, register_method
from benchmark.core.selection import selected
from benchmark.methods.base import Method
from benchmark.runs.events import ignore
from benchmark.runs.spec import Execution, Run, RunSpec, TrainConfig
from benchmark.runs.state import runs_to_do, stored_result
from benchmark.sweeps.execute import execute_run
from benchmark.sweeps.launchers import run_in_process
from benchmark.training.engine import train
from benchmark.training.execution import run_settings
from benchmark.training.run_training import NonFiniteLoss

if "test-nan-after-3" not in METHODS:

    @register_method("test-nan-after-3")
    class NanAfterThree(Method):
        """ERM whose loss turns NaN at its fourth step."""

        def __init__(self, model, info):
            super().__init__(model, info)
            self.steps = 0

        def loss(self, data, batch):
            self.steps += 1
            loss = torch.nn.functional.cross_entropy(self.model(data, batch), batch.y)
            return (loss * float("nan") if self.steps > 3 else loss), {}


def job(method="erm", epochs=4, seed=0, **hparams) -> RunSpec:
    return RunSpec("toy", {}, method, hparams, seed, TrainConfig(epochs=epochs, batch_size=8))


def test_selection_rules_pick_the_best_logged_epoch():
    data = toy_dataset()
    rules = {"val-wga": ("val", "wga", "acc"), "val-acc": ("val", "acc", "wga"), "oracle": ("test", "wga", "acc")}
    for rule, (split, metric, tie_break) in rules.items():
        records = []
        result = selected(train(job(epochs=6), data, records.append), rule)
        assert [r["epoch"] for r in records] == list(range(1, 7))
        best = max(records, key=lambda r: (r[split][metric], r[split][tie_break]))  # first of equal scores
        assert result["selected_epoch"] == best["epoch"]
        assert result["test"] == best["test"] and result["select"] == rule
        assert result["steps"] == records[-1]["step"] == 6 * 6  # 42 training samples, batch 8


def test_same_seed_same_numbers_other_seed_other_numbers():
    data = toy_dataset()
    a, b, c = (train(job(seed=s), data) for s in (1, 1, 2))
    assert a["history"] == b["history"]
    logs = lambda s: [r["train_loss"] for r in train_log(data, s)]  # noqa: E731
    assert logs(1) == logs(1) != logs(2)


def train_log(data, seed):
    records = []
    train(job(seed=seed), data, records.append)
    return records


def test_training_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    train(job(epochs=1), toy_dataset())
    assert torch.equal(state, torch.get_rng_state())


def test_history_holds_every_final_stage_evaluation():
    records = []
    result = train(job(epochs=3), toy_dataset(), records.append)
    assert result["history"] == [{key: r[key] for key in ("epoch", "val", "test", "live_units")} for r in records]


def test_non_finite_loss_raises_with_the_step():
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step 4 "):
        train(job("test-nan-after-3"), toy_dataset())


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import benchmark.sweeps.execute as runner

    monkeypatch.setattr(runner, "build_dataset", lambda *args: toy_dataset())
    config = TrainConfig(epochs=2, batch_size=8)
    specs = [Run(RunSpec("toy", {}, m, {}, 0, config)) for m in ("test-nan-after-3", "erm")]
    run_in_process([[spec] for spec in specs], tmp_path, ignore)
    failed, ok = (stored_result(spec, tmp_path) for spec in specs)
    assert failed["status"] == "failed" and "non-finite loss at step 4" in failed["error"]
    assert ok["status"] == "ok"
    # a failed run is kept (listed, not retried) unless retry_failed; finished ones are never redone
    assert runs_to_do(specs, tmp_path) == []
    assert runs_to_do(specs, tmp_path, retry_failed=True) == specs[:1]
    assert runs_to_do(specs, tmp_path, force=True) == specs


def test_interrupted_run_leaves_no_result(tmp_path, monkeypatch):
    import benchmark.sweeps.execute as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "build_dataset", lambda *args: toy_dataset())
    monkeypatch.setattr(runner, "train", interrupted)
    spec = Run(RunSpec("toy", {}, "erm", {}, 0, TrainConfig(epochs=1)))
    with pytest.raises(KeyboardInterrupt):
        execute_run(spec, tmp_path)
    assert (spec.directory(tmp_path) / "config.json").exists()
    assert not (spec.directory(tmp_path) / "result.json").exists()


def test_a_rerun_removes_what_a_killed_attempt_left_half_written(tmp_path, monkeypatch):
    """A SIGKILL between a temp file's creation and its rename leaves the temp file; the run's next attempt
    deletes it (claim temp files belong to contenders and stay)."""
    import benchmark.sweeps.execute as runner

    monkeypatch.setattr(runner, "build_dataset", lambda *args: toy_dataset())
    spec = Run(RunSpec("toy", {}, "erm", {}, 0, TrainConfig(epochs=1, batch_size=8)))
    directory = spec.directory(tmp_path)
    directory.mkdir(parents=True)
    for name in (".result.json.k1ll3d.tmp", ".config.json.x.tmp", "model.pt.tmp", ".claim.contender.tmp"):
        (directory / name).write_text("partial")
    assert execute_run(spec, tmp_path)["status"] == "ok"
    assert sorted(p.name for p in directory.glob("*.tmp")) == [".claim.contender.tmp"]
    assert (directory / "result.json").is_file()


def test_run_settings_touch_determinism_only_when_the_run_asks(monkeypatch):
    calls = []
    real = torch.use_deterministic_algorithms
    fake = lambda mode, **kw: (calls.append(mode), real(mode, **kw))  # noqa: E731
    monkeypatch.setattr(torch, "use_deterministic_algorithms", fake)
    with run_settings(Execution(threads=1)):
        pass
    assert calls == []  # setting it imports torch's compiler: a sweep's checks would pay for it
    with run_settings(Execution(threads=1, deterministic=True)):
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert calls == [True, False] and not torch.are_deterministic_algorithms_enabled()


def test_cuda_runs_are_deterministic_by_default_and_record_what_was_not(monkeypatch):
    """The default (``deterministic`` None) turns deterministic algorithms on for CUDA runs in warn-only mode: an
    operation without a deterministic implementation (``put_`` has none, on any device) is recorded, not fatal;
    other warnings still show. On CPU the default leaves them off; True makes such an operation an error."""
    import benchmark.training.execution as trainer

    def nondeterministic_step():
        torch.zeros(3).put_(torch.tensor([0, 0]), torch.ones(2))

    with run_settings(Execution(device="cpu")) as settings:
        assert not torch.are_deterministic_algorithms_enabled()
        nondeterministic_step()
    assert settings.determinism() == {"deterministic": False}
    monkeypatch.setattr(trainer, "resolve_device", lambda name: torch.device("cuda"))  # as a CUDA run would
    with pytest.warns(UserWarning, match="^something else$"):
        with run_settings(Execution(device="cuda")) as settings:
            assert torch.are_deterministic_algorithms_enabled()
            assert settings.determinism() == {"deterministic": True}
            nondeterministic_step()
            nondeterministic_step()
            warnings.warn("something else", stacklevel=1)
            assert settings.determinism() == {"deterministic": False, "nondeterministic_ops": ["put_"]}
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="put_ does not have a deterministic implementation"):
        with run_settings(Execution(device="cpu", deterministic=True)):
            nondeterministic_step()
