#!/usr/bin/env bash
# The GPU figures of README "Speed", in one command on a machine with a CUDA GPU (about 8 minutes; untimed there).
#
#   bash scripts/gpu_check.sh                 # results (CSVs and logs) in $OUT, else /tmp/gpu_check
#   DEVICE=cpu STEP_S=60 bash scripts/gpu_check.sh   # the same steps on the CPU, to try the script
#
# The device tool sends the working tree (64 MiB at most); reports/ alone is larger (the committed runs), so move
# it out of the checkout for the device call (`mv reports /tmp/reports-aside`, then back): the script needs
# benchmark/, scripts/, studies/, pyproject.toml and .whl/ only.
#
# Needs a python3 with torch (CUDA build) and the suite's dependencies. The suite is used from this checkout
# (PYTHONPATH), not installed; wheels in .whl/ (e.g. mnist1d, which GPU images lack:
# `python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl mnist1d==0.0.2.post1`)
# are installed into /tmp/site first. Each step is cut at STEP_S seconds (default 180): its log is kept, and a suite
# cut short leaves no CSV (its finished runs stay in its results folder; the sweep stops as on Ctrl-C).
#
# Steps, quickest first: anchor-w2's nuclear norms both ways (studies/nuclear_bench.py); the default suite stacked
# (`bench time-suite`: all 24 runs in one process, --stack 24; then three processes of 8, --workers 3 --stack 8);
# `bench profile --methods all`; the same run twice with the default deterministic algorithms and once without
# (their cost); one run of each method stacked on each tuned reference dataset (runs per second there); last, the
# default suite one run per process (--workers 1), the figure the stacked suites are compared with.
set -u -o pipefail
out=${OUT:-/tmp/gpu_check}
device=${DEVICE:-cuda}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    nproc
} 2>&1 | tee "$out/machine.txt"

step() {
    local name=$1
    shift
    echo "== $name: $*"
    local start=$SECONDS
    timeout "${STEP_S:-180}" "$@" 2>&1 | tee "$out/$name.log"
    echo "== $name: $((SECONDS - start)) s" | tee -a "$out/steps.txt"
}
bench=(python3 -m benchmark.cli)  # an array, not a function: `timeout` runs commands, not shell functions

step nuclear python3 studies/nuclear_bench.py --device "$device"
step suite_stack24 "${bench[@]}" time-suite --out /tmp/gpu_suite_s24 --csv "$out/suite_stack24.csv" \
    -- --device "$device" --workers 1 --stack 24
step suite_3x8 "${bench[@]}" time-suite --out /tmp/gpu_suite_3x8 --csv "$out/suite_3x8.csv" \
    -- --device "$device" --workers 3 --stack 8
step profile "${bench[@]}" profile --device "$device" --methods all --csv "$out/profile.csv"
for name in repeat_a repeat_b; do
    step "$name" "${bench[@]}" run --methods erm,anchor-w2 --seeds 0 --device "$device" --workers 1 \
        --out "/tmp/gpu_$name" --no-report
done
step nondeterministic "${bench[@]}" run --methods erm,anchor-w2 --seeds 0 --device "$device" --workers 1 \
    --no-deterministic --out /tmp/gpu_nondeterministic --no-report
python3 - "$out" <<'PY' 2>&1 | tee "$out/repeat.txt"
from benchmark.runs.store import iter_results
runs = {}
for name in ("repeat_a", "repeat_b", "nondeterministic"):
    for r in iter_results(f"/tmp/gpu_{name}"):
        runs.setdefault(r["method"], {})[name] = r
for method, by in sorted(runs.items()):
    a, b, c = (by.get(k, {}) for k in ("repeat_a", "repeat_b", "nondeterministic"))
    same = a.get("test") == b.get("test") and a.get("history") == b.get("history")
    print(f"{method}: twice the same: {same}; deterministic {a.get('deterministic')} {a.get('nondeterministic_ops', '')};"
          f" train s {a.get('train_time_s', 0):.2f} / {b.get('train_time_s', 0):.2f}, without: {c.get('train_time_s', 0):.2f}")
PY
for dataset in digits-hetero-spurious waterbirds-style celeba-style digits-lt; do
    step "reference_$dataset" "${bench[@]}" run --methods all --dataset "$dataset" --seeds 0 --device "$device" \
        --workers 1 --stack 8 --out "/tmp/gpu_reference" --no-report
done
step suite_one_per_process "${bench[@]}" time-suite --out /tmp/gpu_suite_1 --csv "$out/suite_one_worker.csv" \
    -- --device "$device" --workers 1
cp -r /tmp/gpu_reference "$out/reference_runs" 2>/dev/null || true
