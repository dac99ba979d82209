#!/usr/bin/env bash
# The Python package's CI: build the abi3 wheel with maturin (dev profile, in the
# cargo target directory the root build uses, so the dependencies compiled for
# `cargo test` are reused), install it into a fresh virtual environment with pytest,
# pandas and pyarrow from PyPI, and run python/tests against the CLI that `cargo build`
# made. Run from anywhere; .ci/run calls it after `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/riskgrad-py.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

started=$(date +%s)
"$PYTHON" -m venv "$WORK/venv"
VENV_PY="$WORK/venv/bin/python"
"$VENV_PY" -m pip install -q --upgrade pip
"$VENV_PY" -m pip install -q "maturin>=1.5,<2" pytest pandas pyarrow

cargo fmt --manifest-path Cargo.toml --check
cargo clippy --manifest-path Cargo.toml -- -D warnings
# The CLI the tests compare against: the one `cargo test` built (a `cargo build` now
# would compile wgpu again, without the dev-dependencies' features), else build it.
CLI="$CARGO_TARGET_DIR/debug/riskgrad"
[ -x "$CLI" ] || cargo build --manifest-path "$ROOT/Cargo.toml" --bin riskgrad
"$WORK/venv/bin/maturin" build --profile dev --interpreter "$VENV_PY" --out "$WORK/dist"
"$VENV_PY" -m pip install -q "$WORK"/dist/riskgrad-*.whl
# From outside python/, so the tests import the installed wheel, not the sources.
cd "$WORK"
RISKGRAD_CLI="$CLI" "$VENV_PY" -m pytest -q "$ROOT/python/tests"
echo "python package: built, installed and tested in $(( $(date +%s) - started ))s"
