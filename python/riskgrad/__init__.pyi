# Type stubs for riskgrad (the package's Python face, riskgrad/__init__.py, over the
# extension riskgrad._riskgrad).
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union, overload

import pyarrow as pa

try:
    import pandas as pd
    _Frame = pd.DataFrame
except ImportError:  # pandas is optional
    _Frame = Any  # type: ignore[misc,assignment]

_PathLike = Union[str, os.PathLike[str]]
_Data = Union[_PathLike, "_Frame", pa.Table, pa.RecordBatch, None]

class RiskgradError(Exception):
    """Any error riskgrad reports, with the CLI's message."""
    exit_status: int
class UsageError(RiskgradError):
    """An option or value that makes no sense (CLI exit status 2)."""
class DataError(RiskgradError):
    """Input data that cannot be used, or a file that cannot be read or written (3)."""
class ModelError(RiskgradError):
    """A model directory that cannot be used (4)."""
class DivergedError(RiskgradError):
    """Training diverged (5)."""
class StoppedError(RiskgradError):
    """Training stopped by SIGINT or SIGTERM after a checkpoint (130, 143)."""
class InternalError(RiskgradError):
    """An internal error, or a device that failed (1)."""

def devices() -> List[Dict[str, Any]]:
    """The GPU adapters found and the native CPU backend (``riskgrad devices``)."""

class Model:
    """A saved model directory, as ``riskgrad train --out`` writes it."""
    def __init__(self, directory: _PathLike, threads: Optional[int] = ...) -> None: ...
    @classmethod
    def load(cls, directory: _PathLike, *, threads: Optional[int] = ...) -> Model:
        """Loads a model directory; ``ModelError`` when missing or damaged. ``threads``:
        the CPU threads ``predict`` scores with (default every core)."""
    @property
    def directory(self) -> Path: ...
    @property
    def columns(self) -> List[str]: ...
    @property
    def metrics(self) -> Dict[str, Any]: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    def save(self, directory: _PathLike) -> Model:
        """Writes the model directory to ``directory`` as ``riskgrad train --out`` does
        (under its lock, swapped in whole); returns the model read there."""
    @overload
    def predict(self, batch: pa.Table, *, points: Optional[str] = ..., device: str = ..., batch_rows: int = ...) -> pa.Table: ...
    @overload
    def predict(self, batch: pa.RecordBatch, *, points: Optional[str] = ..., device: str = ..., batch_rows: int = ...) -> pa.RecordBatch: ...
    @overload
    def predict(self, batch: "_Frame", *, points: Optional[str] = ..., device: str = ..., batch_rows: int = ...) -> "_Frame": ...
    def evaluate(self, data: _Data = ..., **options: Any) -> Dict[str, Any]:
        """``riskgrad eval --json`` as a dict."""
    def explain(self, data: _Data = ..., **options: Any) -> Dict[str, Any]:
        """``riskgrad explain --json`` as a dict."""

def train(
    data: _Data = ...,
    target: Optional[Union[str, int]] = ...,
    model: str = ...,
    out: Optional[_PathLike] = ...,
    **options: Any,
) -> Model:
    """Trains a model as ``riskgrad train`` does (options are its flags) and returns it."""
