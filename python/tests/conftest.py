"""Shared fixtures: a small slice of the bundled Taiwan data, the riskgrad CLI binary
(RISKGRAD_CLI, else the debug build under CARGO_TARGET_DIR or ../target), and one
model trained once per session."""

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import riskgrad

ROOT = Path(__file__).resolve().parents[2]
TAIWAN = ROOT / "data" / "taiwan_default_of_credit_card_clients.csv.gz"
TARGET = "default payment next month"
#: Rows of the slice: enough to train a model that ranks, few enough for seconds.
ROWS = 3000


def cli_path() -> Path:
    if os.environ.get("RISKGRAD_CLI"):
        return Path(os.environ["RISKGRAD_CLI"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "riskgrad"


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the riskgrad CLI; its output as text."""
    done = subprocess.run(
        [str(cli_path()), *map(str, args)], capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise AssertionError(f"riskgrad {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@pytest.fixture(scope="session")
def cli() -> Path:
    path = cli_path()
    if not path.exists():
        pytest.fail(f"the riskgrad CLI is not at {path}: build it (cargo build) or set RISKGRAD_CLI")
    return path


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """The first ROWS rows of the bundled data, as pandas reads them."""
    return pd.read_csv(TAIWAN, nrows=ROWS)


@pytest.fixture(scope="session")
def data_csv(tmp_path_factory, frame) -> Path:
    """The slice as a CSV file, as pandas writes it."""
    path = tmp_path_factory.mktemp("data") / "slice.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_csv) -> riskgrad.Model:
    """A small mlp trained from the CSV slice on the CPU backend."""
    out = tmp_path_factory.mktemp("model") / "m"
    return riskgrad.train(
        data_csv, target=TARGET, out=out, hidden=[16], epochs=3, device="cpu", seed=3
    )
