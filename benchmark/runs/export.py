"""A sweep as one file: every run of a results folder as a row of one compressed Parquet file (``bench export``), read
back exactly as the folder reads (``bench report --results sweep.parquet``, ``bm.leaderboard``), and restored into a
folder a sweep resumes from (``bench import``).

A row holds the run's identity (``run_id``, ``config_id``, ``family_id``, ``dataset``, ``method``, ``trial``,
``seed``, ``status``), its settings as JSON text (``hparams``, ``train``, ``data_options``), the selection rule and
selected evaluation (``select``, ``selected_epoch``), the metrics there as columns (``val_<metric>``,
``test_<metric>``, ``test_group:<group>``, ``test_class:<class>``), the per-evaluation ``history`` and the
``environment`` as JSON text, and the run's files whole (``result``: its result.json, ``log``: its log.jsonl,
``config``: its config.json), from which reading and importing rebuild the run exactly. Exports of disjoint sweeps
merge by concatenating their rows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pandas as pd

from benchmark.core.errors import BenchError, one_line
from benchmark.runs.store import SCHEMA_VERSION, iter_results, result_problem, run_dir, write_json_atomic

EXPORT_SUFFIX = ".parquet"
IDENTITY = ("run_id", "config_id", "family_id", "dataset", "method", "trial", "seed", "status")
AS_JSON = ("hparams", "train", "data_options", "history", "environment")
PER_NAME = {"groups": "group", "classes": "class"}


def is_export(path: Path) -> bool:
    """Whether ``path`` names an export file rather than a results folder."""
    return Path(path).suffix == EXPORT_SUFFIX


def metric_columns(result: dict) -> dict:
    """The run's val and test metrics at its selected evaluation as flat columns (module docstring)."""
    columns = {}
    for split in ("val", "test"):
        for name, value in (result.get(split) or {}).items():
            if name in PER_NAME:
                columns |= {f"{split}_{PER_NAME[name]}:{key}": v for key, v in value.items()}
            else:
                columns[f"{split}_{name}"] = value
    return columns


def export_row(result: dict, folder: Path) -> dict:
    """One run's row: identity, settings, selection, metrics, history, environment and its files whole."""
    row = {key: result.get(key) for key in IDENTITY}
    row |= {key: json.dumps(result.get(key)) for key in AS_JSON}
    row |= {"select": result.get("select"), "selected_epoch": result.get("selected_epoch"), **metric_columns(result)}
    files = {name: folder / f"{name}.{ext}" for name, ext in (("log", "jsonl"), ("config", "json"))}
    row |= {name: path.read_text() if path.is_file() else None for name, path in files.items()}
    row["result"] = json.dumps(result)
    return row


def export_results(results: Path, out: Path, warn=lambda message: None) -> int:
    """Write every run under the folder ``results`` (finished or failed; corrupt runs and copies are skipped with a
    ``warn``, as :func:`~benchmark.runs.store.iter_results` skips them) to the Parquet file ``out``, atomically;
    returns the number of runs."""
    if not is_export(out):
        raise BenchError(f"bad --out {out}: give a {EXPORT_SUFFIX} file")
    results = Path(results)
    if not results.is_dir():
        raise BenchError(f"results folder not found: {results}")
    rows = [
        export_row(result, run_dir(results, result["dataset"], result["method"], result["run_id"]))
        for result in iter_results(results, warn=warn)
    ]
    if not rows:
        raise BenchError(f"no runs under {results} to export")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    pd.DataFrame(rows).to_parquet(partial, compression="zstd", index=False)
    os.replace(partial, out)
    return len(rows)


def read_rows(path: Path) -> pd.DataFrame:
    """The rows of an export file; one BenchError for a missing or unreadable file or one without runs' files."""
    if not Path(path).is_file():
        raise BenchError(f"export file not found: {path}")
    try:
        rows = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types; the first line names the fault
        raise BenchError(f"{path} is not a readable export: {one_line(exc)}") from None
    missing = [column for column in ("run_id", "dataset", "result") if column not in rows]
    if missing:
        raise BenchError(f"{path} is not an export of this suite: no column {', '.join(missing)}")
    return rows


def read_export(path: Path, datasets: list[str] | None = None, warn=lambda message: None) -> Iterator[dict]:
    """Each run of the export ``path`` (only ``datasets`` when given) as its result.json reads, in the folder's order
    (dataset, method, run id), each run id once; a row whose result has the wrong shape or an older schema is
    skipped with a ``warn``."""
    rows = read_rows(path)
    if datasets:
        rows = rows[rows["dataset"].isin(datasets)]
    rows = rows.sort_values(["dataset", "method", "run_id"], kind="stable")
    seen = set()
    for text in rows["result"]:
        result = json.loads(text)
        problem = result_problem(result) or (
            None if result.get("schema") == SCHEMA_VERSION else "written by an older version"
        )
        if problem:
            warn(f"skipped a run of {path}: {problem}")
        elif result["run_id"] in seen:
            warn(f"skipped a second copy of run {result['run_id']} in {path}")
        else:
            seen.add(result["run_id"])
            yield result


def import_export(path: Path, out: Path) -> tuple[int, int]:
    """Restore the runs of the export ``path`` as run folders under ``out`` (result.json written last, atomically, so
    a sweep into ``out`` skips them); a run already there is left as it is. Returns (restored, already there)."""
    rows = read_rows(path)
    restored = kept = 0
    for row in rows.itertuples(index=False):
        result = json.loads(row.result)
        if result_problem(result):
            raise BenchError(f"{path}: run {row.run_id} has a malformed result ({result_problem(result)})")
        folder = run_dir(out, result["dataset"], result["method"], result["run_id"])
        if (folder / "result.json").is_file():
            kept += 1
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (("config.json", getattr(row, "config", None)), ("log.jsonl", getattr(row, "log", None))):
            if isinstance(text, str):
                (folder / name).write_text(text)
        write_json_atomic(folder / "result.json", result)
        restored += 1
    return restored, kept


def existing_results(results) -> Path:
    """``results`` as a path, after checking that the results folder, or the export file it names, exists."""
    results = Path(results)
    exported = is_export(results)
    if not (results.is_file() if exported else results.is_dir()):
        raise BenchError(f"results {'file' if exported else 'folder'} not found: {results}")
    return results


def read_runs(results: Path, dataset: str | None = None, warn=lambda message: None) -> Iterator[dict]:
    """Every run of a results folder (:func:`~benchmark.runs.store.iter_results`) or of an export file
    (:func:`read_export`), read alike: optionally only ``dataset`` (one name or several, comma-separated)."""
    if is_export(results):
        return read_export(Path(results), dataset.split(",") if dataset else None, warn)
    return iter_results(Path(results), dataset, warn)
