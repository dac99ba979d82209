"""What the scale-out tests share: a multi-file Parquet data set of 1,048,576 rows, a
model trained on the bundled data, and `riskgrad predict`'s scores of every row (the
reference each engine's scores must equal bit for bit, and the rows/s it is measured
against)."""

import os
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import riskgrad

ROOT = Path(__file__).resolve().parents[2]
TAIWAN = ROOT / "data" / "taiwan_default_of_credit_card_clients.csv.gz"
FILES, FILE_ROWS = 16, 65_536  # 1,048,576 rows; each file a multiple of 4096 rows


def cli() -> str:
    """The riskgrad binary to compare against: $RISKGRAD_CLI, else the debug build."""
    return os.environ.get("RISKGRAD_CLI") or str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "riskgrad")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    base = pacsv.read_csv(TAIWAN)
    reps = -(-FILES * FILE_ROWS // base.num_rows)
    table = pa.concat_tables([base] * reps).slice(0, FILES * FILE_ROWS).combine_chunks()
    table = table.set_column(0, "ID", pa.array(range(1, table.num_rows + 1), pa.int64()))
    d = tmp_path_factory.mktemp("rows")
    for k in range(FILES):
        pq.write_table(table.slice(k * FILE_ROWS, FILE_ROWS), d / f"part-{k:02d}.parquet")
    return d


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    riskgrad.train(TAIWAN, out=out, epochs=1, device="cpu", seed=1)
    return out


@pytest.fixture(scope="session")
def cli_scores(dataset, model_dir, tmp_path_factory):
    """`riskgrad predict`'s scores of every row, sorted by ID, and its rows/s."""
    out = tmp_path_factory.mktemp("cli") / "cli.parquet"
    started = time.perf_counter()
    subprocess.run([cli(), "predict", "--model", model_dir, "--data", dataset, "--out", out, "--device", "cpu"], check=True)
    seconds = time.perf_counter() - started
    expected = pq.read_table(out).sort_by("ID")
    assert expected.num_rows == FILES * FILE_ROWS
    rate = expected.num_rows / seconds
    print(f"\nriskgrad predict (one process, every core): {rate:,.0f} rows/s ({seconds:.1f} s)")
    # Per core: the CLI on one thread, the figure an actor or task of one CPU compares to.
    started = time.perf_counter()
    one = dict(os.environ, RAYON_NUM_THREADS="1")
    subprocess.run([cli(), "predict", "--model", model_dir, "--data", dataset, "--out", out, "--device", "cpu"], check=True, env=one)
    seconds = time.perf_counter() - started
    print(f"riskgrad predict (one thread): {expected.num_rows / seconds:,.0f} rows/s ({seconds:.1f} s)")
    return expected, rate


def assert_same_scores(got: pa.Table, expected: pa.Table) -> None:
    """The same rows with the same float32 probabilities, bit for bit."""
    got = got.sort_by("ID")
    assert got.num_rows == expected.num_rows
    assert got.column("ID").equals(expected.column("ID"))
    assert got.column("probability_of_default").equals(expected.column("probability_of_default"))
