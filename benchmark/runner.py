"""Sweeps of methods × seeds: run specs, the single-run function, and the local launcher.

The runner knows nothing of losses: it builds :class:`RunSpec` objects, skips finished runs, and calls
:func:`execute_run`, which trains one run and writes its files.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from benchmark.config import RunSpec, apply_sets, split_sets, train_config
from benchmark.data import build_dataset
from benchmark.errors import BenchError
from benchmark.registry import DATASETS, METHODS, load_builtins, load_plugin
from benchmark.store import RunLog, read_result, write_json_atomic
from benchmark.trainer import resolve_device, train


class Progress:
    """Callbacks a sweep reports to; the base class is silent."""

    def start(self, spec: RunSpec) -> None: ...

    def evaluated(self, spec: RunSpec, record: dict) -> None: ...

    def finished(self, spec: RunSpec, result: dict, skipped: bool) -> None: ...


def execute_run(spec: RunSpec, out: Path, progress: Progress | None = None) -> dict:
    """Train one run and write config.json, log.jsonl and (last, atomically) result.json.

    Any exception inside the run is recorded as ``status: failed`` with its message; an interrupt
    (KeyboardInterrupt, a kill) leaves no result.json, so the run is redone next time.
    """
    progress = progress or Progress()
    directory = spec.directory(out)
    header = {"run_id": spec.run_id, "config_id": spec.config_id, **spec.identity()}
    write_json_atomic(directory / "config.json", {**header, "device": spec.device, "data_root": spec.data_root})
    log = RunLog(directory / "log.jsonl")

    def on_eval(record: dict) -> None:
        log(record)
        progress.evaluated(spec, record)

    try:
        for plugin in spec.plugins:
            load_plugin(plugin)
        data = build_dataset(spec.dataset, spec.data_options, spec.data_root)
        result = {"status": "ok", **train(spec, data, on_eval)}
    except Exception as exc:  # recorded, so that the sweep goes on
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        log.close()
    result = {**header, **result}
    write_json_atomic(directory / "result.json", result)
    return result


def finished_result(spec: RunSpec, out: Path) -> dict | None:
    """The stored result of a successfully finished run, else None (failed runs are retried)."""
    result = read_result(spec.directory(out))
    return result if result is not None and result.get("status") == "ok" else None


def build_before_running(specs: list[RunSpec], out: Path, force: bool = False) -> None:
    """Build the sweep's dataset (cached for the runs) if any run will train, so that a missing or
    malformed data file is an input error before anything is written, not a failed run."""
    pending = [spec for spec in specs if force or finished_result(spec, out) is None]
    if pending:
        build_dataset(pending[0].dataset, pending[0].data_options, pending[0].data_root)


def run_local(specs: list[RunSpec], out: Path, force: bool = False, progress: Progress | None = None) -> list[dict]:
    """Run specs one after another in this process, skipping finished ones unless ``force``."""
    progress = progress or Progress()
    results = []
    for spec in specs:
        done = None if force else finished_result(spec, out)
        if done is not None:
            progress.finished(spec, done, skipped=True)
            results.append(done)
            continue
        progress.start(spec)
        result = execute_run(spec, out, progress)
        progress.finished(spec, result, skipped=False)
        results.append(result)
    return results


def load_plugins(plugins: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Import the built-ins, installed entry points and ``plugins``; return the plugins with file paths
    made absolute, so that worker processes can load them too."""
    load_builtins()
    plugins = tuple(str(Path(p).resolve()) if p.endswith(".py") else p for p in plugins)
    for plugin in plugins:
        load_plugin(plugin)
    return plugins


def dataset_options(dataset: str, sets: dict[str, str], data_root: str | None) -> dict:
    """The dataset's resolved options (``data.*`` keys of ``sets`` over its defaults), validated."""
    builder = DATASETS.get(dataset)
    if builder.needs_data_root and data_root is None:
        raise BenchError(f"dataset {dataset} reads files: give --data-root PATH")
    return apply_sets("data", builder.option_defaults(), sets, builder.choices)


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
) -> list[RunSpec]:
    """Validate every name and ``--set`` value, then return the runs of methods × seeds (nothing is written).

    ``methods`` may be ``["all"]`` (every registered method, plugins included). ``--set`` keys are
    ``train.*``, ``data.*`` or ``<method>.*`` for a method in the sweep.
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
    hparams = {}
    for name in names:
        cls = METHODS.get(name)
        hparams[name] = apply_sets(name, cls.defaults(), parsed, cls.choices)
        try:
            cls.check_hparams(hparams[name])
        except ValueError as exc:
            raise BenchError(f"bad value: {exc}") from None
    resolve_device(device)
    return [
        RunSpec(dataset, data_options, name, hparams[name], seed, config, select, device, data_root, plugins)
        for name in names
        for seed in seeds
    ]
