#!/usr/bin/env bash
# Training rows/s on lavapipe (adapter 0) of one or more riskgrad binaries against Burn
# 0.22's wgpu backend, alternating in one run: ../shared/peers/side_by_side.sh's commands
# for the models in MODELS, Burn warmed by one epoch and each riskgrad binary's tune cache
# filled first by one `--tune full` run.
# Usage: [MODELS="cnn lstm"] [ROUNDS=3] [EPOCHS=3] [BURN=path] scripts/against_burn.sh RISKGRAD [RISKGRAD ...]
set -uo pipefail
export NODEVICE_SELECT=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
BURN=${BURN:-${TMPDIR:-/tmp}/burn-target/release/burn-default}
CSV=data/taiwan_default_of_credit_card_clients.csv.gz
MODELS=${MODELS:-cnn}; ROUNDS=${ROUNDS:-3}; EPOCHS=${EPOCHS:-3}
out=$(mktemp -d)
rg_rate() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['train_rows_per_second']), round(d['validation']['auc'],4))" "$1/metrics.json"; }
burn_rate() { tail -1 "$1" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(round(d.get('steady_samples_per_second') or d['samples_per_second']), round(d.get('val_auc',0),4))"; }
rg() { # binary index, binary, model, epochs, extra flags
  RISKGRAD_CACHE_DIR="$out/cache-$1" "$2" train --data "$CSV" --drop ID --model "$3" --epochs "$4" \
    --batch 256 --device 0 --out "$out/rg-$1-$3" "${@:5}" >/dev/null 2>&1
}
for m in $MODELS; do
  "$BURN" train --csv "$CSV" --model "$m" --backend wgpu --epochs 1 --batch 256 --out "$out/burn-warmup.jsonl" >/dev/null 2>&1
  i=0; for b in "$@"; do i=$((i + 1)); rg $i "$b" "$m" 1 --tune full; done
done
for r in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    "$BURN" train --csv "$CSV" --model "$m" --backend wgpu --epochs "$EPOCHS" --batch 256 --out "$out/burn.jsonl" >/dev/null 2>&1
    line="round $r $m: burn-wgpu $(burn_rate "$out/burn.jsonl")"
    i=0; for b in "$@"; do
      i=$((i + 1)); rg $i "$b" "$m" "$EPOCHS"
      line="$line | riskgrad $i $(rg_rate "$out/rg-$i-$m")"
    done
    echo "$line | load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
rm -rf "$out"
