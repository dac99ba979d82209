#!/usr/bin/env bash
# Training rows/s of the default MLP on the CPU backend, one thread pinned to one core
# against two threads on two cores, in alternating rounds (issue 11 item 7).
# Usage: scripts/threads_scaling.sh [ROUNDS] [EPOCHS]   (after `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
epochs="${2:-30}"
rg=target/release/riskgrad
rate() { grep -o 'throughput: [0-9]*' | grep -o '[0-9]*$'; }
for round in $(seq "$rounds"); do
  one=$(taskset -c 0 "$rg" bench train --device cpu --threads 1 --epochs "$epochs" 2>&1 | rate)
  two=$(taskset -c 0,1 "$rg" bench train --device cpu --threads 2 --epochs "$epochs" 2>&1 | rate)
  echo "round $round: 1 thread $one rows/s, 2 threads $two rows/s, ratio $(awk "BEGIN{printf \"%.2f\", $two/$one}")"
done
uptime
