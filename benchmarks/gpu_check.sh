#!/usr/bin/env bash
# What a lent GPU is for: the CUDA rows of the speed table (the H100 target:
# the full network at 1080p >= 250 fps), training throughput at 256 px (target >= 500 img/s), and
# the arbitrary-style network trained on from the shipped file with `trainer=gpu` (docs/arbitrary.md),
# whose export comes back. Each step has a time limit, so one slow compile cannot eat the rest. On
# an H200 (session 30) the steps took 21, 37, about 150, 131 and 43 s; speed_tune, added since, may
# take 4 minutes more, profile (not run yet) one or two: over one call's 10, so two calls back to back
# (the machine stays warm 30 s): ONLY="speed_eager speed_1080 profile train_step", then
# ONLY="any speed_b8 speed_tune" (ONLY: those steps alone). SMOKE=1 runs each step tiny, on any machine.
#
#     ../shared/device/setup-carry && uv run python benchmarks/gpu_carry.py   # once, here: .device/
#     bash benchmarks/gpu_check.sh     # on the device, carrying .device; logs and the export in $OUT/gpu_check
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .device/on-device.sh ] && source .device/on-device.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the tree as it is: nothing to install there
PY=${PYTHON:-python3}
if ! "$PY" -c 'import pillow_heif' 2>/dev/null; then  # the device lacks it (a 5.7 MB wheel); nothing here reads HEIC
  mkdir -p /tmp/no_heif && echo 'def register_heif_opener() -> None: pass' >/tmp/no_heif/pillow_heif.py
  export PYTHONPATH="$PYTHONPATH:/tmp/no_heif"
fi
LOGS=${OUT:-$(mktemp -d)}/gpu_check  # at most 8 files come back: the logs and any.safetensors
RUNS=$(mktemp -d)                    # Hydra's run folders stay on the device
mkdir -p "$LOGS"
[ -z "${TORCH_HOME:-}" ] && [ -d ../shared/torch ] && export TORCH_HOME="$(cd ../shared/torch && pwd)"
PHOTOS=${PHOTOS:-$([ -d .device/train256 ] && echo .device/train256 || echo ../shared/data/train)}
PAINTINGS=${PAINTINGS:-$([ -d .device/paintings ] && echo .device/paintings || echo ../shared/data/paintings)}
TRAINER=$("$PY" -c 'import torch; print("gpu" if torch.cuda.is_available() else "default")')
if [ "${SMOKE:-0}" = 1 ]; then  # the plumbing only: no compiling, tiny sizes
  SIZES=(256x256) BIG=256x256 NETS=(realtime8) BATCH=2 COMPILE=() ANY=(trainer.max_steps=2) LIMIT=4
  PRECISIONS=(bf16) HALF=bf16
else
  SIZES=(256x256 480p 720p 1080p) BIG=1080p NETS=(full small realtime8) BATCH=32 COMPILE=(--compile)
  ANY=(trainer.max_steps=1200) LIMIT=1 PRECISIONS=(bf16 fp16) HALF=fp16
  # HALF: what --precision auto compiles on CUDA; `any`: 17 steps/s on an H200 after 55 s of reading paintings
fi
summary=()
timed() {  # name, seconds, command...: runs it under a time limit, keeps its log, notes its time and exit status
  local name=$1 limit=$(($2 * LIMIT)) start rc
  shift 2
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]] && return
  start=$(date +%s)
  timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  summary+=("$(printf '%-12s %4d s  exit %d%s' "$name" $(($(date +%s) - start)) "$rc" "$([ $rc = 124 ] && echo ' (time limit)')")")
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# Eager rows of every size and network (no compiling: seconds), then the compiled 1080p rows, one frame a call.
timed speed_eager 60 "$PY" benchmarks/speed.py --nets "${NETS[@]}" --sizes "${SIZES[@]}" --no-train \
  --precisions "${PRECISIONS[@]}"
# --rgb8: a row more, the 9x9 convs in and out padded from 3 channels to 8 (not measured yet: tensor cores?).
timed speed_1080 160 "$PY" benchmarks/speed.py --nets full --sizes "$BIG" --no-train --precisions "$HALF" \
  --repeats 20 --rgb8 "${COMPILE[@]}"
# Where the 1080p frame's time goes (the 250 fps target): the top kernels, compiled and eager.
timed profile 120 "$PY" benchmarks/speed.py --nets full --sizes "$BIG" --no-train --precisions "$HALF" --repeats 3 \
  --profile
timed train_step 160 "$PY" benchmarks/train_step.py --batch "$BATCH" --steps 10 "${COMPILE[@]}"
timed any 190 "$PY" -m fast_style.train style=any "data.root=$PHOTOS" "style.paintings=$PAINTINGS" "trainer=$TRAINER" \
  init_weights=checkpoints/any.safetensors optim.lr=5e-5 optim.norm_lr=2.5e-4 optim.ema=0.995 \
  stability.weight=5e7 stability.noise=0 stability.shift=3 batch_size=8 data.num_workers=8 trainer.max_epochs=-1 \
  checkpoint_every_n_steps=1000 preview.every_n_steps=600 "${ANY[@]}" "hydra.run.dir=$RUNS/any" "export_dir=$LOGS"
# A video's frames in batches of 8 (stylize --batch-size 8), compiled.
timed speed_b8 90 "$PY" benchmarks/speed.py --nets full --sizes "$BIG" --no-train --precisions "$HALF" --batch 8 \
  --repeats 10 "${COMPILE[@]}"
# What the reduce-overhead compile leaves on the table: the network alone under max-autotune (not run yet).
[ "${SMOKE:-0}" = 1 ] || timed speed_tune 240 "$PY" benchmarks/speed.py --nets full --sizes "$BIG" --no-train \
  --precisions fp16 --batch 8 --repeats 10 --autotune

printf '%s\n' "${summary[@]}"
grep -h -E "^device|^stylize|^batches|x(256|480|720|1080)|256x256|480p|720p|1080p" "$LOGS"/speed_*.log 2>/dev/null
[ -f "$LOGS/profile.log" ] && grep -A 12 -E "^full .*(stream path|eager)" "$LOGS/profile.log"
grep -E "img/s|^torch" "$LOGS/train_step.log" 2>/dev/null
grep -E "precision auto|channels_last auto|step [0-9]+|exported|Error" "$LOGS/any.log" 2>/dev/null | tail -n 6
