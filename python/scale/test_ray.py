"""Ray Data scoring (examples/ray_score.py) in Ray's local mode over a multi-file
Parquet data set of 1,048,576 rows, against `riskgrad predict` on the same directory:
identical scores, row for row. Prints rows/s for 1 and 2 actors (a figure, not a check).
Run by python/scale.sh, not by CI (Ray is heavy)."""

import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import assert_same_scores

ray = pytest.importorskip("ray")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
import ray_score  # noqa: E402


def test_ray_scores_are_the_cli_scores(dataset, model_dir, cli_scores):
    expected, _ = cli_scores
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
            assert_same_scores(got, expected)
            print(f"\nray local mode, {actors} actor(s): {got.num_rows / seconds:,.0f} rows/s ({seconds:.1f} s, Ray's start of the actors included)")
    finally:
        ray.shutdown()
