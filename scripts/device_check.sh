#!/usr/bin/env bash
# The real-GPU checks issue 11 asks for, as one prepared run for a session that is lent a
# device machine (an NVIDIA H200 with 16 cores, in /work/.library/device): peaks, matmul
# as % of peak, every GEMM variant's time per shape, the three models' training rows/s
# on the GPU and on the same machine's CPU backend, `--device auto`'s choice, and CPU
# thread scaling. On a real GPU a few minutes; on lavapipe, with SIZES=256, about ten.
#
# Here, before the call (a release build, and the Vulkan loader the machine may lack):
#   cargo build --release && mkdir -p .bin && cp target/release/riskgrad .bin/
#   echo /.bin/ >> .git/info/exclude
#   (the .gl packages as /work/.library/device/README.md says)
# The call: carry [".bin", ".gl"], command `bash scripts/device_check.sh`, timeout_s 540.
# Locally (lavapipe): GPU=0 SIZES=256 RG=target/release/riskgrad OUT=/tmp/dc scripts/device_check.sh
#
# Writes at most 8 files to $OUT (the tool's limit): log.txt, peak.json, matmul.json,
# tune.txt, train.json (one line a run), auto.txt, threads.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder the results go to}
mkdir -p "$OUT"
RG=${RG:-.bin/riskgrad}
GPU=${GPU:-gpu}
SIZES=${SIZES:-256,1024,4096}
export NODEVICE_SELECT=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} RISKGRAD_CACHE_DIR=$(mktemp -d)
exec > >(tee "$OUT/log.txt") 2>&1

if [ -d .gl ] && ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
step() { echo; echo "== $* ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"; }

step devices
"$RG" devices || { echo "no adapter: nothing GPU to measure"; exit 1; }
nproc; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv 2>/dev/null

step "bench peak"
"$RG" bench peak --devices "cpu,$GPU" --budget 0.5 --json "$OUT/peak.json"

step "bench matmul (device timestamps; % of the peaks above)"
"$RG" bench matmul --devices "cpu,$GPU" --sizes "$SIZES" --budget 0.5 \
  --peak "$OUT/peak.json" --json "$OUT/matmul.json"

step "bench tune: every GEMM variant per shape of the mlp, cnn and lstm"
"$RG" bench tune --device "$GPU" --sizes "$SIZES" --models mlp,cnn,lstm | tee "$OUT/tune.txt"

step "bench train: the three models, GPU (--tune full: GEMM variants and step forms measured) and CPU backend"
: > "$OUT/train.json"
for model in mlp cnn lstm; do
  for device in "$GPU" cpu; do
    json=$(mktemp)
    "$RG" bench train --model "$model" --device "$device" --epochs 3 --tune full --json "$json" |
      grep -E "throughput|first training step|training step by kernel|^  [A-Z]" | head -8
    tr -d '\n' < "$json" >> "$OUT/train.json"
    echo >> "$OUT/train.json"
  done
done

step "train --device auto: the default model, 10 epochs, one network (as device_auto.sh)"
{
  for run in cold cached; do
    start=$(date +%s.%N)
    "$RG" train --epochs 10 --early-stop off --members 1 --batch 256 --device auto \
      --out "$RISKGRAD_CACHE_DIR/auto-$run" 2>&1 | grep -E "^device auto|^done"
    echo "auto $run: $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}") s"
  done
  for device in cpu "$GPU"; do
    start=$(date +%s.%N)
    "$RG" train --epochs 10 --early-stop off --members 1 --batch 256 --device "$device" \
      --out "$RISKGRAD_CACHE_DIR/fixed-$device" >/dev/null 2>&1
    echo "--device $device: $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}") s"
  done
  # f16 storage against f32 on the GPU: validation AUC and rows/s of one network.
  for precision in f32 f16; do
    "$RG" train --epochs 10 --early-stop off --members 1 --batch 256 --device "$GPU" \
      --precision "$precision" --out "$RISKGRAD_CACHE_DIR/precision-$precision" 2>&1 |
      grep -E "^done" | sed "s/^/--precision $precision: /"
  done
} | tee "$OUT/auto.txt"

step "CPU threads: the default MLP's training rows/s at 1, 2, 4, 8 and all threads"
for threads in 1 2 4 8 $(nproc); do
  echo "threads $threads: $("$RG" bench train --device cpu --threads "$threads" --epochs 10 2>&1 |
    grep -o 'throughput: [0-9]* rows/s')"
done | tee "$OUT/threads.txt"
step done
