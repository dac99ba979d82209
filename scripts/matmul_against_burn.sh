#!/usr/bin/env bash
# matmul 1024³ GFLOP/s on lavapipe (adapter 0): Burn 0.22's wgpu backend, then each
# riskgrad binary tuning afresh (`--tune full`, an empty tune cache), alternating, one
# line a round with the variant each riskgrad run chose.
# Usage: [ROUNDS=5] [BURN=path] scripts/matmul_against_burn.sh RISKGRAD [RISKGRAD ...]
set -uo pipefail
export NODEVICE_SELECT=1
BURN=${BURN:-${TMPDIR:-/tmp}/burn-target/release/burn-default}
ROUNDS=${ROUNDS:-5}
for r in $(seq "$ROUNDS"); do
  burn=$("$BURN" matmul --backends wgpu --sizes 1024 --min-reps 3 --max-reps 5 2>/dev/null |
    tail -1 | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['gflops']['1024'])")
  line="round $r: burn-wgpu $burn"
  i=0; for bin in "$@"; do
    i=$((i + 1)); cache=$(mktemp -d)
    # "matmul VARIANT 1024x1024x1024 ADAPTER ... X GFLOP/s ...": the variant and X.
    got=$(RISKGRAD_CACHE_DIR="$cache" "$bin" bench matmul --devices gpu --sizes 1024 \
      --budget 0.5 --no-peak --tune full 2>/dev/null | grep '^matmul' |
      sed -E 's/^matmul ([^ ]+) .* ([0-9.]+) GFLOP\/s.*/\1 \2/')
    line="$line | riskgrad $i $got"; rm -rf "$cache"
  done
  echo "$line | load $(cut -d' ' -f1 /proc/loadavg)"
done
