"""A model keeps its executor and plans across predict calls (one per batch, as Ray and
Spark call it), and scores on its own pool with threads=N: neither changes a score."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import riskgrad
from conftest import run_cli


def probabilities(model, table):
    return model.predict(table, device="cpu")["probability_of_default"].to_pylist()


def test_repeated_calls_of_many_sizes_score_as_a_fresh_model(trained, frame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    model = riskgrad.Model.load(trained.directory)
    # More sizes than the kept plans hold, each twice, interleaved: kept plans, new
    # plans and the fallback executor all score as a model loaded for that one call.
    sizes = [4096, 1000, 37, 512, 999, 5, 1000, 37, 4096, 5]
    for n in sizes:
        part = table.slice(0, n)
        fresh = riskgrad.Model.load(trained.directory)
        assert probabilities(model, part) == probabilities(fresh, part), n


def test_a_model_with_its_own_threads_scores_as_the_cli(trained, frame, data_csv, tmp_path):
    out = tmp_path / "cli.parquet"
    run_cli("predict", "--model", trained.directory, "--data", data_csv, "--out", out, "--device", "cpu")
    expected = pq.read_table(out).column("probability_of_default").to_pylist()
    for threads in (1, 3):
        model = riskgrad.Model.load(trained.directory, threads=threads)
        assert model.predict(frame, device="cpu")["probability_of_default"].tolist() == expected
        assert model.save(tmp_path / f"t{threads}")._threads == threads


def test_thread_counts_the_cli_refuses_are_refused(trained):
    for n in (0, 1025):
        with pytest.raises(riskgrad.UsageError, match=f"threads.*{n} must be between 1 and 1024"):
            riskgrad.Model.load(trained.directory, threads=n)
