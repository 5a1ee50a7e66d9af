"""A finished (or loaded) run as tidy tables: epochs, bytes per peer and purpose, and the training summary.

Everything is computed from the telemetry records alone, by :mod:`dgnn_lab.records` (the record schema and
every statistic derived from it), so a run re-opened from its JSONL (:meth:`RunResult.load`) gives the same
tables and summary as the live result.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dgnn_lab import records as rec

from .telemetry import jsonable, read_run_records

if TYPE_CHECKING:  # pandas is imported on use: worker processes never pay for it
    import pandas as pd

RESULT_FILE = "result.json"


@dataclass(repr=False)
class RunResult:
    """The records of one run plus what the launcher knew (status, world size, cores, backend)."""

    records: list[dict]
    status: str
    config: dict = field(default_factory=dict)
    world_size: int = 1
    cores: int | None = None
    run_dir: Path | None = None
    backend: str | None = None
    num_threads: int | None = None
    entry: str | None = None
    elapsed_s: float | None = None
    error: dict | None = None

    def __repr__(self) -> str:  # the records can be thousands: never dump them into a notebook cell
        return (f"RunResult(status={self.status!r}, world_size={self.world_size}, cores={self.cores}, "
                f"backend={self.backend!r}, epochs={len(rec.epoch_numbers(self.records))}, "
                f"records={len(self.records)}, run_dir={str(self.run_dir) if self.run_dir else None!r})")

    @property
    def oversubscribed(self) -> bool | None:
        """More worker threads than cores on the machine (None if unknown, e.g. several machines)."""
        return rec.oversubscribed(self.world_size, self.cores, self.num_threads)

    # ------------------------------------------------------------------------------------- tables
    def epochs(self) -> pd.DataFrame:
        """One row per worker per epoch record (:func:`dgnn_lab.records.epoch_table`): rank, epoch, the scalar
        metrics (the standard ones first, then any other scalar field the records carry), total bytes sent /
        received that epoch and the record's wall time. Sorted by epoch, then rank."""
        return rec.epoch_table(self.records)

    def bytes_table(self) -> pd.DataFrame:
        """Long format: one row per (epoch, rank, direction, peer, purpose) with its byte count."""
        return rec.bytes_table(self.records)

    def bytes_matrix(self, purpose_prefix: str | None = None, *, traffic: str = "all") -> np.ndarray:
        """P x P int64 array of bytes sent over all epoch records: row = sender, column = receiver.
        ``purpose_prefix`` (e.g. ``"halo_"``, ``"halo_fwd"``, ``"grad_allreduce"``) keeps matching purposes;
        ``traffic`` ``"train"`` or ``"eval"`` one side of :meth:`split_bytes` (default ``"all"``, both). To look
        at, :meth:`bytes_frame` is the same labelled (and training traffic by default)."""
        return rec.bytes_matrix(self.records, self.world_size, purpose_prefix, traffic=traffic)

    def bytes_frame(self, traffic: str = "train", purpose_prefix: str | None = None) -> pd.DataFrame:
        """Bytes sent over the run as a labelled P x P table: index ``sender``, columns ``receiver`` (ranks).
        Training traffic by default; ``traffic="eval"`` the evaluation's, ``"all"`` both
        (:func:`dgnn_lab.records.bytes_frame`)."""
        return rec.bytes_frame(self.records, self.world_size, traffic, purpose_prefix)

    def split_bytes(self) -> dict[str, int]:
        """Bytes sent by every worker over the run, ``{"train": ..., "eval": ...}``: training traffic and
        evaluation traffic (purposes ``eval``, ``eval_*``), summing to :meth:`total_bytes` exactly."""
        return rec.split_bytes(self.records)

    def total_bytes(self, traffic: str = "all") -> int:
        """Bytes sent by every worker over the run: ``traffic="all"`` (default), ``"train"`` or ``"eval"``."""
        return rec.total_bytes(self.records, traffic=traffic)

    # ----------------------------------------------------------------------------------- summary
    def summary(self) -> dict:
        """The generic part of ``dgnn-lab train --json`` (:func:`dgnn_lab.records.summary`): status, world size
        vs cores, per-epoch loss and time, accuracies, per-worker compute/comm/wait and bytes, the bytes
        matrix, ``total_bytes`` = ``train_bytes`` + ``eval_bytes`` (training and evaluation traffic), halo bytes,
        halo rows per forward layer, staleness, imbalance (max/mean compute time)."""
        return rec.summary(self.records, world_size=self.world_size, status=self.status, cores=self.cores,
                           num_threads=self.num_threads, backend=self.backend, elapsed_s=self.elapsed_s,
                           run_dir=self.run_dir)

    # -------------------------------------------------------------------------------------- files
    def write_result_file(self) -> Path | None:
        """Write ``run_dir/result.json`` (status, error, summary); returns its path."""
        if self.run_dir is None:
            return None
        out = {"status": self.status, "world_size": self.world_size, "cores": self.cores,
               "backend": self.backend, "num_threads": self.num_threads, "entry": self.entry,
               "elapsed_s": self.elapsed_s, "error": self.error, "config": self.config,
               "summary": self.summary()}
        path = Path(self.run_dir) / RESULT_FILE
        path.write_text(json.dumps(jsonable(out), indent=2))
        return path

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> RunResult:
        """Re-open a run from its directory: ``records*.jsonl`` (launcher or per-rank torchrun files), with
        ``result.json`` / ``config.json`` where present. A torchrun run's status is derived from its records:
        ``failed`` if any rank sent an error, ``interrupted`` if any was stopped, ``done`` if every rank sent
        ``done``, else ``incomplete``."""
        run_dir = Path(run_dir)
        records = read_run_records(run_dir)
        meta: dict = {}
        if (run_dir / RESULT_FILE).exists():
            meta = json.loads((run_dir / RESULT_FILE).read_text())
        runs = [r for r in records if r.get("type") == "run"]
        last_run = runs[-1] if runs else {}
        cfg_file = {}
        if (run_dir / "config.json").exists():
            cfg_file = json.loads((run_dir / "config.json").read_text())
        ready = [r for r in records if r.get("type") in ("ready", "start")]

        def pick(key: str, default: Any = None) -> Any:
            for src in (meta, last_run):
                if src.get(key) is not None:
                    return src[key]
            for r in ready:
                if r.get(key) is not None:
                    return r[key]
            return default

        world_size = pick("world_size") or cfg_file.get("world_size") or \
            (max((r["rank"] for r in records if isinstance(r.get("rank"), int)), default=0) + 1)
        status = meta.get("status") or last_run.get("status")
        if status is None or status == "running":
            status = _derive_status(records, int(world_size))
        config = meta.get("config") or last_run.get("config") or cfg_file.get("config") or {}
        return cls(records=records, status=status, config=config, world_size=int(world_size),
                   cores=pick("cores"), run_dir=run_dir, backend=pick("backend"),
                   num_threads=pick("num_threads"), entry=pick("entry") or cfg_file.get("entry"),
                   elapsed_s=pick("elapsed_s"), error=meta.get("error") or last_run.get("error"))


def _derive_status(records: list[dict], world_size: int) -> str:
    types_by_rank: dict[int, set] = {}
    for r in records:
        if isinstance(r.get("rank"), int):
            types_by_rank.setdefault(r["rank"], set()).add(r.get("type"))
    if any("error" in t for t in types_by_rank.values()):
        return "failed"
    if any("stopped" in t for t in types_by_rank.values()):
        return "interrupted"
    if len(types_by_rank) == world_size and all("done" in t for t in types_by_rank.values()):
        return "done"
    return "incomplete"
