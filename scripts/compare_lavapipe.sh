#!/usr/bin/env bash
# Training rows/s on lavapipe (adapter 0) of two riskgrad binaries, alternating, with
# separate warm tune caches (each filled first by one run with every shape tuned): the
# default MLP, the LSTM and the CNN, or the models named in MODELS.
# TUNE=off compares the default kernels alone (no tuner choices, which a noisy fill can
# make differently for the two binaries).
# Usage: [MODELS="cnn"] [TUNE=off] scripts/compare_lavapipe.sh OLD_BINARY NEW_BINARY [ROUNDS]
set -euo pipefail
old="$1"; new="$2"; rounds="${3:-3}"
caches="$(mktemp -d)"
rate() { grep -o 'throughput: [0-9]*' | grep -o '[0-9]*$'; }
models="${MODELS:-mlp lstm cnn}"
run() { RISKGRAD_CACHE_DIR="$caches/$1" "$2" bench train --device 0 --model "$3" --epochs "$4" "${@:5}" 2>&1; }
for m in $models; do # fill both tune caches first
  run old "$old" "$m" 1 --tune full >/dev/null
  run new "$new" "$m" 1 --tune full >/dev/null
done
for round in $(seq "$rounds"); do
  for m in $models; do
    e=3; [ "$m" = lstm ] && e=2
    o=$(run old "$old" "$m" "$e" --tune "${TUNE:-cached}" | rate)
    n=$(run new "$new" "$m" "$e" --tune "${TUNE:-cached}" | rate)
    echo "round $round $m: old $o new $n ratio $(awk "BEGIN{printf \"%.2f\", $n/$o}")"
  done
done
uptime
rm -rf "$caches"
