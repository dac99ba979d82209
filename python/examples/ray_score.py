"""Scoring a Parquet data set with Ray Data: one riskgrad model per actor, loaded once,
scoring each batch as an Arrow table (no copy into riskgrad, the GIL released).

    python examples/ray_score.py MODEL_DIR DATA_DIR OUT_DIR [--actors 2]

MODEL_DIR is a model directory (riskgrad train --out, or riskgrad.train); DATA_DIR a
directory of Parquet files with the model's columns. The scores (the ID column or row
numbers within each batch, probability_of_default) are written as Parquet to OUT_DIR.
A score's last bits depend on the rows per forward pass, so batches are of
`riskgrad predict`'s 4096 rows: with files whose row counts are multiples of 4096, the
scores are those of `riskgrad predict --data DATA_DIR` bit for bit.
"""

import argparse
import os

import ray

import riskgrad

#: Rows per batch: riskgrad predict's default --batch.
BATCH_ROWS = 4096


#: CPUs each actor is granted, and so the threads it scores with.
ACTOR_CPUS = 1


class Scorer:
    """A Ray actor's scorer: the model is loaded once, when the actor starts, to score on
    as many threads as the actor has CPUs (else every actor spreads over every core)."""

    def __init__(self, model_dir: str, device: str = "auto", threads: int = ACTOR_CPUS):
        self.model = riskgrad.Model.load(model_dir, threads=threads)
        self.device = device

    def __call__(self, batch):
        return self.model.predict(batch, device=self.device, batch_rows=BATCH_ROWS)


def score(model_dir: str, data_dir: str, actors: int, gpus: float = 0.0):
    """The scores of every row of `data_dir` as a Ray Dataset."""
    ds = ray.data.read_parquet(data_dir)
    options = {"num_gpus": gpus} if gpus else {}
    return ds.map_batches(
        Scorer,
        fn_constructor_args=(model_dir, "gpu" if gpus else "cpu", ACTOR_CPUS),
        num_cpus=ACTOR_CPUS,
        batch_format="pyarrow",
        batch_size=BATCH_ROWS,
        concurrency=actors,
        **options,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--actors", type=int, default=2)
    args = ap.parse_args()
    # Each actor holds a CPU; leave at least one to the Parquet reads, or they never run.
    ray.init(num_cpus=max(args.actors + 1, os.cpu_count() or 1), include_dashboard=False)
    # A GPU per actor when the cluster has them (riskgrad picks the adapter itself).
    gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= args.actors else 0.0
    score(args.model, args.data, args.actors, gpus).write_parquet(args.out)


if __name__ == "__main__":
    main()
