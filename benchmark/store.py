"""Results on disk: ``<out>/<dataset>/<method>/<run-id>/`` with config.json, log.jsonl and result.json.

``result.json`` is written last and atomically (temp file + rename): it is the done marker. Any number
of workers may write into one results folder because every run owns its own directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from benchmark.errors import BenchError

SCHEMA_VERSION = 2  # 2: the selection rule left the identity; result.json has the history


def run_id(identity: dict) -> str:
    """A stable 12-hex-digit hash of everything that determines a run."""
    canonical = json.dumps({"schema": SCHEMA_VERSION, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def run_dir(out: Path, dataset: str, method: str, rid: str) -> Path:
    return Path(out) / dataset / method / rid


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write, sync and remove a small probe file there, so that a read-only or full disk
    is one clear error before any training (``OSError`` otherwise)."""
    try:
        write_json_atomic(Path(folder) / ".write-probe", {"probe": "x" * 1024})
        (Path(folder) / ".write-probe").unlink()
    except OSError as exc:
        raise BenchError(f"results folder {folder} is not writable: {exc.strerror or exc}") from None


def read_result(directory: Path) -> dict | None:
    """The run's result.json, or None if the run has not finished. A file that is not valid JSON (written by
    something else, or a damaged disk) reads as a failed run, so that it is reported and re-run on demand."""
    path = Path(directory) / "result.json"
    if not path.is_file():
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {"status": "failed", "error": f"unreadable {path}: {exc}", "unreadable": True}


def iter_results(results: Path, dataset: str | None = None, warn=lambda message: None):
    """Every finished run's result.json under ``results`` (optionally one dataset), in path order. Unreadable
    files and results of an older schema are skipped, each with a call to ``warn``."""
    pattern = f"{dataset}/*/*/result.json" if dataset else "*/*/*/result.json"
    for path in sorted(Path(results).glob(pattern)):
        result = read_result(path.parent)
        if result.get("unreadable"):
            warn(f"skipped {result['error']}")
        elif result.get("schema") != SCHEMA_VERSION:
            warn(f"skipped {path}: written by an older version (schema {result.get('schema', 1)})")
        else:
            yield result


class RunLog:
    """Appends one JSON line per evaluation to a run's log.jsonl, flushed at once."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "w")

    def __call__(self, record: dict) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()
