"""A finished (or loaded) run as tidy tables: epochs, bytes per peer and purpose, and the training summary.

Everything is computed from the telemetry records alone, so a run re-opened from its JSONL
(:meth:`RunResult.load`) gives the same tables and summary as the live result.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .telemetry import jsonable, read_run_records

if TYPE_CHECKING:  # pandas is imported on use: worker processes never pay for it
    import pandas as pd

RESULT_FILE = "result.json"
_EPOCH_SCALARS = ("epoch_s", "compute_s", "comm_s", "wait_s", "loss", "train_acc", "val_acc", "test_acc",
                  "peak_mem_bytes")
#: per-worker sums the summary reports when the epoch records carry them (mini-batch training)
_MINIBATCH_SUMS = ("sample_s", "fetch_s", "train_s", "overlap_s", "remote_rows_fetched", "remote_requests")
_NOT_COLUMNS = ("type", "time", "bytes_sent", "bytes_recv", "events")


def _bytes_total(d: Any, prefix: str | None = None) -> int:
    if not isinstance(d, dict):
        return 0
    return int(sum(n for per in d.values() if isinstance(per, dict)
                   for purpose, n in per.items() if prefix is None or purpose.startswith(prefix)))


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
        n_epochs = len({r.get("epoch") for r in self._epoch_records()})
        return (f"RunResult(status={self.status!r}, world_size={self.world_size}, cores={self.cores}, "
                f"backend={self.backend!r}, epochs={n_epochs}, records={len(self.records)}, "
                f"run_dir={str(self.run_dir) if self.run_dir else None!r})")

    @property
    def oversubscribed(self) -> bool | None:
        """More worker threads than cores on the machine (None if unknown, e.g. several machines)."""
        if self.cores is None or self.num_threads is None:
            return None
        return self.world_size * self.num_threads > self.cores

    # ------------------------------------------------------------------------------------- tables
    def _epoch_records(self) -> list[dict]:
        return [r for r in self.records if r.get("type") == "epoch"]

    def epochs(self) -> pd.DataFrame:
        """One row per worker per epoch record: rank, epoch, the scalar metrics (the standard ones first, then
        any other scalar field the records carry), total bytes sent / received that epoch (all peers and
        purposes) and the record's wall time. Sorted by epoch, then rank."""
        import pandas as pd

        rows = []
        extra: dict[str, None] = {}  # other scalar fields a protocol adds (staleness, lr, ...), in first-seen order
        for r in self._epoch_records():
            row = {"rank": r.get("rank"), "epoch": r.get("epoch")}
            for k in _EPOCH_SCALARS:
                row[k] = r.get(k)
            for k, v in r.items():
                if k not in row and k not in _NOT_COLUMNS and (v is None or isinstance(v, (bool, int, float, str))):
                    row[k] = v
                    extra.setdefault(k)
            row["bytes_sent"] = _bytes_total(r.get("bytes_sent"))
            row["bytes_recv"] = _bytes_total(r.get("bytes_recv"))
            row["time"] = r.get("time")
            rows.append(row)
        cols = ["rank", "epoch", *_EPOCH_SCALARS, *extra, "bytes_sent", "bytes_recv", "time"]
        df = pd.DataFrame(rows, columns=cols)
        if len(df):
            df = df.sort_values(["epoch", "rank"], kind="stable").reset_index(drop=True)
        return df

    def bytes_table(self) -> pd.DataFrame:
        """Long format: one row per (epoch, rank, direction, peer, purpose) with its byte count."""
        import pandas as pd

        rows = []
        for r in self._epoch_records():
            for direction in ("sent", "recv"):
                for peer, per in (r.get(f"bytes_{direction}") or {}).items():
                    for purpose, n in per.items():
                        rows.append({"epoch": r.get("epoch"), "rank": r.get("rank"), "direction": direction,
                                     "peer": int(peer), "purpose": purpose, "bytes": int(n)})
        return pd.DataFrame(rows, columns=["epoch", "rank", "direction", "peer", "purpose", "bytes"])

    def bytes_matrix(self, purpose_prefix: str | None = None) -> np.ndarray:
        """P x P int64 matrix of bytes sent over all epoch records: row = sender, column = receiver.
        ``purpose_prefix`` (e.g. ``"halo_"``, ``"halo_fwd"``, ``"grad_allreduce"``) keeps matching purposes."""
        p = self.world_size
        m = np.zeros((p, p), dtype=np.int64)
        for r in self._epoch_records():
            src = r.get("rank")
            for peer, per in (r.get("bytes_sent") or {}).items():
                for purpose, n in per.items():
                    if purpose_prefix is None or purpose.startswith(purpose_prefix):
                        m[src, int(peer)] += int(n)
        return m

    # ----------------------------------------------------------------------------------- summary
    def summary(self) -> dict:
        """The generic part of ``dgnn-lab train --json``: status, world size vs cores, per-epoch loss and
        time, accuracies, per-worker compute/comm/wait and bytes, the bytes matrix, halo bytes, halo rows per
        forward layer, imbalance (max/mean compute time)."""
        df = self.epochs()
        eps = sorted({int(e) for e in df["epoch"].dropna()}) if len(df) else []
        by_epoch = {e: df[df["epoch"] == e] for e in eps}

        def rank0(e: int, col: str) -> float | None:
            d = by_epoch[e]
            d0 = d[d["rank"] == 0]
            v = (d0 if len(d0) else d)[col].dropna()
            return float(v.iloc[0]) if len(v) else None

        train_loss = [rank0(e, "loss") for e in eps]
        epoch_seconds = [float(by_epoch[e]["epoch_s"].max()) if by_epoch[e]["epoch_s"].notna().any() else None
                         for e in eps]
        val = [rank0(e, "val_acc") for e in eps]
        test = [rank0(e, "test_acc") for e in eps]
        best_i = None
        for i, v in enumerate(val):
            if v is not None and (best_i is None or v > val[best_i]):
                best_i = i
        workers = []
        servers = self._server_ranks()
        for rank in range(self.world_size):
            d = df[df["rank"] == rank]
            workers.append({"rank": rank, **({"role": "server"} if rank in servers else {}),
                            "compute_s": float(d["compute_s"].fillna(0).sum()),
                            "comm_s": float(d["comm_s"].fillna(0).sum()),
                            "wait_s": float(d["wait_s"].fillna(0).sum()),
                            "bytes_sent": int(d["bytes_sent"].sum()),
                            "bytes_recv": int(d["bytes_recv"].sum())})
            for k in _MINIBATCH_SUMS:  # mini-batch epoch records carry stage times and fetch counts
                if k in d.columns and d[k].notna().any():
                    v = d[k].fillna(0).sum()
                    workers[-1][k] = float(v) if k.endswith("_s") else int(v)
        compute = np.array([w["compute_s"] for w in workers if w["rank"] not in servers], dtype=float)
        imbalance = float(compute.max() / compute.mean()) if len(compute) and compute.mean() > 0 else None
        return {
            "status": self.status,
            "world_size": self.world_size,
            "cores": self.cores,
            "num_threads": self.num_threads,
            "oversubscribed": self.oversubscribed,
            "backend": self.backend,
            "epochs": len(eps),
            "train_loss": train_loss,
            "epoch_seconds": epoch_seconds,
            "test_acc": test[-1] if test else None,
            "best_val_acc": val[best_i] if best_i is not None else None,
            "best_epoch": eps[best_i] if best_i is not None else None,
            "test_acc_at_best_val": test[best_i] if best_i is not None else None,
            "workers": workers,
            "imbalance": imbalance,
            "cache_hit_rate": self._cache_hit_rate(df),
            "bytes_matrix": self.bytes_matrix().tolist(),
            "total_bytes": int(self.bytes_matrix().sum()),
            "halo_bytes": int(self.bytes_matrix("halo_").sum()),
            "forward_rows_per_layer": self._forward_rows_per_layer(),
            "grad_staleness": self._grad_staleness(),
            "staleness": self._halo_staleness(),
            "elapsed_s": self.elapsed_s,
            "run_dir": str(self.run_dir) if self.run_dir is not None else None,
        }

    @staticmethod
    def _cache_hit_rate(df) -> float | None:
        """Remote feature lookups served by the cache, over all workers and epochs (None: not a mini-batch run;
        0.0 for a mini-batch run without cache or without remote lookups)."""
        if "cache_lookups" not in df.columns or not df["cache_lookups"].notna().any():
            return None
        lookups = float(df["cache_lookups"].fillna(0).sum())
        return float(df["cache_hits"].fillna(0).sum()) / lookups if lookups else 0.0

    def _server_ranks(self) -> set[int]:
        """Ranks that are parameter servers (records with ``role: "server"``): no training of their own, so
        they are left out of the compute imbalance."""
        return {int(r["rank"]) for r in self.records if r.get("role") == "server" and isinstance(r.get("rank"), int)}

    def _grad_staleness(self) -> dict | None:
        """Gradient staleness under a parameter server, from the workers' ``grad_staleness_hist`` ({age in
        rounds: gradients})."""
        return self._age_histogram("grad_staleness_hist")

    def _halo_staleness(self) -> dict | None:
        """Age of the halo rows the layers aggregated (full-graph protocols), from the workers'
        ``staleness_hist`` ({age in epochs: rows}, summed over layers)."""
        return self._age_histogram("staleness_hist")

    def _age_histogram(self, key: str) -> dict | None:
        """``{"hist", "mean", "max", "count"}`` of the ``{age: count}`` histograms under ``key``, summed over
        every worker's epoch records; None when no record has one."""
        hist: dict[int, int] = {}
        for r in self._epoch_records():
            h = r.get(key)
            if isinstance(h, dict):
                for age, n in h.items():
                    hist[int(age)] = hist.get(int(age), 0) + int(n)
        total = sum(hist.values())
        if not total:
            return None
        return {"hist": {str(a): hist[a] for a in sorted(hist)}, "count": total, "max": max(hist),
                "mean": sum(a * n for a, n in hist.items()) / total}

    def _forward_rows_per_layer(self) -> list[float]:
        """Halo rows moved per forward layer per epoch, summed over workers, averaged over epochs; from the
        ``fwd_rows`` ({layer: rows}) the training puts in its epoch records (rows sent by that worker)."""
        per_epoch: dict[int, dict[int, int]] = {}
        for r in self._epoch_records():
            rows = r.get("fwd_rows")
            if not isinstance(rows, dict):
                continue
            acc = per_epoch.setdefault(int(r.get("epoch", 0)), {})
            for layer, n in rows.items():
                acc[int(layer)] = acc.get(int(layer), 0) + int(n)
        if not per_epoch:
            return []
        layers = max(max(d) for d in per_epoch.values() if d) + 1 if any(per_epoch.values()) else 0
        return [float(np.mean([d.get(l, 0) for d in per_epoch.values()])) for l in range(layers)]

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
