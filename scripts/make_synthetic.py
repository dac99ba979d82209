#!/usr/bin/env python3
"""Synthetic credit tables with known structure, for the accuracy benchmark
(BENCHMARKS.md, "Accuracy against baselines"). Deterministic from the seed; numpy only.

  synthetic_linear.csv     2,000 rows: default drawn from a logistic model that is linear
                           in six numeric columns (two of them skewed amounts, one with 15 %
                           missing, missingness itself raising risk) and one 4-level text
                           category; two noise columns. Logistic regression is the right
                           model here.
  synthetic_nonlinear.csv  5,000 rows: the log-odds rise in steps of utilisation, peak in
                           the middle of age (U shape), and an interaction of late payments
                           with income; gradient boosting should beat logistic regression.

Usage: scripts/make_synthetic.py [DIR] [--seed N]
"""
import argparse
import os

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def linear(rng, n):
    income = rng.lognormal(10.5, 0.6, n)
    debt = rng.lognormal(8.5, 1.0, n)
    age = rng.uniform(21, 70, n)
    delinquencies = rng.poisson(0.6, n)
    tenure = rng.uniform(0, 20, n)
    score = rng.normal(650, 60, n)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    region_effect = {"north": 0.0, "south": 0.4, "east": -0.3, "west": 0.8}
    noise1, noise2 = rng.normal(0, 1, n), rng.uniform(0, 1, n)
    z = (
        -1.6
        - 0.6 * (np.log(income) - 10.5) / 0.6
        + 0.5 * (np.log(debt) - 8.5)
        - 0.02 * (age - 45)
        + 0.45 * delinquencies
        - 0.03 * tenure
        - 0.008 * (score - 650)
        + np.vectorize(region_effect.get)(region)
    )
    tenure_missing = rng.uniform(0, 1, n) < 0.15
    z = z + 0.5 * tenure_missing
    y = (rng.uniform(0, 1, n) < sigmoid(z)).astype(int)
    tenure_out = np.where(tenure_missing, np.nan, np.round(tenure, 1))
    return {
        "income": np.round(income, 2),
        "debt": np.round(debt, 2),
        "age": np.round(age).astype(int),
        "delinquencies": delinquencies,
        "tenure_years": tenure_out,
        "bureau_score": np.round(score).astype(int),
        "region": region,
        "noise_a": np.round(noise1, 4),
        "noise_b": np.round(noise2, 4),
        "default": y,
    }


def nonlinear(rng, n):
    utilisation = rng.beta(2, 3, n)
    age = rng.uniform(21, 70, n)
    late = rng.poisson(0.8, n)
    income = rng.lognormal(10.5, 0.5, n)
    months = rng.integers(1, 120, n)
    channel = rng.choice(["branch", "online", "broker"], n, p=[0.5, 0.35, 0.15])
    z = (
        -2.2
        + 1.2 * (utilisation > 0.5)
        + 1.0 * (utilisation > 0.8)
        - 1.0 * np.exp(-(((age - 45) / 10) ** 2))
        + 0.9 * late * (income < np.median(income))
        + 0.1 * late
        - 0.006 * months
        + 0.6 * (channel == "broker")
    )
    y = (rng.uniform(0, 1, n) < sigmoid(z)).astype(int)
    return {
        "utilisation": np.round(utilisation, 4),
        "age": np.round(age).astype(int),
        "late_payments": late,
        "income": np.round(income, 2),
        "months_on_book": months,
        "channel": channel,
        "default": y,
    }


def write(path, columns):
    names = list(columns)
    n = len(columns[names[0]])
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for i in range(n):
            cells = []
            for c in names:
                v = columns[c][i]
                cells.append("" if isinstance(v, float) and np.isnan(v) else str(v))
            f.write(",".join(cells) + "\n")
    print(f"{path}: {n} rows, {np.mean(columns['default']):.3f} positive")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default="tables")
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    write(os.path.join(a.dir, "synthetic_linear.csv"), linear(rng, 2000))
    write(os.path.join(a.dir, "synthetic_nonlinear.csv"), nonlinear(rng, 5000))


if __name__ == "__main__":
    main()
