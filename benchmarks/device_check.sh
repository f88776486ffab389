#!/usr/bin/env bash
# The CUDA checks, prepared as one short script for a machine with a GPU.
#
# What it checks (about 7 minutes on one GPU):
#   1. the tests marked `cuda` (pytest -m cuda): training resumes exactly on the GPU (the CUDA
#      RNG state included), and an Agent loaded on the GPU sees and imagines what the CPU does;
#   2. the main job on the GPU: collect TwoRoom, train 2,000 steps with --device cuda, killed
#      (SIGKILL) after KILL_AFTER seconds (default 30) and --resume'd, then evaluate 50 held-out pairs against the random and oracle
#      policies, the agent planning on the GPU (--device cuda). It prints the time of
#      each stage and the success table;
#   3. precision on the GPU: 300 training steps in float32 and in bf16 (steps/s of each), and
#      the trained run evaluated on the same 50 pairs planning in float32 and in bf16 (one table,
#      with the paired McNemar test), written to results-precision.json.
#
# On a machine whose Python already has torch with CUDA but not the pure-Python packages we
# need (the lent device machine of this project), fetch their wheels first, here:
#   benchmarks/device_check.sh prepare      # -> .whl/ (ignored by git), ~20 MB
# and then run it there, carrying .whl:
#   benchmarks/device_check.sh run          # writes its log and results.json under $OUT (or /tmp/wj-device)
# Where the packages are installed already (pip install -e ".[test]"), `run` alone is enough.
# DEVICE=cpu benchmarks/device_check.sh run checks this script itself on a machine without a GPU
# (the pytest step then only reports skips).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
OUT=${OUT:-/tmp/wj-device}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}

if [ "$mode" = prepare ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    rm -rf .whl && mkdir -p .whl
    # what the device image lacks (its torch, numpy, h5py, safetensors, tqdm, pyyaml, pillow,
    # scipy, pytest and imageio are there); versions pinned to ones tested with this project
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl gymnasium==1.4.0 farama-notifications==0.0.6 pygame==2.6.1 pymunk==7.3.1 cffi==2.1.1 pycparser==3.12
    ls -la .whl
    exit 0
fi

mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
$PY - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
stage() { echo "== $1 ($(date -u +%H:%M:%S) UTC)"; }

stage "1. tests marked cuda"
$PY -m pytest -q -m cuda -rs -p no:cacheprovider tests/ || echo "CUDA TESTS FAILED"

stage "2. main job on $DEVICE"
data=$OUT/tworoom.h5 run=$OUT/run
rm -rf "$data" "$run"
t0=$(date +%s)
$PY -m worldjepa collect --env worldjepa/TwoRoom-v0 --episodes 300 --steps 100 --workers 4 --out "$data"
t1=$(date +%s)
train=(-m worldjepa train --data "$data" --out "$run" --device "$DEVICE" --steps 2000 --save-every 250 --no-progress)
# killed (SIGKILL) part-way, then resumed from its last checkpoint: nothing may be left corrupt
timeout -s KILL "${KILL_AFTER:-30}" $PY "${train[@]}" || echo "(training killed after ${KILL_AFTER:-30} s)"
if [ -f "$run/last.safetensors" ]; then $PY "${train[@]}" --resume; else rm -rf "$run"; $PY "${train[@]}"; fi
t2=$(date +%s)
$PY -m worldjepa eval --data "$data" --policy random,oracle,"$run" --episodes 50 --device "$DEVICE" \
    --json "$OUT/results.json"
t3=$(date +%s)
echo "collect $((t1 - t0)) s, train 2,000 steps (killed, then --resume) $((t2 - t1)) s, eval $((t3 - t2)) s"

stage "3. precision on $DEVICE: float32 against bf16"
for p in float32 bf16; do
    rm -rf "$OUT/run-$p"
    $PY -m worldjepa train --data "$data" --out "$OUT/run-$p" --device "$DEVICE" --precision "$p" --steps 300 \
        --save-every 300 --val-every 300 --no-progress --json | grep -E '"(step|minutes|val/pred_over_copy)"'
    echo "  ($p: steps/s from its metrics) $(tail -n 1 "$OUT/run-$p/metrics.jsonl" | grep -o '"train/steps_per_s": [0-9.]*')"
done
$PY -m worldjepa eval --data "$data" --policy "$run,$run[precision=bf16]" --episodes 50 --device "$DEVICE" \
    --no-progress --json "$OUT/results-precision.json"
