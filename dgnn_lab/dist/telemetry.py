"""Telemetry: records are plain JSON-able dicts, sent from workers to the launcher and/or a JSONL run log.

Records are normalised once, at the worker (:func:`jsonable`), so what a live callback sees and what
:meth:`RunResult.load` reads back from disk are the same objects: tensors and numpy scalars become numbers or
lists, dict keys become strings (peers ``"0"``, ``"1"``, ...), tuples become lists.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

RECORDS_FILE = "records.jsonl"
RANK_RECORDS_GLOB = "records*.jsonl"


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types; raises ``TypeError`` naming the offending type for anything else."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj  # NaN/inf are written as JSON's NaN/Infinity extensions and read back by json.loads
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    # torch tensors and numpy arrays/scalars, without importing either here
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return jsonable(tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return jsonable(item())
    raise TypeError(f"telemetry records must be JSON-able; got {type(obj).__name__}: {obj!r:.80}")


def dumps(record: dict) -> str:
    """One JSONL line (no trailing newline)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=True)


class JsonlWriter:
    """Appends records to one JSONL file, one line each, flushed per line so a run can be tailed live."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        line = dumps(record) + "\n"
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All complete records of a JSONL file; a torn last line (a killed writer) is skipped, not fatal."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def read_run_records(run_dir: str | os.PathLike) -> list[dict]:
    """Records of a run directory: ``records.jsonl`` (launcher) plus ``records-rank*.jsonl`` (torchrun),
    merged in time order (stable, so each file's own order is kept for equal times)."""
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob(RANK_RECORDS_GLOB))
    if not files:
        raise FileNotFoundError(f"no {RANK_RECORDS_GLOB} in run directory {run_dir}")
    records: list[dict] = []
    for f in files:
        records.extend(read_jsonl(f))
    if len(files) > 1:
        records.sort(key=lambda r: r.get("time") or 0.0)
    return records
