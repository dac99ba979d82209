#!/usr/bin/env bash
# Side-by-side figures for BENCHMARKS.md: riskgrad and its peers, one after the other in
# one session on this machine, each pair repeated (ROUNDS) so the medians can be compared.
#
#   PEERS_PY=/path/to/venv/bin/python scripts/bench_peers.sh [OUTDIR]
#
# PEERS_PY: a Python with ../shared/peers/requirements.txt installed (torch, numpy).
# Prints one line per run and keeps every JSON/text output under OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
PY="${PEERS_PY:-python3}"
PEERS="${PEERS_DIR:-../shared/peers}"
CSV="$PEERS/../data/taiwan_default_of_credit_card_clients.csv.gz"
OUT="${1:-runs/bench-peers}"
ROUNDS="${ROUNDS:-3}"
mkdir -p "$OUT"
cargo build --release --quiet --examples --bin riskgrad
rg=target/release/riskgrad

for round in $(seq "$ROUNDS"); do
  echo "== round $round (load $(cut -d' ' -f1 /proc/loadavg))"
  "$rg" bench matmul --devices cpu --sizes 256,512,1024,2048 | tee -a "$OUT/matmul-riskgrad.txt"
  OPENBLAS_CORETYPE= OPENBLAS_L2_SIZE= "$PY" "$PEERS/matmul_peer.py" --libs numpy --sizes 256 512 1024 2048 | tee -a "$OUT/matmul-numpy.jsonl" | grep -o '"size": [0-9]*\|"gflops": [0-9.]*' | paste - - || true
  "$rg" bench train --device cpu --peer-features | tee -a "$OUT/mlp-riskgrad-peer-features.txt" | grep rows/s
  "$rg" bench train --device cpu | tee -a "$OUT/mlp-riskgrad.txt" | grep -E "rows/s|resident"
  "$PY" "$PEERS/torch_default.py" --csv "$CSV" --model mlp --batch 256 | tee -a "$OUT/mlp-torch.jsonl" | grep -o '"steady_samples_per_second": [0-9.]*\|"samples_per_second": [0-9.]*\|"peak_rss_mb": [0-9.]*' | paste - - -
  target/release/examples/train_cnn 10 | tee -a "$OUT/cnn-riskgrad.txt" | tail -1
  "$PY" "$PEERS/torch_default.py" --csv "$CSV" --model cnn --batch 256 | tee -a "$OUT/cnn-torch.jsonl" | grep -o '"samples_per_second": [0-9.]*\|"val_auc": [0-9.]*' | paste - -
  if [ -x target/release/examples/train_lstm ]; then
    target/release/examples/train_lstm 10 | tee -a "$OUT/lstm-riskgrad.txt" | tail -1
    "$PY" "$PEERS/torch_default.py" --csv "$CSV" --model lstm --batch 256 | tee -a "$OUT/lstm-torch.jsonl" | grep -o '"samples_per_second": [0-9.]*\|"val_auc": [0-9.]*' | paste - -
  fi
done
