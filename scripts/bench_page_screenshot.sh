#!/usr/bin/env bash
# Renders the page of `riskgrad bench all` in headless Chromium and writes a screenshot
# beside it, to look at: scripts/bench_page_screenshot.sh [DIR]  (default: a short
# `bench all` into runs/bench-all first). Needs Debian's `chromium` package.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
dir="${1:-runs/bench-all}"
if [ ! -f "$dir/index.html" ]; then
  cargo run --release --quiet -- bench all --out "$dir" --suites peak,matmul,pool,train \
    --models mlp,gru --epochs 1 --budget 0.1
fi
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 1; }
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2600 \
  --screenshot="$dir/index.png" "file://$(realpath "$dir/index.html")" 2>/dev/null
echo "wrote $dir/index.png"
