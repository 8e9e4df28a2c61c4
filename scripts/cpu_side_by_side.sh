#!/usr/bin/env bash
# clrtrain's CPU path next to PyTorch on this machine, the measurements of the README's
# performance section in one go (no internet needed; python3 with torch must be installed):
#   1. per call, MiniGoogLeNet's 19 convolutions, its batch norms and max pooling at 2 threads
#      and at 1 (`conv_ops --patched` and bench/pytorch_conv_ops.py);
#   2. the training step and inference, `clrtrain bench --backend flex` and
#      bench/pytorch_minigooglenet.py --channels-last, alternating, $ROUNDS rounds at 2 threads
#      and at 1, with each round's ratio and the medians;
#   3. PyTorch's per-operator profile of three training steps at 2 threads and at 1;
#   4. with PERF=1, where `perf` runs: `perf record` of `clrtrain bench` at 2 threads and at 1
#      (`perf script` text with thread ids and times, for where the threads waited).
# Both run pinned (`taskset`) to two logical CPUs on distinct cores of one socket, or to $CPUS
# ("a,b"); the one-thread runs to the first. Figures land in $OUT (default: cpu-side-by-side/).
# Benchmark only on an idle machine. With built binaries, ROUNDS=2 took 7.5 minutes on 2 Zen 2
# cores (PERF=1 included); the build, where needed, 7-15 more.
#
#   bash scripts/cpu_side_by_side.sh               # builds clrtrain and conv_ops (flex only)
#   CLRTRAIN_BIN=target/release/clrtrain CONV_OPS_BIN=target/release/examples/conv_ops \
#     ROUNDS=2 bash scripts/cpu_side_by_side.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cpu-side-by-side}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
log() { echo "== $*"; }

if [ -z "${CLRTRAIN_BIN:-}" ] || [ -z "${CONV_OPS_BIN:-}" ]; then
  log "building clrtrain and conv_ops with flex only (log: $OUT/build.log)"
  cargo build --release --no-default-features --features flex --bin clrtrain --example conv_ops \
    > "$OUT/build.log" 2>&1 || { tail -n 20 "$OUT/build.log"; exit 1; }
  CLRTRAIN_BIN=${CLRTRAIN_BIN:-target/release/clrtrain}
  CONV_OPS_BIN=${CONV_OPS_BIN:-target/release/examples/conv_ops}
fi
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "$PYTHON cannot import torch"; exit 1; }

if [ -z "${CPUS:-}" ]; then
  # the first logical CPU of two cores of socket 0: its third and fourth where it has four or
  # more (CPU 0 takes most interrupts), else its first two
  CPUS=$(lscpu -p=CPU,CORE,SOCKET | grep -v '^#' | awk -F, '$3==0 && !seen[$2]++ {print $1}' \
    | awk '{c[NR]=$1} END {if (NR >= 4) print c[3] "," c[4];
                           else if (NR >= 2) print c[1] "," c[2]; else print c[1]}')
fi
ONE=${CPUS%%,*}
{ grep -m1 'model name' /proc/cpuinfo; grep -m1 '^model\s' /proc/cpuinfo
  grep -o -m1 avx512f /proc/cpuinfo || echo "no avx512f"
  "$PYTHON" -c 'import torch; print("torch", torch.__version__)'; uptime; } | tee "$OUT/machine.txt"
log "pinned to CPUs $CPUS (one thread: $ONE)"

cpus_for() { if [ "$1" = 1 ]; then echo "$ONE"; else echo "$CPUS"; fi; }

log "per call (ms per batch-64 call, best of 5)"
for t in 2 1; do
  c=$(cpus_for $t)
  RAYON_NUM_THREADS=$t taskset -c "$c" "$CONV_OPS_BIN" --patched > "$OUT/ops-${t}t-clrtrain.txt"
  taskset -c "$c" "$PYTHON" bench/pytorch_conv_ops.py --threads $t > "$OUT/ops-${t}t-pytorch.txt"
  ours=$(grep '^all conv' "$OUT/ops-${t}t-clrtrain.txt" | sed 's/NaN → //g')
  echo "threads $t, clrtrain: $ours"
  echo "threads $t, PyTorch:  $(grep '^all conv' "$OUT/ops-${t}t-pytorch.txt")"
done

log "steps, alternating (images/s)"
for t in 2 1; do
  c=$(cpus_for $t)
  for r in $(seq "$ROUNDS"); do
    RAYON_NUM_THREADS=$t taskset -c "$c" "$CLRTRAIN_BIN" bench --backend flex --steps "$STEPS" \
      --warmup 2 --json > "$OUT/step-${t}t-r$r-clrtrain.json" 2>/dev/null
    taskset -c "$c" "$PYTHON" bench/pytorch_minigooglenet.py --channels-last --threads $t \
      --steps "$STEPS" --warmup 2 > "$OUT/step-${t}t-r$r-pytorch.json" 2>/dev/null
  done
done
"$PYTHON" - "$OUT" "$ROUNDS" <<'EOF' | tee "$OUT/ratios.txt"
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def read(path, *keys):
    try:
        value = json.load(open(path))
        for k in keys:
            value = value[k]
        return float(value)
    except (OSError, ValueError, KeyError):
        return float("nan")
for t in (2, 1):
    for what, ours, theirs in [
        ("training", ("train_step", "images_per_s"), ("train_images_per_s",)),
        ("inference", ("inference", "images_per_s"), ("inference_images_per_s",)),
    ]:
        rows = [(read(f"{out}/step-{t}t-r{r}-clrtrain.json", *ours),
                 read(f"{out}/step-{t}t-r{r}-pytorch.json", *theirs)) for r in range(1, rounds + 1)]
        ratios = [a / b for a, b in rows]
        pairs = ", ".join(f"{a:.1f} / {b:.1f}" for a, b in rows)
        print(f"threads {t}, {what} (clrtrain / PyTorch): {pairs}"
              + "  ratios " + ", ".join(f"{x:.2f}" for x in ratios)
              + f"  median {statistics.median(ratios):.2f}")
EOF

log "PyTorch's per-operator profiles: $OUT/pytorch-profile-{2,1}t.txt"
for t in 2 1; do
  taskset -c "$(cpus_for $t)" "$PYTHON" bench/pytorch_minigooglenet.py --channels-last \
    --threads $t --steps 2 --warmup 2 --profile 3 > /dev/null 2> "$OUT/pytorch-profile-${t}t.txt"
done

if [ "${PERF:-0}" = 1 ]; then
  if perf stat -e task-clock true > /dev/null 2>&1; then
    for t in 2 1; do
      RAYON_NUM_THREADS=$t taskset -c "$(cpus_for $t)" perf record -F 999 \
        -o "$OUT/perf-${t}t.data" "$CLRTRAIN_BIN" bench --backend flex --steps "$STEPS" \
        --warmup 2 -q > /dev/null 2>&1
      perf script -i "$OUT/perf-${t}t.data" -F tid,time,ip,sym,dso 2>/dev/null \
        | xz -1 > "$OUT/perf-${t}t.txt.xz"
      perf report -i "$OUT/perf-${t}t.data" --no-children --sort sym --stdio 2>/dev/null \
        | grep -E '^ +[0-9]' | head -n 40 | cut -c1-120 > "$OUT/perf-top-${t}t.txt"
    done
    log "perf: $OUT/perf-top-{2,1}t.txt, samples in $OUT/perf-{2,1}t.txt.xz"
  else
    log "perf is not allowed here (perf_event_paranoid or the container); skipped"
  fi
fi
log "done: $OUT"
