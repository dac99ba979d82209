"""Ray Data scoring (examples/ray_score.py) in Ray's local mode over a multi-file
Parquet data set of 1,048,576 rows, against `riskgrad predict` on the same directory:
identical scores, row for row. Prints rows/s for 1 and 2 actors (a figure, not a check).
Run by python/scale.sh, not by CI (Ray is heavy)."""

import os
import statistics
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

#: Runs of each actor count; the median is reported (the figures vary run to run).
REPEATS = int(os.environ.get("RISKGRAD_SCALE_REPEATS", "3"))


def test_ray_scores_are_the_cli_scores(dataset, model_dir, cli_scores):
    expected, _ = cli_scores
    # Ray's workers import the Scorer class by its module: put examples/ on their path.
    examples = str(HERE.parent / "examples")
    env = {"PYTHONPATH": examples}
    if os.environ.get("RAYON_NUM_THREADS"):
        env["RAYON_NUM_THREADS"] = os.environ["RAYON_NUM_THREADS"]
    # Two actors hold a CPU each; the Parquet reads need one more, or they never start.
    ray.init(num_cpus=3, include_dashboard=False, runtime_env={"env_vars": env})
    try:
        rates = {}
        for actors in (1, 2):
            runs = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                ds = ray_score.score(str(model_dir), str(dataset), actors)
                got = pa.concat_tables(ray.get(ds.to_arrow_refs()))
                runs.append(got.num_rows / (time.perf_counter() - started))
                assert_same_scores(got, expected)
            rates[actors] = statistics.median(runs)
            print(f"\nray local mode, {actors} actor(s): {rates[actors]:,.0f} rows/s, the median of {', '.join(f'{r:,.0f}' for r in runs)} (Ray's start of the actors included)")
        print(f"2 actors / 1 actor: {rates[2] / rates[1]:.2f}x; load average {os.getloadavg()[0]:.1f}")
    finally:
        ray.shutdown()
