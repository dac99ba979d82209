#!/usr/bin/env bash
# Cold and warm start on a GPU adapter, alternating binaries: for each round and each
# binary, fresh Mesa shader and riskgrad caches, `bench train --epochs 1 --tune cached`
# twice (cold, then on the caches the first run left), and the "process start to end of
# first training step" seconds of each (BENCHMARKS.md, "Subgroup split-K and the
# flat kernels' widths").
#   ROUNDS=3 DEVICE=0 scripts/cold_start.sh OLD_BINARY NEW_BINARY ...
set -euo pipefail
export NODEVICE_SELECT=1
rounds=${ROUNDS:-3}
device=${DEVICE:-0}
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
first_step() {
  "$@" bench train --device "$device" --epochs 1 --tune cached 2>&1 |
    sed -n 's/.*process start to end of first training step: \([0-9.]*\) s.*/\1/p'
}
for round in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    caches=$(mktemp -d)
    export MESA_SHADER_CACHE_DIR=$caches/mesa RISKGRAD_CACHE_DIR=$caches/riskgrad
    cold=$(first_step "$bin")
    warm=$(first_step "$bin")
    echo "round $round  $bin  cold ${cold} s  warm ${warm} s  load $(cut -d' ' -f1 /proc/loadavg)"
    rm -rf "$caches"
  done
done
