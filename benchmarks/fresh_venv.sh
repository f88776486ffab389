#!/usr/bin/env bash
# The wheel, as a user gets it: built from this checkout, installed into a brand-new virtual
# environment beside the user's own torch, and run from a folder outside the checkout.
#
#   benchmarks/fresh_venv.sh                     # torch==2.13.0 (this project's CPU build)
#   TORCH="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124" benchmarks/fresh_venv.sh
#   benchmarks/fresh_venv.sh "torch==2.6.0"      # the same, as an argument
#
# Checks, failing loudly at the first that does not hold:
#   1. the wheel builds (pip wheel, the build backend pinned in pyproject.toml, from a clean copy
#      of the files git tracks or would track: nothing stale in build/ can slip into it);
#   2. pip keeps the torch it was given: the same version, in the same place, before and after
#      installing the wheel with its `tensorboard` extra; `pip check` finds nothing broken;
#   3. `import worldjepa` takes the installed package, not this checkout;
#   4. the console script runs collect (TwoRoom, 12 episodes, 32 px), train (--small, 10 steps,
#      --tensorboard), eval (3 episodes, --tensorboard) and plot, each writing what it should;
#   5. `tensorboard --inspect` lists the run's scalars (train/loss, val/..., eval/...).
# Needs network access to the package index (dependencies and the build backend). The venv
# lives in a temporary folder, removed at the end unless KEEP=1.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
TORCH=${1:-${TORCH:-torch==2.13.0}}
PY=${PYTHON:-python3}
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV  # nothing of the caller's environment may leak in
export OMP_NUM_THREADS=1 PIP_DISABLE_PIP_VERSION_CHECK=1

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wj-fresh.XXXXXX")
[ "${KEEP:-0}" = 1 ] && echo "keeping $TMP" || trap 'rm -rf "$TMP"' EXIT
T0=$(date +%s)
fail() { echo "FAILED: $*" >&2; exit 1; }
stage() { echo "== $1 ($(( $(date +%s) - T0 )) s)"; }

stage "1. build the wheel from $SRC"
mkdir "$TMP/src" "$TMP/dist" "$TMP/work"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$SRC" ls-files -z --cached --others --exclude-standard \
        | tar -C "$SRC" --null -T - --ignore-failed-read -cf - | tar -xf - -C "$TMP/src"
else  # an unpacked sdist
    tar -C "$SRC" --exclude=./build --exclude=./dist --exclude=./.venv --exclude='*.egg-info' -cf - . \
        | tar -xf - -C "$TMP/src"
fi
"$PY" -m venv "$TMP/venv"
V=$TMP/venv/bin
"$V/pip" wheel -q --no-deps -w "$TMP/dist" "$TMP/src"
WHEEL=$(ls "$TMP"/dist/worldjepa-*.whl) || fail "no wheel in $TMP/dist"
echo "built $(basename "$WHEEL")"

stage "2. install the user's torch ($TORCH), then the wheel with [tensorboard]"
# shellcheck disable=SC2086  # TORCH may carry pip options (--index-url ...)
"$V/pip" install -q $TORCH
torch_id() { "$V/python" -W ignore -c "import torch; print(torch.__version__, torch.__file__)"; }
BEFORE=$(torch_id)
"$V/pip" install -q "$WHEEL[tensorboard]"
AFTER=$(torch_id)
[ "$BEFORE" = "$AFTER" ] || fail "pip replaced the given torch: $BEFORE -> $AFTER"
echo "torch kept: $AFTER"
"$V/pip" check

stage "3. the installed package is the one imported"
cd "$TMP/work"
WHERE=$("$V/python" -c "import worldjepa; print(worldjepa.__file__)")
case $WHERE in "$TMP/venv/"*) echo "worldjepa from $WHERE" ;; *) fail "worldjepa imported from $WHERE" ;; esac

stage "4. collect, train, eval, plot through the console script"
"$V/worldjepa" --version
"$V/worldjepa" collect --env worldjepa/TwoRoom-v0 --episodes 12 --steps 40 --size 32 --out data.h5 --no-progress
"$V/worldjepa" train --data data.h5 --out run --small --steps 10 --threads 1 --device cpu --tensorboard --no-progress
"$V/worldjepa" eval --data data.h5 --policy run --episodes 3 --goal-offset 10 --budget 10 --threads 1 \
    --device cpu --tensorboard --json results.json --no-progress
"$V/worldjepa" plot run --out curves.png
for f in data.h5 run/model.safetensors run/metrics.jsonl results.json curves.png; do
    [ -s "$f" ] || fail "$f was not written"
done
"$V/python" -c "from PIL import Image; im = Image.open('curves.png'); im.verify(); print('curves.png', im.size)"

stage "5. tensorboard --inspect lists the run's scalars"
"$V/tensorboard" --inspect --logdir run/tb > inspect.txt 2>&1 || { cat inspect.txt; fail "tensorboard --inspect"; }
for tag in train/loss val/pred_over_copy eval/success_rate; do
    grep -q "$tag" inspect.txt || { cat inspect.txt; fail "tensorboard --inspect does not list $tag"; }
done
grep -A3 -i "^scalars" inspect.txt || true

stage "all checks passed: wheel + $AFTER, $(basename "$WHEEL")"
