#!/usr/bin/env bash
# The GPU figures of README "Speed", in one command on a machine with a CUDA GPU (at most 9 minutes; untimed there).
#
#   bash scripts/gpu_check.sh                 # results (CSVs and logs) in $OUT, else /tmp/gpu_check
#   DEVICE=cpu STEP_S=60 bash scripts/gpu_check.sh   # the same steps on the CPU, to try the script
#
# Needs a python3 with torch (CUDA build) and the suite's dependencies. The suite is used from this checkout
# (PYTHONPATH), not installed; wheels in .whl/ (e.g. mnist1d, which GPU images lack:
# `python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl mnist1d==0.0.2.post1`)
# are installed into /tmp/site first. Each step is cut at STEP_S seconds (default 180): its log is kept, and a suite
# cut short leaves no CSV (its finished runs stay in its results folder; the sweep stops as on Ctrl-C).
#
# Steps: the default suite with one run at a time on the device, then with --workers-per-device 4 (several runs
# share the GPU), then `bench profile --methods all` on the device.
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
    timeout "${STEP_S:-180}" "$@" 2>&1 | tee "$out/$name.log"
}

step suite_one_worker python3 scripts/default_suite.py --out /tmp/gpu_suite_1 --csv "$out/suite_one_worker.csv" \
    -- --device "$device" --workers 1
step suite_4_per_device python3 scripts/default_suite.py --out /tmp/gpu_suite_4 --csv "$out/suite_4_per_device.csv" \
    -- --device "$device" --workers-per-device 4
step profile python3 -m benchmark.cli profile --device "$device" --methods all --csv "$out/profile.csv"
