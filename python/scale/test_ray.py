"""Ray Data scoring (examples/ray_score.py) in Ray's local mode over a multi-file
Parquet data set of 1,048,576 rows, against `riskgrad predict` on the same directory:
identical scores, row for row. Prints rows/s for 1 and 2 actors (a figure, not a check).
Run by python/scale.sh, not by CI (Ray is heavy)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import ray

import riskgrad

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "examples"))
import ray_score  # noqa: E402

TAIWAN = ROOT / "data" / "taiwan_default_of_credit_card_clients.csv.gz"
FILES, FILE_ROWS = 16, 65_536  # 1,048,576 rows; each file a multiple of 4096 rows


def cli() -> str:
    return os.environ.get("RISKGRAD_CLI") or str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "riskgrad")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = pacsv.read_csv(TAIWAN)
    reps = -(-FILES * FILE_ROWS // base.num_rows)
    table = pa.concat_tables([base] * reps).slice(0, FILES * FILE_ROWS).combine_chunks()
    table = table.set_column(0, "ID", pa.array(range(1, table.num_rows + 1), pa.int64()))
    d = tmp_path_factory.mktemp("rows")
    for k in range(FILES):
        pq.write_table(table.slice(k * FILE_ROWS, FILE_ROWS), d / f"part-{k:02d}.parquet")
    return d


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    riskgrad.train(TAIWAN, out=out, epochs=1, device="cpu", seed=1)
    return out


def test_ray_scores_are_the_cli_scores(dataset, model_dir, tmp_path):
    cli_out = tmp_path / "cli.parquet"
    started = time.perf_counter()
    subprocess.run([cli(), "predict", "--model", model_dir, "--data", dataset, "--out", cli_out, "--device", "cpu"], check=True)
    cli_seconds = time.perf_counter() - started
    expected = pq.read_table(cli_out).sort_by("ID")
    rows = expected.num_rows
    assert rows == FILES * FILE_ROWS

    # Ray's workers import the Scorer class by its module: put examples/ on their path.
    examples = str(HERE.parent / "examples")
    # Two actors hold a CPU each; the Parquet reads need one more, or they never start.
    ray.init(num_cpus=3, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": examples}})
    try:
        for actors in (1, 2):
            started = time.perf_counter()
            ds = ray_score.score(str(model_dir), str(dataset), actors)
            got = pa.concat_tables(ray.get(ds.to_arrow_refs()))
            seconds = time.perf_counter() - started
            got = got.sort_by("ID")
            assert got.num_rows == rows
            assert got.column("ID").equals(expected.column("ID"))
            # Bit for bit: the same float32 probabilities.
            assert got.column("probability_of_default").equals(expected.column("probability_of_default"))
            print(f"\nray local mode, {actors} actor(s): {rows / seconds:,.0f} rows/s ({seconds:.1f} s, Ray's start of the actors included)")
    finally:
        ray.shutdown()
    print(f"riskgrad predict (one process): {rows / cli_seconds:,.0f} rows/s ({cli_seconds:.1f} s)")
