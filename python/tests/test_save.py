"""Model.save writes a model directory as the CLI does: under the lock beside it, staged
and swapped in whole, refused while another run holds the lock."""

import fcntl
import os

import pytest

import riskgrad
from conftest import TARGET, run_cli


def files_of(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_saving_over_another_model_leaves_the_saved_model_whole(trained, frame, data_csv, tmp_path):
    other = riskgrad.train(data_csv, target=TARGET, out=tmp_path / "m", hidden=[8], epochs=1, device="cpu", seed=9)
    before = files_of(other.directory)
    saved = trained.save(other.directory)
    after = files_of(saved.directory)
    # Every file is the saved model's; none is left of the other one's set.
    for name, data in files_of(trained.directory).items():
        assert after[name] == data, name
    assert after != before
    # The lock is beside the directory, the staging directory gone.
    assert (tmp_path / ".m.riskgrad.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.riskgrad.lock", "m"]
    assert ".riskgrad.lock" not in after
    got = saved.predict(frame, device="cpu")["probability_of_default"].tolist()
    assert got == trained.predict(frame, device="cpu")["probability_of_default"].tolist()


def test_saving_while_another_run_holds_the_lock_fails_as_the_cli_does(trained, data_csv, tmp_path):
    target = tmp_path / "busy"
    saved = trained.save(target)
    before = files_of(target)
    with open(tmp_path / ".busy.riskgrad.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(riskgrad.UsageError) as caught:
            trained.save(target)
        cli = run_cli("train", "--data", data_csv, "--target", TARGET, "--out", target, "--epochs", "1", "--device", "cpu", check=False)
    assert cli.returncode == caught.value.exit_status == 2
    assert "is being written by another riskgrad run" in str(caught.value)
    assert str(caught.value) in cli.stderr
    # The model there is untouched, and saving works once the lock is free.
    assert files_of(target) == before
    assert trained.save(target).columns == saved.columns


def test_saving_a_model_onto_its_own_directory_changes_nothing(trained, frame, tmp_path):
    model = trained.save(tmp_path / "own")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.directory.iterdir()}
    link = tmp_path / "link"
    os.symlink(model.directory, link)
    for where in (model.directory, link):
        again = model.save(where)
        assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.directory.iterdir()} == before
        assert again.predict(frame, device="cpu").equals(model.predict(frame, device="cpu"))


def test_saving_onto_a_file_is_refused(trained, tmp_path):
    path = tmp_path / "file"
    path.write_text("not a model")
    with pytest.raises(riskgrad.RiskgradError, match="not a directory"):
        trained.save(path)
    assert path.read_text() == "not a model"
