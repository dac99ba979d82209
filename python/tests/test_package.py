"""The riskgrad package against the riskgrad CLI: the same model directory, the same
scores, the same messages."""

import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import riskgrad
from conftest import TARGET, run_cli


def cli_scores(model_dir, data, tmp_path, *extra):
    """`riskgrad predict` on `data` into Parquet, read back as a pyarrow Table."""
    out = tmp_path / "cli_scores.parquet"
    run_cli("predict", "--model", model_dir, "--data", data, "--out", out, "--device", "cpu", *extra)
    return pq.read_table(out)


def test_train_writes_the_cli_model_directory(trained):
    names = {p.name for p in trained.directory.iterdir()}
    for f in ["model.safetensors", "config.json", "metrics.json", "stability.json", "model_card.md", "report.html"]:
        assert f in names, f
    metrics = trained.metrics
    assert 0.6 < metrics["validation"]["auc"] <= 1.0
    assert trained.columns[0] == "LIMIT_BAL" and "ID" not in trained.columns


def test_predict_returns_the_kind_it_is_given_with_the_cli_scores(trained, frame, data_csv, cli, tmp_path):
    expected = cli_scores(trained.directory, data_csv, tmp_path)
    table = pa.Table.from_pandas(frame, preserve_index=False)

    got_table = trained.predict(table, device="cpu")
    assert isinstance(got_table, pa.Table)
    assert got_table.schema.names == expected.schema.names == ["ID", "probability_of_default"]
    # Bit for bit: the same f32 probabilities, the same ids, in the same order.
    assert got_table.equals(expected.cast(got_table.schema))

    # The rows per forward pass (--batch) change the last bits of a score (the GEMM's
    # blocking), so the CLI is given the same.
    got_batch = trained.predict(table.to_batches()[0].slice(0, 700), device="cpu", batch_rows=256)
    assert isinstance(got_batch, pa.RecordBatch)
    assert got_batch.num_rows == 700
    by_256 = cli_scores(trained.directory, data_csv, tmp_path, "--batch", "256")
    assert got_batch.column(1).to_pylist() == by_256.column(1).to_pylist()[:700]
    assert got_batch.column(0).to_pylist() == by_256.column(0).to_pylist()[:700]

    got_frame = trained.predict(frame, device="cpu")
    assert isinstance(got_frame, pd.DataFrame)
    assert got_frame["probability_of_default"].tolist() == expected.column(1).to_pylist()
    assert got_frame["ID"].tolist() == expected.column(0).to_pylist()


def test_predict_points_and_row_numbers_as_the_cli_writes_them(trained, frame, tmp_path):
    no_id = frame.drop(columns=["ID"]).iloc[::7]
    path = tmp_path / "no_id.parquet"
    pq.write_table(pa.Table.from_pandas(no_id, preserve_index=False), path)
    expected = cli_scores(trained.directory, path, tmp_path, "--points", "600:50:20")
    got = trained.predict(pa.Table.from_pandas(no_id, preserve_index=False), points="600:50:20", device="cpu")
    assert got.schema.names == ["row", "probability_of_default", "points"]
    assert got.column("row").type == pa.int64()
    assert got.equals(expected.cast(got.schema))


def test_a_dataframe_trains_the_model_its_csv_trains(frame, data_csv, tmp_path):
    opts = dict(target=TARGET, hidden=[8], epochs=2, device="cpu", seed=5)
    from_frame = riskgrad.train(frame, out=tmp_path / "f", **opts)
    from_csv = riskgrad.train(data_csv, out=tmp_path / "c", **opts)
    a = (from_frame.directory / "model.safetensors").read_bytes()
    b = (from_csv.directory / "model.safetensors").read_bytes()
    assert a == b


def test_errors_are_exceptions_with_the_cli_message(trained, frame, data_csv, tmp_path):
    # A missing input column: a DataError naming it, as the CLI's does.
    broken = frame.drop(columns=["LIMIT_BAL"])
    with pytest.raises(riskgrad.DataError, match="the model needs columns \\[\"LIMIT_BAL\"\\]") as e:
        trained.predict(broken, device="cpu")
    assert e.value.exit_status == 3
    # A bad option: a UsageError with the very message the CLI prints.
    with pytest.raises(riskgrad.UsageError) as e:
        riskgrad.train(data_csv, target=TARGET, out=tmp_path / "x", lr=-1)
    cli = run_cli("train", "--data", data_csv, "--target", TARGET, "--out", tmp_path / "y", "--lr=-1", check=False)
    assert cli.returncode == e.value.exit_status == 2
    assert f"error: {e.value}" in cli.stderr
    # An unknown target column: a DataError, exit status 3 on the command line too.
    with pytest.raises(riskgrad.RiskgradError) as e:
        riskgrad.train(data_csv, target="no such column", out=tmp_path / "z")
    cli = run_cli("train", "--data", data_csv, "--target", "no such column", "--out", tmp_path / "w", check=False)
    assert cli.returncode == e.value.exit_status
    assert f"error: {e.value}" in cli.stderr
    # A model directory that is not there.
    with pytest.raises(riskgrad.ModelError, match="does not exist"):
        riskgrad.Model.load(tmp_path / "nowhere")
    # Neither a path nor a frame.
    with pytest.raises(TypeError):
        trained.predict([1, 2, 3])


def test_save_and_load_round_trip_with_the_cli(trained, frame, data_csv, tmp_path):
    saved = trained.save(tmp_path / "saved")
    # The CLI reads the directory the package saved ...
    cli_from_saved = cli_scores(saved.directory, data_csv, tmp_path)
    assert saved.predict(frame, device="cpu")["probability_of_default"].tolist() == cli_from_saved.column(1).to_pylist()
    # ... and the package reads one the CLI trained.
    cli_model = tmp_path / "cli_model"
    run_cli("train", "--data", data_csv, "--target", TARGET, "--out", cli_model, "--hidden", "8", "--epochs", "2", "--device", "cpu")
    loaded = riskgrad.Model.load(cli_model)
    expected = cli_scores(cli_model, data_csv, tmp_path)
    got = loaded.predict(pa.Table.from_pandas(frame, preserve_index=False), device="cpu")
    assert got.equals(expected.cast(got.schema))


def test_evaluate_and_explain_return_the_cli_json(trained, data_csv):
    figures = trained.evaluate(data_csv, device="cpu", bootstrap=50)
    cli = json.loads(run_cli("eval", "--model", trained.directory, "--data", data_csv, "--json", "--device", "cpu", "--bootstrap", "50").stdout)
    assert figures == cli
    assert figures["rows_scored"] == "validation" and 0.5 < figures["auc"] <= 1.0

    reasons = trained.explain(data_csv, rows=5, top=2, steps=16, device="cpu")
    cli = json.loads(run_cli("explain", "--model", trained.directory, "--data", data_csv, "--rows", "5", "--top", "2", "--steps", "16", "--json", "--device", "cpu").stdout)
    assert reasons == cli
    assert len(reasons["rows"]) == 5


def test_devices_lists_the_cpu_backend_and_the_cli_adapters(cli):
    found = riskgrad.devices()
    assert found[-1]["index"] == "cpu" and found[-1]["threads"] >= 1
    listed = run_cli("devices").stdout
    for d in found[:-1]:
        assert f"[{d['index']}] {d['name']}" in listed


def test_errors_about_a_table_in_memory_name_it_not_its_temporary_file(trained, frame, tmp_path):
    # The table reaches the CLI as a temporary Parquet file; the message names the
    # DataFrame the caller passed.
    unlabelled = frame.assign(**{TARGET: float("nan")})
    with pytest.raises(riskgrad.DataError) as e:
        riskgrad.train(unlabelled, target=TARGET, out=tmp_path / "n", device="cpu")
    assert e.value.exit_status == 3
    assert "the pandas DataFrame" in str(e.value) and "data.parquet" not in str(e.value)
    # What the model records as its data is the DataFrame too, not a file that is gone.
    model = riskgrad.train(frame, target=TARGET, out=tmp_path / "named", device="cpu", epochs=1)
    assert model.metrics["data"] == "the pandas DataFrame"
    assert "data.parquet" not in (model.directory / "model_card.md").read_text()
    # A column pyarrow cannot type (text among numbers) is a DataError too, not
    # pyarrow's own exception.
    mixed = frame.copy()
    mixed["LIMIT_BAL"] = mixed["LIMIT_BAL"].astype(object)
    mixed.loc[mixed.index[3], "LIMIT_BAL"] = "n/a"
    with pytest.raises(riskgrad.DataError, match="LIMIT_BAL") as e:
        trained.predict(mixed, device="cpu")
    assert e.value.exit_status == 3
