#!/usr/bin/env python3
"""Baselines on the same rows riskgrad trains and scores: per fold, the ROC-AUC of
logistic regression (numeric: median imputation + missing indicators, standardised; text:
one-hot; L2, C = 1) and of scikit-learn's HistGradientBoostingClassifier (defaults, text
columns as native categories), then mean ± std per model.

The folds come from one of:
  --folds FILE           a CSV of `row,fold` (0-based data row, fold id), as
                         `riskgrad train --cv K` writes OUT/folds.csv; each fold is held
                         out in turn, the model trained on all other rows listed;
  --riskgrad-split SEED  riskgrad's own single stratified validation split for --seed SEED
                         (and --val-split), reproduced here bit for bit (SplitMix64 and
                         Fisher-Yates, as src/rng.rs and src/data/split.rs): one fold, the
                         validation rows, trained on the training rows;
  --k K                  stratified K-fold of this script's own (scikit-learn, seed 0).

For scripts only: riskgrad itself never depends on Python.

Usage: scripts/baselines.py FILE --target COL [--folds F | --riskgrad-split S | --k K]
           [--categorical A,B] [--drop A,B] [--positive VALUE] [--json]
"""
import argparse
import json
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
POSITIVE = {"1", "1.0", "yes", "y", "true", "t", "bad", "default"}


class SplitMix64:
    """riskgrad's Rng (src/rng.rs)."""

    def __init__(self, seed):
        self.state = (seed ^ GOLDEN) & MASK

    def next_u64(self):
        self.state = (self.state + GOLDEN) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.next_u64() % (i + 1)
            items[i], items[j] = items[j], items[i]


def riskgrad_split(y, val_fraction, seed):
    """Validation positions as riskgrad's stratified_split picks them."""
    val = []
    for positive in (False, True):
        rows = [i for i, v in enumerate(y) if (v > 0.5) == positive]
        SplitMix64(seed).shuffle(rows)
        n_val = min(int(np.floor(val_fraction * len(rows) + 0.5)), len(rows))
        val.extend(rows[:n_val])
    return sorted(val)


def labels(series, positive):
    text = series.astype(str).str.strip().str.lower()
    missing = series.isna() | text.isin(["", "na", "nan", "null", "none", "?"])
    if positive is not None:
        y = (text == positive.lower()).astype(float)
    else:
        values = set(text[~missing])
        pos = values & POSITIVE
        if len(values) != 2 or len(pos) != 1:
            sys.exit(f"target values {sorted(values)}: say which is positive with --positive")
        y = (text == pos.pop()).astype(float)
    y[missing] = np.nan
    return y


def models(numeric, categorical):
    lr = make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                      StandardScaler()), numeric),
                ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                      OneHotEncoder(handle_unknown="ignore")), categorical),
            ]
        ),
        LogisticRegression(C=1.0, max_iter=5000),
    )
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    return {"logistic": lr, "hist_gradient_boosting": hgb}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--target", required=True)
    ap.add_argument("--positive")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--folds")
    src.add_argument("--riskgrad-split", type=int, metavar="SEED")
    src.add_argument("--k", type=int, default=5)
    ap.add_argument("--val-split", type=float, default=0.2)
    ap.add_argument("--categorical", default="", help="numeric columns to one-hot")
    ap.add_argument("--drop", default="", help="columns to leave out (IDs)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    df = pd.read_csv(a.file, keep_default_na=True, na_values=["?", "NA"])
    df.columns = [c.strip() for c in df.columns]
    y_all = labels(df[a.target], a.positive).to_numpy()
    drop = [c for c in a.drop.split(",") if c] + [a.target]
    X = df.drop(columns=drop)
    forced = [c for c in a.categorical.split(",") if c]
    categorical = [c for c in X.columns
                   if not pd.api.types.is_numeric_dtype(X[c]) or c in forced]
    numeric = [c for c in X.columns if c not in categorical]
    for c in categorical:
        X[c] = X[c].astype(str).where(X[c].notna(), None).astype("category")

    labelled = np.flatnonzero(~np.isnan(y_all))  # riskgrad leaves unlabelled rows out
    if a.folds:
        f = pd.read_csv(a.folds)
        rows, fold = f.iloc[:, 0].to_numpy(), f.iloc[:, 1].to_numpy()
        splits = [(rows[fold != k], rows[fold == k]) for k in sorted(set(fold))]
        how = f"folds from {a.folds}"
    elif a.riskgrad_split is not None:
        val_pos = riskgrad_split(list(y_all[labelled]), a.val_split, a.riskgrad_split)
        is_val = np.zeros(len(labelled), bool)
        is_val[val_pos] = True
        splits = [(labelled[~is_val], labelled[is_val])]
        how = f"riskgrad's validation split (seed {a.riskgrad_split}, {a.val_split})"
    else:
        skf = StratifiedKFold(a.k, shuffle=True, random_state=0)
        splits = [(labelled[t], labelled[v]) for t, v in skf.split(labelled, y_all[labelled])]
        how = f"stratified {a.k}-fold (scikit-learn, seed 0)"

    result = {"file": a.file, "folds": how, "models": {}}
    for name, model in models(numeric, categorical).items():
        aucs = []
        for train, held in splits:
            model.fit(X.iloc[train], y_all[train])
            p = model.predict_proba(X.iloc[held])[:, 1]
            aucs.append(roc_auc_score(y_all[held], p))
        result["models"][name] = {
            "fold_auc": aucs,
            "mean": float(np.mean(aucs)),
            "std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
        }
    if a.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{a.file}: {how}")
    for name, r in result["models"].items():
        folds = " ".join(f"{v:.4f}" for v in r["fold_auc"])
        print(f"  {name:24s} AUC {r['mean']:.4f} ± {r['std']:.4f}   ({folds})")


if __name__ == "__main__":
    main()
