#!/usr/bin/env bash
# Wall time of `train --device auto` (racing lavapipe against the CPU backend under
# RISKGRAD_AUTO_INCLUDE_SOFTWARE=1) against --device cpu and --device gpu, 10 epochs of
# one MLP 64-32 at batch 256 (the default network before members; pinned so that the
# figures in BENCHMARKS.md stay comparable) on the bundled data, in alternating rounds; auto both with a cold cache
# (the race runs) and a warm one (the cached choice). Issue 11 item 5.
# Usage: scripts/device_auto.sh [ROUNDS]   (after `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
rg="$PWD/target/release/riskgrad"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NODEVICE_SELECT=1 RISKGRAD_CACHE_DIR="$work/cache" RISKGRAD_AUTO_INCLUDE_SOFTWARE=1
seconds() {
  local start end
  start=$(date +%s.%N)
  "$rg" train --epochs 10 --early-stop off --members 1 --batch 256 --out "$work/model" "$@" >/dev/null 2>"$work/err"
  end=$(date +%s.%N)
  awk "BEGIN{printf \"%.2f\", $end - $start}"
}
for round in $(seq "$rounds"); do
  rm -rf "$RISKGRAD_CACHE_DIR"
  cold=$(seconds --device auto)
  line=$(grep '^device auto:' "$work/err")
  warm=$(seconds --device auto)
  cpu=$(seconds --device cpu)
  gpu=$(seconds --device gpu)
  echo "round $round: auto cold ${cold}s, auto cached ${warm}s, cpu ${cpu}s, gpu ${gpu}s"
  echo "  $line"
done
uptime
