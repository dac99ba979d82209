#!/usr/bin/env bash
# Renders a training report in headless Chromium and writes a screenshot beside it, to
# look at: scripts/report_screenshot.sh [MODEL_DIR]  (default: trains 5 epochs into
# runs/report-check first). Needs Debian's `chromium` package (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
dir="${1:-runs/report-check}"
if [ ! -f "$dir/report.html" ]; then
  cargo run --quiet -- train --device cpu --epochs 5 --out "$dir"
fi
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 1; }
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2700 \
  --screenshot="$dir/report.png" "file://$(realpath "$dir/report.html")" 2>/dev/null
echo "wrote $dir/report.png"
