"""Which runs of a results folder are done, claimed by a live sweep, or crashed.

A run is done when its result.json exists (:func:`stored_result`; a failed run counts as done unless it is to be
retried). A run is claimed (:func:`claim_run`) before it trains, so that any number of sweeps, workers or machines
writing into one folder train it once; a claim whose owner is gone is taken over. A run whose process died is
recorded as failed with the reason (:func:`record_crash`).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

from benchmark.runs.recording import unstored
from benchmark.runs.spec import Run
from benchmark.runs.store import FILE_MODE, read_result, write_json_atomic


def owner() -> dict:
    """This process as the owner of a claim: host, pid, and when."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}


def owner_alive(claim: dict) -> bool:
    """Whether a claim's owner may still be running: always True for another host (it cannot be checked from
    here), else whether its pid exists."""
    if claim.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(claim["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


def read_claim(path: Path) -> dict | None:
    """The claim file's owner, or None if there is none; an unreadable claim has no owner (it is stale)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def claim_run(directory: Path) -> dict | None:
    """Claim the run in ``directory`` for this process: None when claimed, else the live owner's claim.

    The claim file is created complete and exclusively (a hard link of a written temp file, which fails if the
    claim exists); a claim whose owner is gone (same host, pid not running, or unreadable) is moved aside by an
    atomic rename, which only one contender wins, and the claim is tried again."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "claim"
    for _ in range(3):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".claim.", suffix=".tmp")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w") as handle:
                json.dump(owner(), handle)
            os.link(tmp, path)
            return None
        except FileExistsError:
            pass
        finally:
            Path(tmp).unlink(missing_ok=True)
        current = read_claim(path)
        if current is None:
            continue
        if current and owner_alive(current):
            return current
        stale = directory / f".claim.stale.{os.getpid()}"
        try:
            os.rename(path, stale)
            stale.unlink()
        except FileNotFoundError:
            pass  # another contender moved it first
    return read_claim(path) or {"host": "?", "pid": "?"}


def release_claim(directory: Path) -> None:
    """Remove this process's claim on the run (a claim taken over by someone else is left alone)."""
    path = directory / "claim"
    current = read_claim(path)
    if current and current.get("pid") == os.getpid() and current.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


def stored_result(run: Run, out: Path, retry_failed: bool = False) -> dict | None:
    """The stored result of a finished run (failed runs count as finished unless ``retry_failed``), else None."""
    result = read_result(run.directory(out))
    if result is None or (retry_failed and result.get("status") != "ok"):
        return None
    return result


def unique_runs(runs: list[Run]) -> list[Run]:
    """``runs`` without repeated runs (trials that drew the same hparams), in order."""
    return list({run.run_id: run for run in runs}.values())


def runs_to_do(runs: list[Run], out: Path, force: bool = False, retry_failed: bool = False) -> list[Run]:
    """The runs without a stored result (all of them with ``force``), in order, each once."""
    return [run for run in unique_runs(runs) if force or stored_result(run, out, retry_failed) is None]


def record_crash(run: Run, out: Path, reason: str) -> dict:
    """The run's result after its process died: the result.json it managed to write, or a failed one (written
    if the disk allows)."""
    result = read_result(run.directory(out))
    if result is None:
        result = {**run.header(), "status": "failed", "error": reason}
        try:
            write_json_atomic(run.directory(out) / "result.json", result)
        except OSError as exc:
            result = unstored(result, run.directory(out) / "result.json", exc)
    return result


def claim_pending(pending: list[Run], out: Path, force: bool, retry_failed: bool):
    """Claim each of ``pending`` for this process: (the runs claimed, the runs another live sweep holds, {run id:
    result} of the runs another sweep finished after the caller looked, which are not claimed)."""
    claimed, elsewhere, finished = [], [], {}
    for run in pending:
        directory = run.directory(out)
        if claim_run(directory) is not None:
            elsewhere.append(run)
        elif not force and (stored := stored_result(run, out, retry_failed)) is not None:
            release_claim(directory)
            finished[run.run_id] = stored
        else:
            claimed.append(run)
    return claimed, elsewhere, finished
