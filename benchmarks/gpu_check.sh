#!/usr/bin/env bash
# What a lent GPU is for, in one device call (an estimated 6-8 minutes): the CUDA rows of the speed table
# (the H100 target: the full network at 1080p >= 250 fps), training throughput at 256 px (target
# >= 500 img/s), and a real `train` run on the GPU, whose model comes back. No GPU has been lent to
# this project yet, so none of this has run on one; SMOKE=1 runs each step tiny, on any machine.
#
#     ../shared/device/setup-carry            # once, here: .device/ (VGG weights, photos, Hydra wheels)
#     bash benchmarks/gpu_check.sh            # on the device, carrying .device; logs in $OUT/gpu_check
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .device/on-device.sh ] && source .device/on-device.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the tree as it is: nothing to install there
PY=${PYTHON:-python3}
LOGS=${OUT:-$(mktemp -d)}/gpu_check
mkdir -p "$LOGS"
[ -z "${TORCH_HOME:-}" ] && [ -d ../shared/torch ] && export TORCH_HOME="$(cd ../shared/torch && pwd)"
PHOTOS=${PHOTOS:-$([ -d .device/train256 ] && echo .device/train256 || echo ../shared/data/train)}
TRAINER=$("$PY" -c 'import torch; print("gpu" if torch.cuda.is_available() else "default")')
if [ "${SMOKE:-0}" = 1 ]; then  # the plumbing only: no compiling, tiny sizes
  SIZES=(256x256) NETS=(realtime8) BATCH=2 STEPS=2 COMPILE=false
else
  SIZES=(1080p 480p) NETS=(full) BATCH=32 STEPS=300 COMPILE=true  # some seven compiles in all: minutes
fi
ROWS=()  # the benchmarks' compiled rows
[ "$COMPILE" = true ] && ROWS=(--compile)
summary=()
timed() {  # name, command...: runs it, keeps its log, notes its time and exit status
  local name=$1 start rc
  shift
  start=$(date +%s)
  "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  summary+=("$(printf '%-10s %4d s  exit %d' "$name" $(($(date +%s) - start)) "$rc")")
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timed speed "$PY" benchmarks/speed.py --nets "${NETS[@]}" --sizes "${SIZES[@]}" "${ROWS[@]}" --no-train \
  --precisions "${PRECISION:-bf16}"  # H100s and A100s have bf16; PRECISION=fp16 on older GPUs
timed train_step "$PY" benchmarks/train_step.py --batch "$BATCH" --steps 5 "${ROWS[@]}"
timed train "$PY" -m fast_style.train style=starry_night "data.root=$PHOTOS" "trainer=$TRAINER" "batch_size=$BATCH" \
  "compile=$COMPILE" data.num_workers=8 "trainer.max_steps=$STEPS" trainer.max_epochs=-1 \
  "hydra.run.dir=$LOGS/train" "export_dir=$LOGS/export"

printf '%s\n' "${summary[@]}"
grep -E "^device|^stylize|1080p|480p|256x256" "$LOGS/speed.log"
grep -E "img/s|^torch" "$LOGS/train_step.log"
grep -E "precision auto|channels_last auto|step [0-9]+|exported" "$LOGS/train.log" | tail -n 4
