#!/usr/bin/env bash
# GPU acceptance run, for the day a machine with a GPU is at hand (no internet needed):
#   1. build with the GPU features (wgpu and cuda; wgpu alone if the CUDA build fails), unless
#      CLRTRAIN_BIN names a binary built already;
#   2. `clrtrain bench` on flex and on each GPU backend that opens;
#   3. a 2-epoch run on the real data (../shared/data/cifar10, or $DATA) on each GPU backend;
#   4. the agreement with flex: the GPU-trained model evaluated on flex must reproduce the GPU's
#      own test-set predictions.
# Prints seconds per epoch, images per second and the agreement; everything lands in $OUT
# (default: gpu-acceptance/). Budget: about 10 minutes on a 16-core machine with a prebuilt binary.
# Vulkan needs its loader and, with NVIDIA's driver in a container, libglvnd (README: "wgpu on a
# real GPU"); the `cuda` build downloads LLVM from GitHub, so offline it falls back to wgpu.
#
#   bash scripts/gpu_acceptance.sh                 # build, then measure
#   CLRTRAIN_BIN=target/release/clrtrain BACKENDS="wgpu" bash scripts/gpu_acceptance.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-acceptance}
DATA=${DATA:-../shared/data/cifar10}
EPOCHS=${EPOCHS:-2}
BACKENDS=${BACKENDS:-"cuda wgpu"}
STEPS=${STEPS:-40}
mkdir -p "$OUT"
log() { echo "== $*"; }

if [ -z "${CLRTRAIN_BIN:-}" ]; then
  log "building with the GPU features (log: $OUT/build.log)"
  if ! cargo build --release --features cuda > "$OUT/build.log" 2>&1; then
    log "the CUDA build failed; building with flex and wgpu only"
    cargo build --release >> "$OUT/build.log" 2>&1 || { tail -n 20 "$OUT/build.log"; exit 1; }
  fi
  CLRTRAIN_BIN=target/release/clrtrain
fi
bin=$CLRTRAIN_BIN
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  | sed 's/^/gpu: /' || true

# a field of a JSON file, read with python3
field() {
  python3 -c "import json,sys; v=eval('json.load(open(sys.argv[1]))'+sys.argv[2]); \
print(f'{v:.1f}' if isinstance(v, float) else v)" "$@" \
    2>/dev/null || echo "?"
}

log "bench on flex (CPU, the reference)"
"$bin" bench --backend flex --steps "$(( STEPS / 4 + 1 ))" --warmup 2 --json > "$OUT/bench-flex.json" 2>/dev/null || true

opened=()
for backend in $BACKENDS; do
  log "bench on $backend"
  if "$bin" bench --backend "$backend" --steps "$STEPS" --warmup 5 --json > "$OUT/bench-$backend.json" \
       2> "$OUT/bench-$backend.err"; then
    opened+=("$backend")
  else
    echo "$backend: no device ($(tail -n 1 "$OUT/bench-$backend.err"))"
  fi
done

# PyTorch on the same GPU, where its python3 has CUDA: the figure to compare against
if python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  log "bench of the same network in PyTorch on CUDA"
  python3 bench/pytorch_minigooglenet.py --device cuda --channels-last --steps 200 --warmup 20 \
    > "$OUT/bench-torch-cuda.json" 2> "$OUT/bench-torch-cuda.err" || true
fi

for backend in "${opened[@]}"; do
  run="$OUT/train-$backend"
  log "$EPOCHS-epoch run on $DATA with $backend"
  "$bin" train --data "$DATA" --epochs "$EPOCHS" --step-size 1 --backend "$backend" \
    --output "$run" > "$run.log" 2>&1 || { tail -n 5 "$run.log"; continue; }
  log "agreement: the $backend model evaluated on flex"
  "$bin" evaluate --model "$run" --data "$DATA" --backend flex --output "$run/on-flex" -q
  "$bin" evaluate --model "$run" --data "$DATA" --backend "$backend" --output "$run/on-gpu" -q
done

log "figures"
for backend in flex "${opened[@]}"; do
  json="$OUT/bench-$backend.json"
  [ -s "$json" ] || continue
  printf '%-6s training %s images/s, inference %s images/s, peak %s MiB\n' "$backend" \
    "$(field "$json" "['train_step']['images_per_s']")" \
    "$(field "$json" "['inference']['images_per_s']")" \
    "$(field "$json" "['peak_rss_mib']")"
done
json="$OUT/bench-torch-cuda.json"
if [ -s "$json" ]; then
  printf 'pytorch-cuda training %s images/s, inference %s images/s\n' \
    "$(field "$json" "['train_images_per_s']")" "$(field "$json" "['inference_images_per_s']")"
fi
for backend in "${opened[@]}"; do
  run="$OUT/train-$backend"
  [ -f "$run/history.csv" ] || continue
  echo "$backend: seconds per epoch: $(tail -n +2 "$run/history.csv" | cut -d, -f6 | paste -sd' ')"
  echo "$backend: test accuracy after $EPOCHS epochs: $(field "$run/report.json" "['accuracy']")"
  if [ -f "$run/on-flex/predictions.csv" ] && [ -f "$run/on-gpu/predictions.csv" ]; then
    same=$(paste -d, <(cut -d, -f3 "$run/on-gpu/predictions.csv") \
                     <(cut -d, -f3 "$run/on-flex/predictions.csv") | tail -n +2 \
           | awk -F, '$1==$2{s++} END{printf "%d of %d", s, NR}')
    echo "$backend: predictions equal on $backend and flex for $same test images"
  fi
done
