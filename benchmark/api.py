"""The Python API, for notebooks and scripts; the ``bench`` command is a shell over the same functions.

    import benchmark as bm

    ds = bm.load_dataset("digits-hetero", seed=0)      # a GroupDataset; ds.split("train") is a torch Dataset
    runs = bm.run(methods=["erm", "groupdro"], dataset="digits-hetero", seeds=[0, 1], epochs=3, out="results")
    board = bm.leaderboard("results", dataset="digits-hetero")
    bm.evaluate(ds, "test", predictions)               # any model's predicted classes -> wga, acc, per group
    method, data = bm.load_model("results/digits-hetero/erm/<run id>")   # a run trained with save_model=True

Every function validates its inputs the way the CLI does and raises :class:`~benchmark.core.errors.BenchError` with
the same one-line messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from benchmark.core.errors import BenchError, did_you_mean
from benchmark.core.registry import DATASETS
from benchmark.core.selection import SELECT_RULES
from benchmark.core.settings import check_choice
from benchmark.data import build_dataset
from benchmark.data.core import SPLITS, GroupDataset
from benchmark.plugins import load_plugins
from benchmark.report.files import dataset_boards, runs_frame
from benchmark.runs.events import Listener, ignore
from benchmark.runs.export import existing_results, read_runs
from benchmark.runs.store import iter_results
from benchmark.sweeps.options import REPORT, SweepConfig, takes_sweep_options
from benchmark.sweeps.plan import plan_sweep
from benchmark.sweeps.sweep import SweepOutcome, run_sweep, run_tuned_sweep
from benchmark.training.evaluation import prediction_metrics


def load_dataset(name: str, data_root: str | None = None, plugins: Sequence[str] = (), **options) -> GroupDataset:
    """The dataset ``name`` built with ``options`` over its defaults (``seed`` included), checked like
    ``--set data.*``; ``data_root`` for datasets read from files."""
    load_plugins(plugins)
    builder = DATASETS.get(name)
    unknown = sorted(set(options) - set(builder.option_defaults()))
    if unknown:
        known = ", ".join(builder.option_defaults())
        hint = did_you_mean(unknown[0], builder.option_defaults())
        raise BenchError(f"unknown option '{unknown[0]}' of dataset {name}; known: {known}{hint}")
    if builder.needs_data_root and data_root is None:
        raise BenchError(f"dataset {name} reads files: give data_root (--data-root PATH)")
    return build_dataset(name, {**builder.option_defaults(), **options}, data_root)


@takes_sweep_options()
def sweep(*, listener: Listener | None = None, **options) -> SweepOutcome:
    """Validate everything, then train methods × trials × seeds on one dataset, skipping finished runs; return
    every run's outcome (:class:`~benchmark.sweeps.sweep.SweepOutcome`). What ``bench run`` does before its report.
    Every option below is a keyword argument, checked as ``bench run`` checks its flag; ``listener`` receives the
    sweep's events (:mod:`benchmark.runs.events`: runs started, evaluated, finished).

    With ``tune_seeds``, two-phase tuning (:func:`~benchmark.sweeps.sweep.run_tuned_sweep`): the ``trials`` on the
    tuning seeds only, then each method's best trial under ``select`` on every one of ``seeds``. With ``stack`` > 1,
    up to that many runs that share the dataset and training budget train together in one process as one stacked
    model (:mod:`benchmark.training.stacking`: what a GPU needs to be busy; the numbers equal each run's alone up to
    floating-point reassociation)."""
    return sweep_config(SweepConfig.checked(**options), listener or ignore)


def sweep_config(config: SweepConfig, listener: Listener = ignore) -> SweepOutcome:
    """:func:`sweep` of an already checked configuration."""
    planned = plan_sweep(config)
    if config.tune_seeds is not None:
        return run_tuned_sweep(planned, config, listener)
    return run_sweep(planned, config, listener)


@takes_sweep_options(REPORT)
def run(*, report: bool = REPORT.default, listener: Listener | None = None, **options) -> pd.DataFrame:
    """Train as :func:`sweep` (the same keyword arguments as ``bench run``'s options) and return one row per run: the
    run's identity, ``status`` and ``error``, and for finished runs the columns of
    :func:`~benchmark.report.frames.runs_frame` (test and val metrics at the selected epoch, per-group accuracy,
    cost). With ``report`` the leaderboard files are written into ``out`` as ``bench run`` writes them
    (:func:`write_folder_reports`)."""
    config = SweepConfig.checked(**options)
    outcome = sweep_config(config, listener or ignore)
    if report:
        write_folder_reports(outcome, config.out, config.select)
    return outcome_frame(outcome, config.select)


def write_folder_reports(outcome: SweepOutcome, out: Path, select: str = "val-wga") -> dict:
    """The reports of the sweep's datasets into ``out/<dataset>/``, over every finished run of each dataset in
    ``out`` (earlier sweeps' runs too, so that a second sweep into a folder keeps the first one's methods on
    the leaderboard); returns the leaderboards by dataset."""
    from benchmark.report.files import write_reports

    datasets = dict.fromkeys(run.spec.dataset for run, _ in outcome.runs)
    found = [result for dataset in datasets for result in iter_results(out, dataset)]
    return write_reports(found, out, select=select)


def outcome_frame(outcome: SweepOutcome, select: str = "val-wga") -> pd.DataFrame:
    """One row per run of ``outcome``, in plan order (see :func:`run`)."""
    finished = runs_frame([r for r in outcome.results if r.get("status") == "ok"], select)
    by_id = {row["run_id"]: row for row in finished.to_dict("records")}
    rows = []
    for run, result in outcome.runs:
        spec = run.spec
        identity = {"dataset": spec.dataset, "method": spec.method, "seed": spec.seed, "trial": run.trial}
        status = {"run_id": spec.run_id, "status": result.get("status"), "error": result.get("error")}
        rows.append({**by_id.get(spec.run_id, {}), **identity, **status})
    return pd.DataFrame(rows)


def leaderboard(results: str | Path = "results", dataset: str | None = None, select: str = "val-wga") -> pd.DataFrame:
    """The leaderboard of every finished run under ``results``, a results folder or an export file (``bench export``;
    one dataset or all): one row per dataset and method, mean/std/CI over seeds of every metric, as
    ``leaderboard.csv``. Corrupt or copied runs are skipped (as by ``bench report``, which prints why)."""
    check_choice("--select", select, SELECT_RULES)
    boards = dataset_boards(list(read_runs(existing_results(results), dataset)), select)
    if not boards:
        raise BenchError(f"no finished runs under {results}" + (f" for dataset {dataset}" if dataset else ""))
    return pd.concat([board for _, board in boards.values()], ignore_index=True)


def evaluate(data: GroupDataset, split: str, predictions) -> dict:
    """Metrics of any model's predicted classes on ``split``, in the order of ``data.split(split)``: ``wga``,
    ``acc``, ``bga``, ``delta_acc``, ``mean_group_acc``, the dataset's extra metrics, ``groups`` (accuracy per
    group; None for a group absent from the split), the worst-class accuracy ``wca`` and ``classes`` (accuracy
    per class)."""
    check_choice("split", split, SPLITS)
    index = data.indices_cpu(split)
    predicted = torch.as_tensor(np.asarray(predictions)).reshape(-1)
    if len(predicted) != len(index):
        raise BenchError(f"{len(predicted)} predictions for the {len(index)} samples of split '{split}'")
    if predicted.dtype.is_floating_point or predicted.dtype == torch.bool:
        raise BenchError("predictions must be integer class indices (take argmax of logits first)")
    return prediction_metrics(data, index, predicted)


def load_model(run: str | Path, data_root: str | None = None, plugins: Sequence[str] = ()) -> tuple:
    """``(method, data)``: the method of a finished run that kept its model (``bench run --save-model``) with the
    weights of its selected epoch, in eval mode on CPU, and the dataset it trained on (rebuilt from the run's
    identity; ``data_root`` for datasets read from files). ``bm.evaluate(data, "test",
    bm.predict(method, data, "test"))`` gives the run's stored test metrics back."""
    from benchmark.runs.spec import RunSpec, TrainConfig
    from benchmark.runs.store import read_result
    from benchmark.training.setup import build_method

    folder = Path(run)
    result = read_result(folder)
    if result is None or result.get("status") != "ok":
        raise BenchError(f"no finished run in {folder}")
    weights = folder / result.get("model_file", "model.pt")
    if not weights.is_file():
        raise BenchError(f"run {folder} kept no model: train it with --save-model (save_model=True)")
    load_plugins(plugins)
    fingerprint = result.get("data_fingerprint")
    if fingerprint is not None and DATASETS.get(result["dataset"]).fingerprint(data_root) != fingerprint:
        raise BenchError(f"the files under {data_root} are not the data run {folder.name} trained on")
    identity = [result[key] for key in ("dataset", "data_options", "method", "hparams", "seed")]
    spec = RunSpec(*identity, TrainConfig(**result["train"]), fingerprint)
    data = build_dataset(spec.dataset, spec.data_options, data_root)
    method = build_method(spec, data)
    method.load_state_dict(torch.load(weights, map_location="cpu"))
    return method.eval(), data


def predict(method, data: GroupDataset, split: str) -> torch.Tensor:
    """The method's predicted class of every sample of ``split``, in the order :func:`evaluate` expects."""
    from benchmark.training.evaluation import predicted_classes

    check_choice("split", split, SPLITS)
    return predicted_classes(method, data, split)
