"""Spark scoring (examples/spark_score.py, mapInArrow) in Spark's local mode over the
multi-file Parquet data set of 1,048,576 rows, against `riskgrad predict` on the same
directory: identical scores, row for row. Prints rows/s with 1 and 2 cores (a figure,
not a check). Needs PySpark 3.5+ and a Java runtime; run by python/scale.sh."""

import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import assert_same_scores

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime for Spark (install default-jre-headless)", allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
import spark_score  # noqa: E402


@pytest.mark.parametrize("cores", [1, 2])
def test_spark_scores_are_the_cli_scores(dataset, model_dir, cli_scores, tmp_path, cores):
    expected, _ = cli_scores
    # Spark's Python workers run this interpreter (the one riskgrad is installed in).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("riskgrad-scale-test")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        # The workers unpickle score_batches by its module: ship the example to them.
        spark.sparkContext.addPyFile(str(EXAMPLES / "spark_score.py"))
        out = tmp_path / "scores"
        started = time.perf_counter()
        spark_score.score(spark, str(model_dir), str(dataset)).write.parquet(str(out))
        seconds = time.perf_counter() - started
    finally:
        spark.stop()
    got = pq.read_table(out)
    assert_same_scores(got, expected)
    print(f"\nspark local[{cores}], mapInArrow: {got.num_rows / seconds:,.0f} rows/s ({seconds:.1f} s, the session's start not included)")
