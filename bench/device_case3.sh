#!/usr/bin/env bash
# Case 3 (resnet18, float32 vs bfloat16) on a lent machine whose CPU may have AMX.
#
# The device tool's machines (H100/H200 hosts) have Python 3.12 with torch and torchvision
# but not auditor or its pure-Python needs: those travel as wheels in .whl/ (see the device
# tool's README for `pip download`; auditor's own wheel from `pip wheel --no-deps .`).
# Usage there: bash bench/device_case3.sh [extra run_all.py arguments]
# Writes RESULTS.md / results.json under $OUT/two (2 cores, as on CI) and $OUT/all.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Socket|NUMA node\(s\)'
grep -o -w -E 'amx_[a-z0-9]+|avx512_bf16|avx512_fp16' /proc/cpuinfo | sort | uniq -c
python3 -c "import torch; print('torch', torch.__version__, torch.backends.cpu.get_cpu_capability())"
cd bench || exit 1
OMP_NUM_THREADS=2 taskset -c 0,1 python3 run_all.py --cases 3 --runs 3 --out "$OUT/two" "$@"
OMP_NUM_THREADS=16 python3 run_all.py --cases 3 --runs 3 --out "$OUT/all" "$@"
