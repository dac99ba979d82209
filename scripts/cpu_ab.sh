#!/usr/bin/env bash
# Training rows/s of the MLP on the CPU backend, two riskgrad binaries in alternating
# rounds, pinned with taskset: prints the rounds with the smallest, median and largest
# ratio (new/old) as "old new ratio".
# Usage: scripts/cpu_ab.sh OLD NEW [ROUNDS] [EPOCHS] [THREADS] [CORES] [bench train flags...]
#   e.g. scripts/cpu_ab.sh /tmp/old/riskgrad target/release/riskgrad 11 100 2 0,1 --peer-features
set -euo pipefail
old="$1"; new="$2"; rounds="${3:-11}"; epochs="${4:-100}"; threads="${5:-1}"; cores="${6:-0}"
shift $(( $# < 6 ? $# : 6 ))
rate() { grep -o 'throughput: [0-9]*' | grep -o '[0-9]*$'; }
for _ in $(seq "$rounds"); do
  o=$(taskset -c "$cores" "$old" bench train --model mlp "$@" --threads "$threads" --epochs "$epochs" 2>&1 | rate)
  n=$(taskset -c "$cores" "$new" bench train --model mlp "$@" --threads "$threads" --epochs "$epochs" 2>&1 | rate)
  echo "$o $n $(awk "BEGIN{printf \"%.3f\", $n/$o}")"
done | sort -k3 -n | awk '{r[NR]=$0} END{print "min " r[1] " | median " r[int((NR+1)/2)] " | max " r[NR]}'
uptime
