"""riskgrad from Python: train credit-default models, score, evaluate and explain them.

A thin layer over the riskgrad library (the Rust extension ``riskgrad._riskgrad``):
``train`` runs the very training ``riskgrad train`` runs (the same defaults chosen from
the data, the same model directory, the same messages), ``Model.predict`` scores Arrow
data in memory without copying it in, and errors are ``RiskgradError`` exceptions
carrying the message the CLI prints. A model directory saved here is one the CLI reads,
and the reverse.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import pyarrow as pa

# Mesa's device-select layer only picks a default adapter (riskgrad chooses its own) and
# prints "XDG_RUNTIME_DIR is invalid" on headless machines; the CLI turns it off the
# same way. Set before the extension first enumerates adapters.
os.environ.setdefault("NODEVICE_SELECT", "1")

from . import _riskgrad  # noqa: E402
from ._riskgrad import (
    DataError,
    DivergedError,
    InternalError,
    ModelError,
    RiskgradError,
    StoppedError,
    UsageError,
)

__all__ = [
    "train",
    "Model",
    "devices",
    "RiskgradError",
    "UsageError",
    "DataError",
    "ModelError",
    "DivergedError",
    "StoppedError",
    "InternalError",
]

def devices() -> List[Dict[str, Any]]:
    """The GPU adapters riskgrad finds and its native CPU backend (``riskgrad devices``).

    Each is a dict: ``index`` (what ``device=`` takes; ``"cpu"`` for the CPU backend),
    ``name``, ``backend``, ``device_type``, and for an adapter ``driver``, ``software``,
    ``f16``, ``subgroups`` and its buffer limits.
    """
    return _riskgrad.devices()


def _flags(options: Dict[str, Any]) -> List[str]:
    """Keyword options as the CLI's flags: ``hidden=[64, 32]`` is ``--hidden 64,32``,
    ``early_stop="off"`` is ``--early-stop off``, ``bidirectional=True`` is
    ``--bidirectional``; ``None`` and ``False`` leave a flag out. A list given for
    ``sequence`` repeats the flag (one channel each)."""
    argv: List[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        # `--flag=value`, so that a value starting with `-` (lr=-1) stays a value.
        elif key == "sequence" and isinstance(value, (list, tuple)):
            argv += [f"{flag}={v}" for v in value]
        elif isinstance(value, dict):
            # monotone={"PAY_0": +1, "LIMIT_BAL": -1}
            argv.append(flag + "=" + ",".join(f"{k}:{int(v):+d}" for k, v in value.items()))
        elif isinstance(value, (list, tuple)):
            argv.append(flag + "=" + ",".join(str(v) for v in value))
        else:
            argv.append(f"{flag}={value}")
    return argv


class _Data:
    """A data argument as the CLI takes it: a path as is; a pandas DataFrame or a pyarrow
    Table or RecordBatch written to a temporary Parquet file (read back exactly as
    ``--data`` reads that table), removed on exit. An error that names the temporary
    file is raised again naming what the caller passed ("the pandas DataFrame")."""

    def __init__(self, data: Any):
        self._dir: Optional[tempfile.TemporaryDirectory] = None
        if data is None:
            self.path: Optional[str] = None
        elif isinstance(data, (str, os.PathLike)):
            self.path = os.fspath(data)
        else:
            import pyarrow.parquet as pq

            table = _as_table(data)
            self.label = "the pandas DataFrame" if _is_pandas(data) else "the pyarrow table"
            self._dir = tempfile.TemporaryDirectory(prefix="riskgrad-")
            self.path = os.path.join(self._dir.name, "data.parquet")
            pq.write_table(table, self.path)

    def argv(self) -> List[str]:
        return [] if self.path is None else ["--data", self.path]

    def train_argv(self) -> List[str]:
        """As `argv`, with the name `train` records for a table in memory."""
        label = ["--data-label", self.label] if self._dir is not None else []
        return self.argv() + label

    def __enter__(self) -> "_Data":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._dir is None:
            return
        self._dir.cleanup()
        if isinstance(exc, RiskgradError) and self.path and self.path in str(exc):
            renamed = type(exc)(str(exc).replace(self.path, self.label))
            renamed.exit_status = getattr(exc, "exit_status", None)
            raise renamed from None


def _as_table(data: Any) -> pa.Table:
    """A pandas DataFrame, pyarrow Table or RecordBatch as a pyarrow Table (no copy for a
    Table or RecordBatch; pandas' index is not a column)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if _is_pandas(data):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as e:
            # A column pyarrow cannot type (numbers and text mixed in an object column),
            # or two columns of one name.
            error = DataError(f"the pandas DataFrame: {e}")
            error.exit_status = 3
            raise error from None
    raise TypeError(
        f"data must be a path, a pandas DataFrame or a pyarrow Table or RecordBatch, not {type(data).__name__}"
    )


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas") and hasattr(data, "columns")


class Model:
    """A saved riskgrad model: the directory ``riskgrad train --out`` writes.

    Load one with ``Model.load(dir)`` or get one from ``train``; ``predict``, ``evaluate``
    and ``explain`` are ``riskgrad predict``, ``eval`` and ``explain`` over it.
    """

    def __init__(
        self,
        directory: Union[str, os.PathLike],
        _owned: Optional[tempfile.TemporaryDirectory] = None,
        threads: Optional[int] = None,
    ):
        self._dir = Path(directory)
        self._owned = _owned
        self._threads = threads
        self._scorer = _riskgrad.Scorer(str(self._dir), threads)

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], *, threads: Optional[int] = None) -> "Model":
        """Loads the model directory ``directory`` (written by ``riskgrad train`` or
        ``Model.save``). Raises ``ModelError`` when it is missing or damaged.

        ``threads``: the CPU threads ``predict`` scores with on the CPU backend (default:
        every core, or ``RAYON_NUM_THREADS``). Give it the CPUs a Ray actor or Spark task
        was granted (1 for ``num_cpus=1``), so that actors sharing a machine do not each
        spread over all of its cores."""
        return cls(directory, threads=threads)

    @property
    def directory(self) -> Path:
        """The directory the model is read from."""
        return self._dir

    @property
    def columns(self) -> List[str]:
        """The model's input columns (the data must have them; others are ignored)."""
        return self._scorer.columns

    @property
    def metrics(self) -> Dict[str, Any]:
        """The figures training saved (metrics.json): each epoch, the validation AUC, KS,
        Gini, log loss and Brier with the AUC's bootstrap interval, the challenger's."""
        return json.loads((self._dir / "metrics.json").read_text())

    @property
    def config(self) -> Dict[str, Any]:
        """config.json: the architecture, preprocessing, settings and figures."""
        return json.loads((self._dir / "config.json").read_text())

    def save(self, directory: Union[str, os.PathLike]) -> "Model":
        """Writes the model directory to ``directory`` (created if missing) as
        ``riskgrad train --out`` writes one: under its lock (``.NAME.riskgrad.lock``
        beside it; a ``UsageError`` while another run or save holds it), the files
        staged beside it and swapped in at once, so an existing model there is replaced
        whole or not at all. Saving onto the model's own directory changes nothing.
        Returns the model read from ``directory``."""
        _riskgrad.save_model(str(self._dir), os.fspath(directory))
        return Model(directory, threads=self._threads)

    def predict(
        self,
        batch: Any,
        *,
        points: Optional[str] = None,
        device: str = "auto",
        batch_rows: int = 4096,
    ) -> Any:
        """Scores ``batch`` (a pandas DataFrame, pyarrow Table or RecordBatch) and returns
        the same kind: the scores ``riskgrad predict`` writes for the same rows, with the
        model's ID column (or ``row``, the 1-based row number) and
        ``probability_of_default`` (float32), and with ``points="600:50:20"`` scorecard
        points. Rows are read through the Arrow C data interface without a copy, and the
        GIL is released while they are scored. ``device`` as the CLI's ``--device``,
        ``batch_rows`` as its ``--batch``.
        """
        kind = "table"
        if isinstance(batch, pa.RecordBatch):
            kind, name = "batch", "pyarrow RecordBatch"
        elif isinstance(batch, pa.Table):
            name = "pyarrow Table"
        elif _is_pandas(batch):
            kind, name = "pandas", "pandas DataFrame"
        else:
            raise TypeError(
                f"predict takes a pandas DataFrame or a pyarrow Table or RecordBatch, not {type(batch).__name__}"
            )
        table = _as_table(batch)
        capsule = table.__arrow_c_stream__()
        out = self._scorer.predict(capsule, name, device, batch_rows, points)
        scores = pa.RecordBatchReader._import_from_c_capsule(out).read_all()
        if kind == "batch":
            return scores.combine_chunks().to_batches()[0] if scores.num_rows else pa.RecordBatch.from_pylist([], schema=scores.schema)
        if kind == "pandas":
            return scores.to_pandas()
        return scores

    def evaluate(self, data: Any = None, **options: Any) -> Dict[str, Any]:
        """``riskgrad eval --json``: the model's figures on ``data`` (a path, DataFrame or
        Table with the target; default the bundled data). On the file the model was
        trained on, only its validation rows are scored. Options are eval's flags
        (``threshold=0.3``, ``protected="SEX"``, ``rows="all"``, ``bootstrap=1000``...).
        Returns the JSON document as a dict: ``auc``, ``auc_ci95``, ``ks``, ``gini``,
        ``log_loss``, ``brier``, the confusion matrix, calibration, ``fairness``...
        """
        with _Data(data) as d:
            argv = ["--model", str(self._dir)] + d.argv() + _flags(options)
            return json.loads(_riskgrad.run_eval(argv))

    def explain(self, data: Any = None, **options: Any) -> Dict[str, Any]:
        """``riskgrad explain --json``: reason codes by integrated gradients for each row
        of ``data`` (path, DataFrame or Table; default the bundled data) and the global
        importance. Options are explain's flags (``top=3``, ``rows=100``,
        ``steps=64``, ``reasons="reasons.csv"``...). Returns the JSON document as a dict:
        ``baseline_score``, ``rows`` (each ``id``, ``score``, ``reasons``),
        ``importance``.
        """
        with _Data(data) as d:
            argv = ["--model", str(self._dir)] + d.argv() + _flags(options)
            return json.loads(_riskgrad.run_explain(argv))

    def __repr__(self) -> str:
        return f"riskgrad.Model({str(self._dir)!r})"


def train(
    data: Any = None,
    target: Optional[Union[str, int]] = None,
    model: str = "mlp",
    out: Optional[Union[str, os.PathLike]] = None,
    **options: Any,
) -> Model:
    """Trains a model as ``riskgrad train`` does and returns it.

    ``data`` is a CSV or Parquet path (a directory of Parquet files too), a pandas
    DataFrame or a pyarrow Table (default: the bundled Taiwan data); ``target`` the
    target column (name or 0-based index; default the last column); ``model`` one of
    mlp, cnn, lstm, gru, logistic. ``out`` is the model directory to write (default: a
    temporary one, kept while the returned model lives; ``Model.save`` copies it).
    Every other option is the CLI flag of that name: ``hidden=[128, 64]``,
    ``epochs=20``, ``batch=512``, ``lr=3e-4``, ``optimizer="adamw"``,
    ``early_stop="off"``, ``seed=1``, ``device="cpu"``, ``drop=["branch"]``,
    ``monotone={"PAY_0": +1}``... Unset options get the CLI's defaults, chosen from the
    data. Progress goes to stderr as the CLI writes it.
    """
    owned = None
    if out is None:
        owned = tempfile.TemporaryDirectory(prefix="riskgrad-model-")
        out = owned.name
    with _Data(data) as d:
        argv = d.train_argv() + ["--model", model, "--out", os.fspath(out)]
        if target is not None:
            argv += ["--target", str(target)]
        _riskgrad.run_train(argv + _flags(options))
    return Model(out, _owned=owned)
