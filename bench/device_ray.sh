#!/usr/bin/env bash
# Issue 16 (runner.backend: ray) on a lent 16-core machine: resnet18 audit, local against Ray
# with 1, 4, 8 and 16 one-CPU workers (target: scaling efficiency >= 0.7 at 16), attributions
# compared with the local run. bench/case_ray.py does the work; this wraps it.
#
# Needs Ray in the Python it runs with (the repo's .venv after `make install`, which installs
# auditor[ray]). A lent machine cannot reach the package index and Ray's wheel (~70 MB) is
# over the device tool's 64 MiB carry limit: without Ray already there, the script says so
# and stops (exit 3) rather than measure something else.
# Run as: run(command="bash bench/device_ray.sh", timeout_s=540); IMAGES=4 for a dry run.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-.venv/bin/python}
if [ -x "$PY" ]; then PY=$(realpath -s "$PY"); else PY=python3; fi
if ! "$PY" -c "import ray, torch, torchvision, captum, auditor" 2>"$OUT/imports.txt"; then
    echo "device_ray: Ray or auditor's dependencies are not importable with $PY:" | tee "$OUT/device_ray.md"
    tee -a "$OUT/device_ray.md" < "$OUT/imports.txt"
    exit 3
fi
nproc > "$OUT/nproc.txt"
cd bench && timeout 520 "$PY" case_ray.py --images "${IMAGES:-32}" --workers "${WORKERS:-1,4,8,16}" \
    2>"$OUT/device_ray.log" | tee "$OUT/device_ray.md"
