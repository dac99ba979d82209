"""Rows/s of Model.predict on an in-memory Arrow table against `riskgrad predict` on the
same rows as a Parquet file, for one model (issue 15's target: at least 90 %).

    python scripts/predict_throughput.py MODEL_DIR [--rows 1000000] [--cli PATH] [--device cpu]

The table is the bundled Taiwan data repeated to --rows rows (ids made unique), written
once to a Parquet file for the CLI; each side runs 3 times and the medians are compared.
The CLI's time is its wall time as a process (reading the file, scoring, writing the
scores as Parquet); the package's is the predict call (scores returned as a Table).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import riskgrad

ROOT = Path(__file__).resolve().parents[2]
TAIWAN = ROOT / "data" / "taiwan_default_of_credit_card_clients.csv.gz"


def big_table(rows: int) -> pa.Table:
    base = pacsv.read_csv(TAIWAN)
    reps = -(-rows // base.num_rows)
    table = pa.concat_tables([base] * reps).slice(0, rows).combine_chunks()
    ids = pa.array(range(1, rows + 1), pa.int64())
    return table.set_column(table.schema.get_field_index("ID"), "ID", ids)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cli", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "riskgrad"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    table = big_table(args.rows)
    model = riskgrad.Model.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.parquet"
        pq.write_table(table, data)
        cli_s, py_s = [], []
        for _ in range(args.runs):
            out = Path(tmp) / "scores.parquet"
            t = time.perf_counter()
            subprocess.run([args.cli, "predict", "--model", args.model, "--data", str(data), "--out", str(out), "--device", args.device], check=True, capture_output=True)
            cli_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            scores = model.predict(table, device=args.device)
            py_s.append(time.perf_counter() - t)
        cli_scores = pq.read_table(out)
        same = scores.equals(cli_scores.cast(scores.schema))
    cli_rate = args.rows / statistics.median(cli_s)
    py_rate = args.rows / statistics.median(py_s)
    print(f"rows {args.rows}, device {args.device}, runs {args.runs}")
    print(f"riskgrad predict (Parquet file -> Parquet scores): {[round(s, 2) for s in cli_s]} s, median {cli_rate:,.0f} rows/s")
    print(f"Model.predict (Arrow table -> Arrow table):        {[round(s, 2) for s in py_s]} s, median {py_rate:,.0f} rows/s")
    print(f"ratio package/CLI: {py_rate / cli_rate:.2f}; scores identical: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
