"""Sweeps of methods × trials × seeds: run specs, and the single-run function every launcher calls.

The runner knows nothing of losses: it builds :class:`RunSpec` objects, finds the runs still to do, and
:func:`execute_run` trains one run and writes its files. Launchers (:mod:`benchmark.launchers`) decide where.
"""

from __future__ import annotations

import dataclasses
import traceback
from pathlib import Path

from benchmark.config import RunSpec, TrainConfig, apply_sets, check_train, split_sets, train_config
from benchmark.data import build_dataset
from benchmark.errors import BenchError
from benchmark.hparams import trial_values
from benchmark.plugins import load_plugins
from benchmark.registry import DATASETS, METHODS
from benchmark.store import RunLog, check_run_paths, check_writable, read_result, write_json_atomic
from benchmark.trainer import build_method, resolve_device, run_settings, train


class Progress:
    """Callbacks a sweep reports to; the base class is silent."""

    def begin(self, total: int, parallel: int) -> None:
        """The sweep has ``total`` runs (finished ones included) and trains up to ``parallel`` at a time."""

    def start(self, spec: RunSpec) -> None: ...

    def evaluated(self, spec: RunSpec, record: dict) -> None: ...

    def finished(self, spec: RunSpec, result: dict, skipped: bool) -> None: ...

    def note(self, text: str) -> None:
        """A message about the sweep as a whole (e.g. waiting for another sweep's runs)."""


def error_line(exc: BaseException) -> str:
    """One line for a failure record: ``Type: first line of the message``; an exception re-raised from a
    DataLoader worker (whose message carries the worker's whole traceback) becomes its last line and the worker."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Original Traceback" in text and len(lines) > 2:
        return f"{lines[-1]} (in {lines[0].split(' in ', 1)[-1].rstrip('.')})"
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def failure(exc: BaseException) -> dict:
    """A failed run's record: the one-line error and the traceback of where it was raised."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return {"status": "failed", "error": error_line(exc), "traceback": frames + error_line(exc)}


def unstored(result: dict, path: Path, exc: OSError) -> dict:
    """``result`` as a failed run that could not be written to ``path`` (a full disk, say)."""
    error = f"could not write {path}: {exc.strerror or exc}"
    return {**result, "status": "failed", "error": error, "unstored": True}


def execute_run(spec: RunSpec, out: Path, progress: Progress | None = None) -> dict:
    """Train one run and write config.json, log.jsonl and (last, atomically) result.json; return the result.

    Any exception inside the run, and a ``SystemExit`` from a plugin, is recorded as ``status: failed`` with a
    one-line error, so that the sweep goes on; a file that cannot be written (a full disk) fails the run without
    raising (``unstored``: the result is returned, not on disk). An interrupt (KeyboardInterrupt, a kill) leaves
    no result.json, so the run is redone next time.
    """
    progress = progress or Progress()
    directory = spec.directory(out)
    header = spec.header()
    try:
        write_json_atomic(directory / "config.json", {**header, "device": spec.device, "data_root": spec.data_root})
        log = RunLog(directory / "log.jsonl")
    except OSError as exc:
        return unstored({**header, "status": "failed"}, directory, exc)

    def on_eval(record: dict) -> None:
        log(record)
        progress.evaluated(spec, record)

    try:
        load_plugins(spec.plugins)
        data = build_dataset(spec.dataset, spec.data_options, spec.data_root)
        result = {"status": "ok", **train(spec, data, on_eval)}
    except SystemExit as exc:  # a plugin calling sys.exit must not end the sweep
        result = {**failure(exc), "error": f"the run called sys.exit({exc.code!r})"}
    except Exception as exc:  # recorded, so that the sweep goes on
        result = failure(exc)
    finally:
        log.close()
    result = {**header, **result, **({"log_error": log.error} if log.error else {})}
    try:
        write_json_atomic(directory / "result.json", result)
    except OSError as exc:
        return unstored(result, directory / "result.json", exc)
    return result


def record_crash(spec: RunSpec, out: Path, reason: str) -> dict:
    """The run's result after its process died: the result.json it managed to write, or a failed one (written
    if the disk allows)."""
    result = read_result(spec.directory(out))
    if result is None:
        result = {**spec.header(), "status": "failed", "error": reason}
        try:
            write_json_atomic(spec.directory(out) / "result.json", result)
        except OSError as exc:
            result = unstored(result, spec.directory(out) / "result.json", exc)
    return result


def stored_result(spec: RunSpec, out: Path, retry_failed: bool = False) -> dict | None:
    """The stored result of a finished run (failed runs count as finished unless ``retry_failed``), else None."""
    result = read_result(spec.directory(out))
    if result is None or (retry_failed and result.get("status") != "ok"):
        return None
    return result


def unique_runs(specs: list[RunSpec]) -> list[RunSpec]:
    """``specs`` without repeated runs (trials that drew the same hparams), in order."""
    return list({spec.run_id: spec for spec in specs}.values())


def runs_to_do(specs: list[RunSpec], out: Path, force: bool = False, retry_failed: bool = False) -> list[RunSpec]:
    """The specs without a stored result (all of them with ``force``), in order, each once."""
    return [spec for spec in unique_runs(specs) if force or stored_result(spec, out, retry_failed) is None]


def preflight(pending: list[RunSpec], out: Path | None = None) -> None:
    """Before anything trains, if anything will: build the sweep's dataset (cached for in-process runs), check
    that ``out`` and every run's folder can be written, and set up each distinct configuration once on CPU
    (model and method: a constructor that cannot be called, stages that do not fit the budget, missing
    pretrained weights), so that each of these is one BenchError rather than failed runs."""
    if not pending:
        return
    data = build_dataset(pending[0].dataset, pending[0].data_options, pending[0].data_root)
    if out is not None:
        check_writable(out)
        for spec in pending:
            check_run_paths(spec.directory(out))
    for spec in {spec.config_id: spec for spec in pending}.values():
        try:
            with run_settings(spec):
                build_method(spec, data)
        except BenchError:
            raise
        except Exception as exc:
            raise BenchError(f"method {spec.method} cannot be set up with these settings: {error_line(exc)}") from None


def dataset_options(dataset: str, sets: dict[str, str], data_root: str | None) -> dict:
    """The dataset's resolved options (``data.*`` keys of ``sets`` over its defaults), validated."""
    builder = DATASETS.get(dataset)
    if builder.needs_data_root and data_root is None:
        raise BenchError(f"dataset {dataset} reads files: give --data-root PATH")
    return builder.check_options(apply_sets("data", builder.option_defaults(), sets))


def plan_sweep(
    methods: list[str],
    dataset: str,
    seeds: list[int],
    epochs: int | None = None,
    select: str = "val-wga",
    device: str = "auto",
    plugins: tuple[str, ...] = (),
    sets: list[str] = (),
    data_root: str | None = None,
    trials: int = 1,
    threads: int = 1,
    deterministic: bool = False,
) -> list[RunSpec]:
    """Validate every name and ``--set`` value, then return the runs of methods × trials × seeds (nothing is
    written).

    ``methods`` may be ``["all"]`` (every registered method, plugins included). ``--set`` keys are
    ``train.*``, ``data.*`` or ``<method>.*`` for a method in the sweep; they are fixed in every trial, while
    trials 1.. draw the method's other ``space`` entries (trial 0 is the defaults). ``threads`` and
    ``deterministic``: how each run executes (see :class:`RunSpec`).
    """
    plugins = load_plugins(plugins)
    names = METHODS.names() if methods == ["all"] else [METHODS.get(m).name for m in methods]
    parsed = split_sets(list(sets))
    data_options = dataset_options(dataset, parsed, data_root)
    for key in parsed:
        section = key.partition(".")[0]
        if section in METHODS and section not in names:
            raise BenchError(f"--set {key}: method '{section}' is not among --methods ({', '.join(names)})")
        if section not in ("train", "data", *names):
            raise BenchError(f"unknown setting '{key}'; sections: train, data, {', '.join(names)}")
    config = train_config(parsed, DATASETS.get(dataset).train_defaults, epochs)
    fingerprint = DATASETS.get(dataset).fingerprint(data_root)
    resolve_device(device)
    specs = []
    for name in names:
        cls = METHODS.get(name)
        fixed = {key.partition(".")[2] for key in parsed if key.startswith(f"{name}.")}
        fixed |= {key for key in parsed if key.startswith("train.")}
        base = apply_sets(name, cls.defaults(), parsed)
        family = ""
        for trial in range(trials):
            drawn = trial_values(name, cls.space, trial, fixed)
            hparams = cls.check_hparams({**base, **{k: v for k, v in drawn.items() if not k.startswith("train.")}})
            drawn_train = {k[6:]: v for k, v in drawn.items() if k.startswith("train.")}
            train = TrainConfig(**check_train({**config.to_dict(), **drawn_train}))
            runs = [
                RunSpec(dataset, data_options, name, hparams, seed, train, select, device, data_root, plugins, trial)
                for seed in seeds
            ]
            family = family or runs[0].config_id
            how = dict(family_id=family, threads=threads, deterministic=deterministic, data_fingerprint=fingerprint)
            specs += [dataclasses.replace(spec, **how) for spec in runs]
    return specs
