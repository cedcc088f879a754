"""Results on disk: ``<out>/<dataset>/<method>/<run-id>/`` with config.json, log.jsonl and result.json.

``result.json`` is written last and atomically (temp file + rename): it is the done marker. Any number of
workers, sweeps or machines may write into one results folder (claims: :mod:`benchmark.runs.state`). Every file is
readable by whoever may read the folder (the umask applies).
:func:`read_result` and :func:`iter_results` are the one reader: a result of the wrong shape is a corrupt run,
and a copied run folder counts once.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import tempfile
from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.core.registry import SAFE_NAME
from benchmark.runs.events import Evaluated, Handlers

SCHEMA_VERSION = 2  # 2: the selection rule left the identity; result.json has the history
RUN_FILES = ("config.json", "log.jsonl", "result.json", "claim")
HEADER_TYPES = {
    "schema": int,
    "run_id": str,
    "config_id": str,
    "family_id": str,
    "trial": int,
    "dataset": str,
    "method": str,
    "seed": int,
    "hparams": dict,
}
COST_KEYS = ("train_time_s", "steps_per_s", "peak_memory_mb")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file: temp files are made 0600, so they are widened


def run_id(identity: dict) -> str:
    """A stable 12-hex-digit hash of everything that determines a run."""
    canonical = json.dumps({"schema": SCHEMA_VERSION, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def run_dir(out: Path, dataset: str, method: str, rid: str) -> Path:
    return Path(out) / dataset / method / rid


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over ``path`` (mode as for a new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_partial_writes(directory: Path) -> None:
    """Delete the temp files a killed attempt at this run left half-written (``.result.json.*.tmp``,
    ``model.pt.tmp``, ...); only the run's claimant calls this, so none is being written. Claim temp files are
    left alone: a contender for the claim may be writing one."""
    for leftover in Path(directory).glob("*.tmp"):
        if not leftover.name.startswith(".claim."):
            leftover.unlink(missing_ok=True)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write, sync and remove a small probe file there, so that a read-only or full disk
    (or a file where the folder should be) is one clear error before any training."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BenchError(f"results folder {folder} is a file, not a folder")
    try:
        write_json_atomic(folder / ".write-probe", {"probe": "x" * 1024})
        (folder / ".write-probe").unlink()
    except OSError as exc:
        raise BenchError(f"results folder {folder} is not writable: {exc.strerror or exc}") from None


def check_run_paths(directory: Path) -> None:
    """A BenchError if something other than a folder or a plain file stands where the run's files go."""
    if directory.exists() and not directory.is_dir():
        raise BenchError(f"{directory} should be a run folder but is a file: move it away")
    for name in RUN_FILES:
        path = directory / name
        if path.exists() and not path.is_file():
            raise BenchError(f"{path} should be a file but is a folder: move it away")


def _is_number(value) -> bool:
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def _metrics_problem(metrics, where: str) -> str | None:
    if not isinstance(metrics, dict) or not isinstance(metrics.get("groups"), dict):
        return f"{where} is not a metrics object with groups"
    if "classes" in metrics and not isinstance(metrics["classes"], dict):
        return f"{where} has per-class accuracies that are not an object"
    per_name = [*metrics["groups"].values(), *metrics.get("classes", {}).values()]
    values = [*per_name, *(v for k, v in metrics.items() if k not in ("groups", "classes"))]
    if not all(_is_number(v) for v in values):
        return f"{where} has a metric that is not a number"
    return None


def result_problem(result) -> str | None:
    """What is wrong with the shape of a parsed result.json (None if nothing): the header's keys and types, the
    status, and for a finished run its history of evaluations (numeric metrics) and cost."""
    if not isinstance(result, dict):
        return f"not a JSON object but {type(result).__name__}"
    schema = result.get("schema", 1)  # version 1 wrote no schema
    older = isinstance(schema, int) and all(isinstance(result.get(k), str) for k in ("run_id", "status"))
    if schema != SCHEMA_VERSION and older:
        return None  # an older version's result: :func:`iter_results` skips it by its schema
    for key, kind in HEADER_TYPES.items():
        if not isinstance(result.get(key), kind) or isinstance(result.get(key), bool):
            return f"'{key}' is missing or not a {kind.__name__}"
    if result.get("status") not in ("ok", "failed"):
        return "'status' is neither ok nor failed"
    if result["status"] == "failed":
        return None
    history = result.get("history")
    if not isinstance(history, list) or not history:
        return "'history' is missing or empty"
    for record in history:
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            return "an evaluation in 'history' has no epoch"
        problem = _metrics_problem(record.get("val"), "val") or _metrics_problem(record.get("test"), "test")
        if problem:
            return f"an evaluation in 'history': {problem}"
    if not all(_is_number(result.get(key)) for key in COST_KEYS):
        return "a cost field is not a number"
    return None


def read_result(directory: Path) -> dict | None:
    """The run's result.json, or None if the run has not finished. A file that is not valid JSON or has the
    wrong shape (written by something else, a damaged disk) reads as a failed run marked ``corrupt``, so that
    it is listed, never a crash, and re-run on demand."""
    path = Path(directory) / "result.json"
    if not path.is_file():
        return None
    try:
        with open(path) as handle:
            result = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {"status": "failed", "error": f"corrupt {path}: {exc}", "corrupt": True}
    problem = result_problem(result)
    if problem:
        return {"status": "failed", "error": f"corrupt {path}: {problem}", "corrupt": True}
    return result


def iter_results(results: Path, dataset: str | None = None, warn=lambda message: None):
    """Every finished run's result.json under ``results`` (optionally only ``dataset``: one name or several,
    comma-separated), in path order, each run id once. Corrupt files, results of an older schema and copies (a
    run folder whose name is not its run id, e.g. ``cp -r <id> <id>.bak``, or a second folder holding the same
    run) are skipped, each with a ``warn``."""
    wanted = dataset.split(",") if dataset else []
    for name in wanted:
        if not SAFE_NAME.fullmatch(name):
            raise BenchError(f"bad dataset name '{name}': a dataset's name, not a path (the folder is --results)")
    patterns = [f"{name}/*/*/result.json" for name in wanted] or ["*/*/*/result.json"]
    found = {path for pattern in patterns for path in Path(results).glob(pattern)}
    paths = sorted(found, key=lambda p: (p.parent.parent, p.parent.name))
    seen: dict[str, Path] = {}
    for path in paths:
        result = read_result(path.parent)
        if result is None:
            continue
        if result.get("corrupt"):
            warn(f"skipped {result['error']}")
        elif result.get("schema") != SCHEMA_VERSION:
            warn(f"skipped {path}: written by an older version (schema {result.get('schema', 1)})")
        elif path.parent.name != result["run_id"]:
            warn(f"skipped {path.parent}: a copy of run {result['run_id']} (its folder has another name)")
        elif result["run_id"] in seen:
            warn(f"skipped {path.parent}: run {result['run_id']} is already read from {seen[result['run_id']]}")
        else:
            seen[result["run_id"]] = path.parent
            yield result


class RunLog(Handlers):
    """A listener of the run's events that appends one JSON line per evaluation to its log.jsonl, flushed at once.
    A write that fails (a full disk) stops the log but not the run: the error is kept in ``error`` for the
    result."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "w")
        self.error: str | None = None

    def evaluated(self, event: Evaluated) -> None:
        record = event.record
        if self.error is not None:
            return
        try:
            self.handle.write(json.dumps(record) + "\n")
            self.handle.flush()
        except OSError as exc:
            self.error = f"log.jsonl stopped at epoch {record.get('epoch')}: {exc.strerror or exc}"

    def close(self) -> None:
        try:
            self.handle.close()
        except OSError as exc:
            self.error = self.error or f"log.jsonl: {exc.strerror or exc}"
