#!/usr/bin/env bash
# The heavy scale-out checks, not run by CI: build the wheel (as ci.sh does), install it
# with Ray Data and PySpark into a fresh virtual environment, and run python/scale (Ray
# local mode and Spark local mode over a 1,048,576-row multi-file Parquet data set,
# against `riskgrad predict`). Spark needs a Java runtime (17 or later for PySpark 4):
# installed here from the Debian packages when there is none.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/riskgrad-scale.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m venv "$WORK/venv"
VENV_PY="$WORK/venv/bin/python"
if ! command -v java >/dev/null && command -v apt-get >/dev/null; then
    apt-get install -y -q --no-install-recommends default-jre-headless >/dev/null
fi
"$VENV_PY" -m pip install -q "maturin>=1.5,<2" pytest pandas pyarrow "ray[data]" "pyspark>=3.5"
CLI="$CARGO_TARGET_DIR/debug/riskgrad"
[ -x "$CLI" ] || cargo build --manifest-path "$ROOT/Cargo.toml" --bin riskgrad
"$WORK/venv/bin/maturin" build --profile dev --interpreter "$VENV_PY" --out "$WORK/dist"
"$VENV_PY" -m pip install -q "$WORK"/dist/riskgrad-*.whl
cd "$WORK"
RISKGRAD_CLI="$CLI" "$VENV_PY" -m pytest -q -s "$ROOT/python/scale"
