"""Scoring a Parquet data set with Spark's mapInArrow (PySpark 3.5+): one riskgrad model
per Python worker, loaded once, scoring each Arrow RecordBatch Spark hands it (no copy
into riskgrad, the GIL released).

    python examples/spark_score.py MODEL_DIR DATA_DIR OUT_DIR [--master local[2]]

MODEL_DIR is a model directory (riskgrad train --out, or riskgrad.train) that every
executor can read (a shared file system); DATA_DIR a directory of Parquet files with the
model's columns. The scores (the model's ID column, or row numbers within each batch,
and probability_of_default) are written as Parquet to OUT_DIR.

A score's last bits depend on the rows per forward pass, so Spark's Arrow batches are
set to `riskgrad predict`'s 4096 rows (spark.sql.execution.arrow.maxRecordsPerBatch):
with files whose row counts are multiples of 4096, the scores are those of
`riskgrad predict --data DATA_DIR` bit for bit.
"""

import argparse
from typing import Dict, Iterator, Tuple

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

import riskgrad

#: Rows per Arrow batch: riskgrad predict's default --batch.
BATCH_ROWS = 4096

#: The models this Python worker has loaded, by directory and threads. Spark reuses its
#: Python workers across tasks (spark.python.worker.reuse, on by default), so a model is
#: read once per worker process, not once per partition.
_MODELS: Dict[Tuple[str, int], riskgrad.Model] = {}


def _model(model_dir: str) -> riskgrad.Model:
    # As many scoring threads as the task has CPUs (spark.task.cpus, 1 by default): each
    # of an executor's task slots runs a worker, and they share the machine's cores.
    threads = TaskContext.get().cpus()
    if (model_dir, threads) not in _MODELS:
        _MODELS[model_dir, threads] = riskgrad.Model.load(model_dir, threads=threads)
    return _MODELS[model_dir, threads]


def scorer(model_dir: str, device: str = "cpu"):
    """The function mapInArrow runs on each partition: Arrow batches in, scores out."""

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = _model(model_dir)
        for batch in batches:
            yield model.predict(batch, device=device, batch_rows=BATCH_ROWS)

    return score_batches


def scores_schema(model_dir: str, data_dir: str):
    """The scores' Spark schema: riskgrad's own, from scoring no rows of the data's schema
    (the ID column's name and type come from the model and the data)."""
    columns = pq.ParquetDataset(data_dir).schema
    empty = pa.RecordBatch.from_pylist([], schema=columns)
    return from_arrow_schema(riskgrad.Model.load(model_dir).predict(empty, device="cpu").schema)


def score(spark: SparkSession, model_dir: str, data_dir: str, device: str = "cpu") -> DataFrame:
    """The scores of every row of `data_dir` as a Spark DataFrame."""
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
    df = spark.read.parquet(data_dir)
    return df.mapInArrow(scorer(model_dir, device), scores_schema(model_dir, data_dir))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--device", default="cpu", help="riskgrad's --device in each worker (cpu, gpu, auto)")
    args = ap.parse_args()
    spark = SparkSession.builder.master(args.master).appName("riskgrad-score").getOrCreate()
    try:
        score(spark, args.model, args.data, args.device).write.mode("overwrite").parquet(args.out)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
