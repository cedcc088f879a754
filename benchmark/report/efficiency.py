"""A timed sweep's cost (``bench time-suite``): one row per run and a total row, and the sweep's efficiency, the runs'
training time over its worker time (wall × workers), with where the rest of the worker time went."""

from __future__ import annotations

RUN_FIELDS = ["method", "seed", "device", "wall_s", "train_s", "steps_per_s", "peak_rss_mb", "test_wga", "test_acc"]
FIELDS = [*RUN_FIELDS, "efficiency"]


def efficiency(results: list[dict], spans: list[tuple[float, float]], start: float, end: float, workers: int):
    """The worker-seconds of the sweep (wall × workers) split into shares; ``efficiency`` is the training share.

    Inside the trainer: the runs' training, their stages' setup, and the rest (evaluation, moving data, building
    the model). Outside it, from each run's ``spans`` (the wall-clock times its config.json and result.json were
    written): "run files and dataset" (the part of each span the trainer did not take: building or reusing the
    dataset, writing the files), "startup" (from the sweep's start to each worker's first run: the sweep's
    imports and planning, process start, the workers' imports), "idle at the end" (from each worker's last run
    to the sweep's exit: waiting for the other workers, the leaderboard) and "between runs" (the rest: handing
    runs to workers, reporting). Workers are not named in the results, so the first ``workers`` spans to start
    are taken as the workers' first runs and the last ``workers`` to end as their last. Runs trained together
    (``stacked_runs`` > 1, ``bench run --stack``) share their stack's clock, so each counts its times divided by
    the stack's size."""
    budget = (end - start) * workers
    share = [1 / r.get("stacked_runs", 1) for r in results]
    train = sum(r["train_time_s"] * w for r, w in zip(results, share))
    setup = sum(stage.get("setup_time_s", 0.0) * w for r, w in zip(results, share) for stage in r["stages"])
    inside = sum(r["wall_time_s"] * w for r, w in zip(results, share))
    spanned = sum((finish - begin) * w for (begin, finish), w in zip(spans, share))
    startup = sum(begin - start for begin in sorted(b for b, _ in spans)[:workers])
    idle = sum(end - finish for finish in sorted(f for _, f in spans)[-workers:])
    parts = {"training": train, "stage setup": setup, "evaluation and build": inside - train - setup}
    parts |= {"run files and dataset": spanned - inside, "startup": startup, "idle at the end": idle}
    parts["between runs"] = budget - spanned - startup - idle
    return {"efficiency": train / budget, **{name: value / budget for name, value in parts.items()}}


def suite_rows(results: list[dict], wall: float, peak_mb: float, training_share: float) -> list[dict]:
    """The rows of :data:`FIELDS`: one per finished run (its wall and training time, steps/s, process peak RSS,
    test metrics), then ``total`` (the sweep's ``wall``, its runs' training time with a stack's shared among its
    runs, the sampled ``peak_mb`` of the process tree and the ``training_share`` of :func:`efficiency`)."""
    rows = []
    for r in results:
        run = [r["method"], r["seed"], r["device"], r["wall_time_s"], r["train_time_s"], r["steps_per_s"]]
        rows.append(dict(zip(RUN_FIELDS, [*run, r["peak_memory_mb"], r["test"]["wga"], r["test"]["acc"]])))
    train_s = sum(r["train_time_s"] / r.get("stacked_runs", 1) for r in results)
    total = {"method": "total", "wall_s": wall, "train_s": train_s, "peak_rss_mb": peak_mb}
    return [*rows, total | {"efficiency": training_share}]


def efficiency_line(shares: dict, wall: float, workers: int) -> str:
    """:func:`efficiency`'s shares in one line, each also in seconds of worker time."""
    budget = wall * workers
    split = ", ".join(
        f"{name} {share:.0%} ({share * budget:.1f} s)" for name, share in shares.items() if name != "efficiency"
    )
    ratio = f"efficiency (training time / wall × workers): {shares['efficiency']:.2f}"
    return f"{ratio}; worker time {budget:.1f} s: {split}"
