"""Compare training strategies for real: run named configurations one after another and tabulate them.

Each configuration is a full :class:`~dgnn_lab.train.config.TrainConfig` (a ``base`` plus a preset's or your
own overrides) trained by real worker processes in its own run directory. The directory is named by the
configuration's name and a stable hash of everything that changes its numbers
(``<runs root>/compare/<name>-<hash>/``; repeats after the first add ``-r<i>``), so asking again for a configuration
that already finished (status ``done``) re-opens it with :meth:`dgnn_lab.dist.RunResult.load` instead of
training it again: a notebook re-opens its comparisons instantly, and an interrupted or failed run is trained
afresh::

    from dgnn_lab.experiments.compare import compare
    cmp = compare(["sync", "stale", "int8"], base={"dataset": "cora", "workers": 2, "epochs": 100}, repeats=3)
    cmp.table          # one row per configuration: accuracy, bytes, median time per epoch and its range
    cmp.runs           # one row per run (configuration x repeat)
    cmp.records()      # name -> telemetry records (first repeat), for dgnn_lab.viz.comparison

A preset is a named set of overrides (:data:`PRESETS`); a strategy a student registers with
:func:`dgnn_lab.protocols.halo.register_strategy` becomes a preset of the same name.

**Progress.** Every run reports while it trains (``progress=True``): in a Jupyter kernel a live view (a bar per
run, epoch n/N, elapsed time, then a line with the run's headline figures; :mod:`dgnn_lab.widgets.progress`,
imported only there), elsewhere one line per finished run on stderr. ``progress`` may instead be a callable
that receives the events (plain dicts, from the launch's telemetry thread): ``{"event": "start", "run": label,
"name", "repeat", "index", "count", "epochs"}``, ``{"event": "epoch", "run", "epoch": epochs done,
"epochs"}``, ``{"event": "done", "run", "status", "elapsed_s", "line"}`` and a last ``{"event": "close"}``.

**Tables** (:class:`ReportTable`) are ordinary DataFrames whose numbers stay numbers (``table["s_per_epoch"]``
is float); only their display is formatted: bytes and counts as integers with thousands separators, seconds
with 4 significant digits, accuracies and shares as 0.xxx, never ``5.299e+04``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dgnn_lab import records as rec
from dgnn_lab import settings
from dgnn_lab.train import api
from dgnn_lab.train.config import TrainConfig

if TYPE_CHECKING:
    from dgnn_lab.dist import RunHandle, RunResult

__all__ = ["PRESETS", "SPREAD_LIMIT", "Comparison", "EpochCounter", "ReportTable", "TextProgress", "compare",
           "config_hash", "display_frame", "preset", "preset_names", "progress_sink", "resolve", "run_dir_for",
           "summarize", "timing_summary"]

#: Named overrides on a base config, one per strategy the notebooks compare. ``staleness`` is the halo's age
#: bound in ``full-stale`` and the parameter server's bound with ``sync="ps"``; the straggler is worker 1.
PRESETS: dict[str, dict] = {
    "sync": {"mode": "full-sync"},
    "stale": {"mode": "full-stale", "staleness": 1},
    "stale-smooth": {"mode": "full-stale", "staleness": 1, "smoothing": 0.5},
    "bounded": {"mode": "full-stale", "staleness": 4, "skip_threshold": 0.05},
    "bns-0.5": {"mode": "full-bns", "bns_p": 0.5},
    "bns-0.1": {"mode": "full-bns", "bns_p": 0.1},
    "fp16": {"mode": "full-sync", "quantize": "fp16"},
    "int8": {"mode": "full-sync", "quantize": "int8"},
    "local-sgd": {"mode": "local-sgd", "local_sgd_period": 10},
    "ps": {"mode": "full-sync", "sync": "ps", "staleness": 2},
    "sync-straggler": {"mode": "full-sync", "straggler": [1, 2.0]},
    "ps-straggler": {"mode": "full-sync", "sync": "ps", "staleness": 2, "straggler": [1, 2.0]},
}

#: Config fields that change where or how long a run may take, not its numbers: left out of the hash.
_NOT_HASHED = ("run_dir", "timeout_s", "partition_dir")
#: Per-epoch protocol counters a row sums over workers and epochs when a run records them.
_SUMMED = ("skipped_blocks", "straggler_s")


# ------------------------------------------------------------------------------------- registered strategies

def _registry() -> dict[str, type]:
    """Strategies a user registered with :func:`dgnn_lab.protocols.halo.register_strategy` (the library's own
    are reached through the modes and the presets), by name."""
    try:
        from dgnn_lab.protocols import halo as protocols
    except ImportError:  # the protocols module is optional for the comparator
        return {}
    names = getattr(protocols, "list_strategies", lambda: [])()
    out = {}
    for name in names:
        cls = protocols.get_strategy(name)
        if not str(getattr(cls, "__module__", "")).startswith("dgnn_lab."):
            out[name] = cls
    return out


def _strategy_overrides(name: str) -> dict:
    """The overrides that train with registered strategy ``name``: a halo protocol, so a full-graph mode
    (``full-stale``: the staleness bound and skip threshold come from the base config)."""
    return {"mode": "full-stale", "halo": name}


def _code_fingerprint(obj: Any, seen: set[int] | None = None) -> str:
    """What a class's methods do (bytecode, constants, names), not where they were defined: a class from a
    notebook cell gets the same fingerprint in every kernel session, and a new one when its code changes."""
    import types

    seen = set() if seen is None else seen
    if id(obj) in seen:
        return ""
    seen.add(id(obj))
    if isinstance(obj, types.CodeType):
        consts = "".join(_code_fingerprint(c, seen) if isinstance(c, types.CodeType) else repr(c)
                         for c in obj.co_consts)
        return f"{obj.co_code.hex()}|{consts}|{obj.co_names}|{obj.co_varnames}"
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        cells = [c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not obj]
        simple = (int, float, str, bool, tuple, type(None))
        used = {n: obj.__globals__[n] for n in _all_names(obj.__code__)  # module-level constants the code
                if n in obj.__globals__ and isinstance(obj.__globals__[n], simple)}  # reads (not builtins)
        return (_code_fingerprint(obj.__code__, seen) + repr(obj.__defaults__) + repr(obj.__kwdefaults__)
                + "".join(_code_fingerprint(c, seen) for c in cells) + repr(sorted(used.items())))
    if isinstance(obj, type):
        parts = []
        for klass in obj.__mro__:
            if klass is object or str(klass.__module__).startswith("dgnn_lab."):
                continue  # the library's own classes change with the library, not with the notebook
            for k in sorted(vars(klass)):
                if k in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
                    continue
                parts.append(f"{klass.__name__}.{k}={_code_fingerprint(vars(klass)[k], seen)}")
        return ";".join(parts)
    return repr(obj)


def _all_names(code: Any) -> set[str]:
    import types

    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _all_names(c)
    return names


# ------------------------------------------------------------------------------------------------ presets

def preset_names() -> list[str]:
    """Every valid preset name: the built-in :data:`PRESETS`, then the registered strategies."""
    return [*PRESETS, *(n for n in _registry() if n not in PRESETS)]


def preset(name: str) -> dict:
    """A copy of preset ``name``'s overrides; ``ValueError`` listing the valid names otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"a preset is named by a string, got {name!r}; valid presets: {', '.join(preset_names())}")
    if name in PRESETS:
        return json.loads(json.dumps(PRESETS[name]))
    if name in _registry():
        return _strategy_overrides(name)
    raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(preset_names())} "
                     "(or pass (name, overrides) / {name: overrides} for a configuration of your own)")


def _as_dict(config: TrainConfig | Mapping | None) -> dict:
    """The fields of a config (strategy objects kept as objects), or a mapping's items."""
    if config is None:
        return {}
    if isinstance(config, TrainConfig):
        return {f: getattr(config, f) for f in config.__dataclass_fields__}
    if isinstance(config, Mapping):
        return dict(config)
    raise ValueError(f"a configuration is a dict or TrainConfig, got {type(config).__name__}")


def resolve(configs: Iterable | Mapping, base: TrainConfig | Mapping | None = None) -> dict[str, TrainConfig]:
    """Name -> validated ``TrainConfig`` for every entry of ``configs`` on top of ``base``.

    ``configs`` is a list whose items are preset names (``"stale"``) or ``(name, overrides)`` pairs, or a
    mapping ``{name: overrides or preset name}``. Overrides are merged over ``base``; a bad value raises the
    ``TrainConfig``'s ``ValueError`` prefixed by the configuration's name.
    """
    base_d = _as_dict(base)
    items: list[tuple[str, Any]] = []
    if isinstance(configs, Mapping):
        items = list(configs.items())
    elif isinstance(configs, (str, bytes)) or not isinstance(configs, Iterable):
        raise ValueError(f"configs must be a list of preset names / (name, overrides) pairs or a dict, got "
                         f"{configs!r}; valid presets: {', '.join(preset_names())}")
    else:
        for item in configs:
            if isinstance(item, str):
                items.append((item, item))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                items.append(item)
            else:
                raise ValueError(f"each configuration is a preset name or a (name, overrides) pair, got {item!r}")
    if not items:
        raise ValueError(f"nothing to compare: pass at least one configuration; valid presets: "
                         f"{', '.join(preset_names())}")
    out: dict[str, TrainConfig] = {}
    for name, spec in items:
        if not name or name in out:
            raise ValueError(f"configuration names must be non-empty and distinct, got {name!r} twice or empty")
        overrides = preset(spec) if isinstance(spec, str) else _as_dict(spec)
        try:
            out[name] = TrainConfig.from_dict({**base_d, **overrides})
        except ValueError as e:
            raise ValueError(f"configuration {name!r}: {e}") from None
    return out


def config_hash(config: TrainConfig | Mapping) -> str:
    """A stable 10-hex-digit hash of everything in ``config`` that changes a run's numbers (not its run
    directory or timeout); a registered strategy it names counts by what its code does."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(_as_dict(config))
    d = cfg.to_dict()
    for k in _NOT_HASHED:
        d.pop(k, None)
    # a strategy from a notebook cell (or registered from one) counts by what its code does, not by where
    # it was defined; a partitioner function likewise
    d["code"] = {key: _code_fingerprint(obj) for key, obj in sorted(cfg.by_value().items())}
    if callable(cfg.partition):
        d["code"]["partition"] = _code_fingerprint(cfg.partition)
    payload = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def run_dir_for(name: str, config: TrainConfig | Mapping, root: str | Path | None = None, repeat: int = 0) -> Path:
    """``root/<name>-<hash>``: where ``config`` (called ``name``) runs and is found again; repeat ``i > 0`` of
    it (see ``compare(repeats=...)``) runs in ``root/<name>-<hash>-r<i>``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._") or "run"
    if not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"repeat must be an int >= 0, got {repeat!r}")
    tail = f"-r{repeat}" if repeat else ""
    base = Path(root) if root is not None else settings.runs_root() / "compare"
    return base / f"{safe}-{config_hash(config)}{tail}"


# ----------------------------------------------------------------------------------------------- display

#: Columns shown as 0.xxx: accuracies and shares in [0, 1] (tested before the byte and count columns, so
#: ``bytes_saved``, a fraction, is not shown as a byte count).
_FRACTIONS = ("_acc", "accuracy", "share", "hit_rate", "bytes_saved", "seeds_local")
#: Columns shown as integers with thousands separators (besides every ``*bytes*`` and ``*rows*`` column).
_COUNTS = ("requests", "cache_hits", "cache_lookups", "skipped_blocks", "epochs", "workers", "processes",
           "cores", "threads_per_worker", "repeats", "repeat", "steps")


def _sig(v: float, digits: int = 4) -> str:
    """``v`` to ``digits`` significant digits in fixed-point notation: 0.02134, 7.100, 12.35, 52,992 (never
    ``5.299e+04``)."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    decimals = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
    return f"{v:,.{decimals}f}"


def _count(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else _sig(v, 3)


def _formatter(column: Any) -> Callable[[float], str]:
    c = str(column)
    if c in ("cache_size", "bns_p", "lr", "dropout"):  # settings, as given: 0.05, not 0.05000
        return lambda v: f"{v:g}"
    if c.endswith("_pct"):
        return lambda v: f"{v:.1f}"
    if " vs " in c or "ratio" in c:  # e.g. a notebook's "halo bytes vs sync": a ratio, not a byte count
        return lambda v: _sig(v, 3)
    if any(h in c for h in _FRACTIONS):
        return lambda v: f"{v:.3f}"
    if "bytes" in c or "rows" in c or any(c == h or c.endswith("_" + h) for h in _COUNTS):
        return _count
    return _sig  # seconds, speed-ups, staleness, cache fractions


def _cell(fmt: Callable[[float], str], v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        return fmt(float(v))
    return str(v)


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as text, formatted by column name for reading: bytes, rows and counts as integers with
    thousands separators (``52,992``), seconds and other figures with 4 significant digits, accuracies and
    shares as 0.xxx, ``*_pct`` with one decimal, missing values blank. What :class:`ReportTable` displays."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        fmt = _formatter(col)
        out[col] = [_cell(fmt, v) for v in table[col].tolist()]
    return out


class ReportTable(pd.DataFrame):
    """A DataFrame of measured figures that displays readably (:func:`display_frame`) and stays numeric:
    ``table["s_per_epoch"]`` is a float column, ``table[cols]`` and ``table.set_index(...)`` are ReportTables
    too. ``pd.DataFrame(table)`` gives the plain frame."""

    @property
    def _constructor(self):
        return ReportTable

    def _repr_html_(self) -> str:
        return display_frame(self).to_html(max_rows=pd.get_option("display.max_rows"), na_rep="")

    def __repr__(self) -> str:
        return display_frame(self).to_string(max_rows=pd.get_option("display.max_rows"))


# -------------------------------------------------------------------------------------------------- rows

def _split_bytes(s: dict) -> tuple[int, int]:
    """(training, evaluation) traffic of a run: the summary's ``train_bytes`` / ``eval_bytes`` (evaluation:
    purposes starting with ``eval``; the two sum to ``total_bytes``)."""
    return int(s["train_bytes"]), int(s["eval_bytes"])


def _max_work(s: dict) -> float | None:
    """Edges the busiest training worker aggregates per epoch (None without work counts)."""
    edges = [w["work"]["edges"] for w in s.get("workers", []) if w.get("role") != "server"
             and "edges" in (w.get("work") or {})]
    return max(edges) if edges else None


def summarize(name: str, result: RunResult, *, cached: bool = False) -> dict:
    """One table row for a run: what it was, accuracy, bytes, time per epoch, wait share, staleness.

    Bytes are sent bytes summed over workers. ``train_bytes`` (training traffic, the headline) and
    ``eval_bytes`` (evaluation traffic: purposes ``eval``, ``eval_*``) sum to ``total_bytes``; ``halo_bytes``
    are the halo rows and their gradients; ``training_bytes`` is ``train_bytes`` without the loss/stop
    ``metrics`` (what the comparison figures' ``bytes="training"`` counts); ``*_per_epoch`` divide by the
    epochs run.

    ``s_per_epoch`` is the median over epochs of the slowest worker's epoch time, leaving out epoch 0 when a
    run has more than two (it pays one-off costs). ``wait_share`` is the training workers' waiting over their
    epoch time (a parameter server, which mostly waits by design, is left out). ``processes`` (workers, plus a
    parameter server), ``threads_per_worker`` and ``cores`` say what the time was measured on;
    ``oversubscribed`` when processes x threads > cores (then the time includes CPU contention).
    ``work_imbalance`` (max / mean edges aggregated), ``cpu_imbalance`` (CPU time) and ``time_imbalance``
    (wall compute time) tell the partition's imbalance from the machine's; ``max_work_edges`` is the busiest
    worker's edges per epoch (the y of a balance-vs-bytes frontier).
    ``*staleness_mean/max`` give the mean and max over everything the protocol observed, from its
    ``*staleness_hist`` histograms when the records carry them (``staleness``: age in epochs of the halo rows
    aggregated; ``grad_staleness``: rounds a gradient is late at the parameter server), else over the
    per-epoch values; ``skipped_blocks`` and ``straggler_s`` (injected delay) are totals, where recorded.
    """
    s = result.summary()
    cfg = result.config or {}
    recs = result.records
    train, ev = _split_bytes(s)
    n_epochs = max(len(rec.epoch_numbers(recs)), 1)
    row = {
        "name": name, "mode": cfg.get("mode"), "sync": cfg.get("sync"), "quantize": cfg.get("quantize"),
        "workers": cfg.get("workers"), "status": result.status, "cached": cached, "epochs": s["epochs"],
        "test_acc": s["test_acc"], "best_val_acc": s["best_val_acc"],
        "test_acc_at_best_val": s["test_acc_at_best_val"],
        "train_bytes": train, "eval_bytes": ev, "total_bytes": s["total_bytes"], "halo_bytes": s["halo_bytes"],
        "training_bytes": rec.training_bytes(recs),
        "train_bytes_per_epoch": train / n_epochs, "eval_bytes_per_epoch": ev / n_epochs,
        **{f"{kind}_bytes_per_epoch": rec.bytes_per_epoch(recs, kind) for kind in ("halo", "training", "total")},
        "s_per_epoch": rec.s_per_epoch(recs),
        "wait_share": rec.wait_share(recs, cfg.get("workers")),  # the training workers, not a server
        "partition": cfg.get("partition"), "execution": cfg.get("execution"),
        "work_imbalance": s.get("work_imbalance"), "cpu_imbalance": s.get("cpu_imbalance"),
        "time_imbalance": s.get("imbalance"), "max_work_edges": _max_work(s),
        "elapsed_s": s["elapsed_s"],
        "processes": result.world_size, "threads_per_worker": result.num_threads or rec.threads_of(recs),
        "cores": result.cores or rec.cores_of(recs), "oversubscribed": s["oversubscribed"],
    }
    for what, st in rec.staleness_summary(recs).items():
        row[f"{what}_mean"], row[f"{what}_max"] = st["mean"], st["max"]
    for col in _SUMMED:
        total = rec.field_total(recs, col)
        if total is not None:
            row[col] = total
    row["run_dir"] = str(result.run_dir) if result.run_dir is not None else None
    return row


#: ``too_wide_to_conclude`` also flags a configuration whose own range (max - min over its repeats) exceeds
#: this fraction of its median time per epoch.
SPREAD_LIMIT = 0.25


def timing_summary(times: Mapping[str, Sequence[float | None]], *, limit: float = SPREAD_LIMIT) -> dict[str, dict]:
    """Name -> time-per-epoch statistics over repeated runs, from each run's ``s_per_epoch`` (``times``:
    name -> one value per repeat; None for an untimed run, left out).

    ``s_per_epoch`` is the median of the runs (numpy's: the mean of the middle two for an even count);
    ``s_per_epoch_min`` / ``s_per_epoch_max`` their range and ``s_per_epoch_range_pct`` = 100 (max - min) /
    median; ``timed_repeats`` how many runs were timed.

    **The rule.** ``too_wide_to_conclude`` is True for a configuration when (a) its range [min, max] overlaps
    (closed intervals) the range of another configuration with two or more timed runs (named in
    ``overlaps_with``): the repeats do not separate the two, so no ordering of them holds; or (b) its range
    is wider than ``limit`` (25 %) of its median: its own runs disagree too much to quote one figure. False
    otherwise; None with fewer than two timed runs (one run measures no spread: pass ``repeats=3``).
    """
    out: dict[str, dict] = {}
    for name, vals in times.items():
        v = [float(x) for x in vals if x is not None and math.isfinite(float(x))]
        if not v:
            out[name] = {"s_per_epoch": None, "s_per_epoch_min": None, "s_per_epoch_max": None,
                         "s_per_epoch_range_pct": None, "timed_repeats": 0, "too_wide_to_conclude": None,
                         "overlaps_with": ""}
            continue
        med, lo, hi = float(np.median(v)), min(v), max(v)
        out[name] = {"s_per_epoch": med, "s_per_epoch_min": lo, "s_per_epoch_max": hi,
                     "s_per_epoch_range_pct": 100.0 * (hi - lo) / med if med > 0 else 0.0,
                     "timed_repeats": len(v), "too_wide_to_conclude": None, "overlaps_with": ""}
    ranged = {n: (o["s_per_epoch_min"], o["s_per_epoch_max"]) for n, o in out.items() if o["timed_repeats"] >= 2}
    for name, (lo, hi) in ranged.items():
        overlaps = [m for m, (lo2, hi2) in ranged.items() if m != name and lo <= hi2 and lo2 <= hi]
        o = out[name]
        o["overlaps_with"] = ", ".join(overlaps)
        o["too_wide_to_conclude"] = bool(overlaps) or o["s_per_epoch_range_pct"] > 100.0 * limit
    return out


_TIMING_COLUMNS = ("s_per_epoch", "s_per_epoch_min", "s_per_epoch_max", "s_per_epoch_range_pct", "repeats",
                   "too_wide_to_conclude", "overlaps_with")


def _with_timing(row: dict, timing: dict, repeats: int) -> dict:
    """``row`` with the timing over its repeats in place of its first run's ``s_per_epoch``."""
    out = {}
    for k, v in row.items():
        if k == "s_per_epoch":
            out.update({c: timing[c] if c != "repeats" else repeats for c in _TIMING_COLUMNS})
        elif k not in _TIMING_COLUMNS:
            out[k] = v
    return out


@dataclass(repr=False)
class Comparison:
    """The outcome of :func:`compare`: ``table`` (one row per configuration, in the order given), the
    ``results`` (name -> the first repeat's ``RunResult``), ``repeats`` (name -> every repeat's), ``runs``
    (one row per run: name, repeat, status, cached, s_per_epoch, accuracy, bytes, run_dir) and the
    ``configs`` (name -> ``TrainConfig``) they ran."""

    table: pd.DataFrame
    results: dict[str, RunResult] = field(default_factory=dict)
    configs: dict[str, TrainConfig] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    repeats: dict[str, list[RunResult]] = field(default_factory=dict)
    runs: pd.DataFrame | None = None

    def records(self) -> dict[str, list[dict]]:
        """Name -> telemetry records (of the first repeat): what the figures of :mod:`dgnn_lab.viz.comparison`
        take."""
        return {name: r.records for name, r in self.results.items()}

    def bytes_matrix(self, name: str, traffic: str = "train", purpose_prefix: str | None = None) -> pd.DataFrame:
        """Bytes configuration ``name`` sent over its run, sender rows x receiver columns (ranks), labelled:
        training traffic by default, ``traffic="eval"`` the evaluation's, ``"all"`` both."""
        if name not in self.results:
            raise ValueError(f"no finished run named {name!r}; runs: {', '.join(self.results) or 'none'}")
        r = self.results[name]
        return rec.bytes_frame(r.records, r.world_size, traffic, purpose_prefix)

    def timing_note(self) -> str:
        """One sentence on what the time columns mean for this comparison (shown under the table)."""
        t = self.table
        k = int(t["repeats"].max()) if "repeats" in t and t["repeats"].notna().any() else 1
        def values(col: str) -> str:
            vals = sorted({int(v) for v in t[col].dropna()}) if col in t else []
            return "/".join(map(str, vals)) or "?"

        where = ""
        if "cores" in t and t["cores"].notna().any():
            over = "oversubscribed" in t and bool(t["oversubscribed"].fillna(False).astype(bool).any())
            where = (f" Measured with {values('processes')} processes x {values('threads_per_worker')} torch "
                     f"thread(s) each on {values('cores')} cores"
                     + (" (oversubscribed: the times include CPU contention)." if over else "."))
        if k < 2:
            return ("s_per_epoch: one run per configuration, so no spread is measured: differences in time may "
                    "be noise (pass repeats=3)." + where)
        return (f"s_per_epoch: median over {k} runs of each run's median epoch time; s_per_epoch_min/max: their "
                f"range. too_wide_to_conclude: the range overlaps another configuration's (overlaps_with) or is "
                f"wider than {SPREAD_LIMIT:.0%} of the median." + where)

    def __repr__(self) -> str:
        cached = int(self.table["cached"].sum()) if "cached" in self.table else 0
        return f"Comparison({list(self.results)}, cached={cached}, errors={list(self.errors)})"

    def _repr_html_(self) -> str:
        import html

        return (display_frame(self.table).to_html(index=False, na_rep="")
                + f"<p style='font-size:90%'>{html.escape(self.timing_note())}</p>")


def _one_line(e: BaseException) -> str:
    """``who failed: the exception`` from a multi-line ``WorkerError`` (its first and last lines)."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()] or [type(e).__name__]
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


def _load_cached(run_dir: Path) -> RunResult | None:
    from dgnn_lab.dist import RunResult

    if not run_dir.is_dir() or not any(run_dir.glob("records*.jsonl")):
        return None
    try:
        result = RunResult.load(run_dir)
    except (OSError, ValueError):
        return None
    return result if result.status == "done" else None


# ---------------------------------------------------------------------------------------------- progress

def _in_kernel() -> bool:
    """True where a widget can render (:func:`dgnn_lab.kernel_events.widgets_can_render`)."""
    from dgnn_lab.kernel_events import widgets_can_render

    return widgets_can_render()


class EpochCounter:
    """An ``on_record`` hook that calls ``on_epoch(n)`` each time one more epoch has been reported by every
    training worker (ranks below ``workers``: a parameter server's rounds do not count)."""

    def __init__(self, workers: int, on_epoch: Callable[[int], Any]) -> None:
        self.workers = max(int(workers), 1)
        self.on_epoch = on_epoch
        self.done = 0
        self._ranks: dict[int, set[int]] = {}

    def __call__(self, record: Mapping) -> None:
        rank, epoch = record.get("rank"), record.get("epoch")
        if (record.get("type") != "epoch" or not isinstance(rank, int) or rank >= self.workers
                or not isinstance(epoch, int) or record.get("role") == "server"):
            return
        ranks = self._ranks.setdefault(epoch, set())
        if rank in ranks:
            return
        ranks.add(rank)
        if len(ranks) == self.workers:
            self.done += 1
            self.on_epoch(self.done)


class TextProgress:
    """The progress of runs outside a notebook: one line per finished run on ``stream`` (stderr), e.g.
    ``compare [2/6] sync #2: done in 4.1 s · test acc 0.804 at best val · 0.0213 s/epoch · ...``."""

    def __init__(self, what: str = "compare", stream: IO[str] | None = None) -> None:
        self.what = what
        self.stream = stream

    def __call__(self, event: Mapping) -> None:
        if event.get("event") != "done":
            return
        where = f" [{event['index']}/{event['count']}]" if event.get("index") and event.get("count") else ""
        secs, status = event.get("elapsed_s"), event.get("status")
        took = f" in {secs:.1f} s" if isinstance(secs, (int, float)) else ""
        how = "loaded from cache" if status == "cached" else f"{status}{took}"
        line = f" · {event['line']}" if event.get("line") else ""
        print(f"{self.what}{where} {event.get('run')}: {how}{line}",
              file=self.stream if self.stream is not None else sys.stderr, flush=True)


def progress_sink(progress: bool | Callable[[dict], Any] | None, *, what: str = "compare",
                  title: str = "") -> Callable[[dict], Any] | None:
    """Where progress events go: ``False``/None nowhere; a callable itself; ``True`` a live widget view in a
    Jupyter kernel (:class:`dgnn_lab.widgets.progress.ProgressView`, shown at once) and
    :class:`TextProgress` (stderr) elsewhere."""
    if progress is None or progress is False:
        return None
    if progress is True:
        if _in_kernel():
            try:
                from dgnn_lab.widgets.progress import ProgressView
            except ImportError:  # no widget library: plain lines
                return TextProgress(what)
            return ProgressView(title or what).show()
        return TextProgress(what)
    if callable(progress):
        return progress
    raise ValueError(f"progress must be True, False or a callable taking event dicts, got {progress!r}")


def _emit(sink: Callable[[dict], Any] | None, event: dict) -> None:
    """Give ``event`` to ``sink``; a failing sink is logged once and never stops the runs."""
    if sink is None:
        return
    try:
        sink(event)
    except Exception:  # noqa: BLE001 - progress is a view: it must not end a comparison
        import logging

        if not getattr(sink, "_dgnn_failed", False):
            logging.getLogger(__name__).exception("progress callback raised (runs go on)")
            try:
                sink._dgnn_failed = True  # type: ignore[attr-defined]
            except AttributeError:
                pass


def headline(records: list[dict]) -> str:
    """A run's headline figures in one line: test accuracy at the best validation epoch, time per epoch,
    training (and evaluation) traffic per epoch."""
    n = max(len(rec.epoch_numbers(records)), 1)
    total = rec.total_bytes(records)
    train = rec.split_bytes(records)["train"]
    acc, spe = rec.test_acc_at_best_val(records), rec.s_per_epoch(records)
    parts = [f"test acc {acc:.3f} at best val" if acc is not None else "not evaluated",
             f"{_sig(spe)} s/epoch" if spe is not None else "untimed",
             f"{rec.format_bytes(train / n)}/epoch training traffic"]
    if total - train:
        parts.append(f"{rec.format_bytes((total - train) / n)}/epoch evaluation")
    return " · ".join(parts)


# ----------------------------------------------------------------------------------------------- compare

def compare(configs: Iterable | Mapping, base: TrainConfig | Mapping | None = None, *,
            root: str | Path | None = None, reuse: bool = True, errors: str = "raise",
            on_start: Callable[[str, RunHandle], Any] | None = None,
            on_done: Callable[[str, RunResult, bool], Any] | None = None,
            stop: threading.Event | Callable[[], bool] | None = None, repeats: int = 1,
            progress: bool | Callable[[dict], Any] = True) -> Comparison:
    """Train every configuration (see :func:`resolve`) ``repeats`` times, one run after another, for real,
    and tabulate them: one row per configuration.

    Each run goes in :func:`run_dir_for` under ``root`` (default ``compare/`` in :func:`dgnn_lab.settings.runs_root`),
    repeat ``i`` in its own directory (``-r<i>`` for ``i > 0``); with ``reuse`` a finished run found there is
    loaded, not retrained (a row is ``cached`` when all its repeats were). ``on_start(name, handle)`` is
    called as each real run starts (a dashboard can attach to the handle); ``on_done(name, result, cached)``
    after each run. ``stop`` (an Event or a callable) is checked between runs: once set, the remaining runs
    are skipped. ``errors="raise"`` re-raises a worker's failure (after stopping); ``"record"`` keeps going
    and lists it in ``Comparison.errors`` and the table's ``status``. ``progress`` shows each run while it
    trains (see the module docstring): ``True`` a live view in a notebook or a line per run on stderr,
    ``False`` nothing, or a callable of the events.

    **Time that holds.** With ``repeats=k`` the row's ``s_per_epoch`` is the median over the k runs (each
    run's own figure is its median epoch time), with ``s_per_epoch_min`` / ``s_per_epoch_max`` (the range)
    and ``s_per_epoch_range_pct``; ``too_wide_to_conclude`` flags a configuration whose range overlaps
    another's or exceeds 25 % of its median (the rule: :func:`timing_summary`). ``processes``,
    ``threads_per_worker``, ``cores`` and ``oversubscribed`` say what was measured on. Accuracy and bytes
    come from the first repeat (a seed fixes them: ``bytes_repeatable`` says whether every repeat sent the
    same bytes; a protocol whose traffic depends on timing, such as a parameter server, may not).
    """
    if errors not in ("raise", "record"):
        raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    resolved = resolve(configs, base)
    stopped = (stop.is_set if isinstance(stop, threading.Event) else stop) or (lambda: False)
    count = len(resolved) * repeats
    sink = progress_sink(progress, what="compare", title=f"compare: {len(resolved)} configuration"
                         f"{'s' if len(resolved) != 1 else ''}" + (f" x {repeats} runs" if repeats > 1 else ""))
    rows, results, errs, runs_of, run_rows = [], {}, {}, {}, []
    index = 0
    try:
        for name, cfg in resolved.items():
            done_runs: list[tuple[RunResult, bool]] = []
            failed: BaseException | None = None
            for r in range(repeats):
                if stopped():
                    break
                index += 1
                label = name if repeats == 1 else f"{name} #{r + 1}"
                run_dir = run_dir_for(name, cfg, root, r)
                t0 = time.monotonic()
                _emit(sink, {"event": "start", "run": label, "name": name, "repeat": r, "index": index,
                             "count": count, "epochs": cfg.epochs})
                result = _load_cached(run_dir) if reuse else None
                cached = result is not None
                if result is None:
                    result, failed = _train(cfg, run_dir, name, label, sink, on_start)
                status = "cached" if cached else (result.status if result is not None else "failed")
                _emit(sink, {"event": "done", "run": label, "name": name, "repeat": r, "index": index,
                             "count": count, "status": status, "elapsed_s": time.monotonic() - t0,
                             "line": headline(result.records) if result is not None else _one_line(failed)})
                if failed is not None and errors == "raise":
                    raise failed
                if failed is not None:
                    run_rows.append({"name": name, "repeat": r, "status": "failed", "cached": False,
                                     "error": _one_line(failed), "run_dir": str(run_dir)})
                    break
                done_runs.append((result, cached))
                run_rows.append(_run_row(name, r, result, cached))
                if on_done is not None:
                    on_done(name, result, cached)
            if failed is not None:
                errs[name] = failed
                rows.append({"name": name, "mode": cfg.mode, "status": "failed", "cached": False,
                             "error": _one_line(failed), "run_dir": str(run_dir_for(name, cfg, root))})
                continue
            if not done_runs:
                break  # stopped
            results[name] = done_runs[0][0]
            runs_of[name] = [res for res, _ in done_runs]
            rows.append(summarize(name, done_runs[0][0], cached=all(c for _, c in done_runs)))
    finally:
        _emit(sink, {"event": "close"})
    timing = timing_summary({n: [rec.s_per_epoch(res.records) for res in rs] for n, rs in runs_of.items()})
    for i, row in enumerate(rows):
        name = row["name"]
        if name in timing:
            rows[i] = _with_timing(row, timing[name], len(runs_of[name]))
            if repeats > 1:
                rows[i]["bytes_repeatable"] = len({rec.total_bytes(res.records) for res in runs_of[name]}) == 1
    return Comparison(table=ReportTable(rows), results=results, configs=resolved, errors=errs, repeats=runs_of,
                      runs=ReportTable(run_rows))


def _train(cfg: TrainConfig, run_dir: Path, name: str, label: str, sink: Callable[[dict], Any] | None,
           on_start: Callable[[str, Any], Any] | None) -> tuple[RunResult | None, Exception | None]:
    """Train ``cfg`` afresh in ``run_dir``: ``(result, None)``, or ``(None, error)`` when a worker failed."""
    import copy

    if run_dir.exists():  # an unfinished or failed attempt (or reuse=False): train afresh
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    run_cfg = copy.copy(cfg)  # each run partitions into its own directory; the resolved config stays as given
    run_cfg.run_dir = str(run_dir)
    counter = None
    if sink is not None:
        counter = EpochCounter(cfg.workers, lambda n: _emit(sink, {"event": "epoch", "run": label, "name": name,
                                                                   "epoch": n, "epochs": cfg.epochs}))
    handle = api.start(run_cfg, on_record=counter)
    if on_start is not None:
        on_start(name, handle)
    try:
        return handle.wait(), None
    except KeyboardInterrupt:
        handle.stop()
        raise
    except Exception as e:  # noqa: BLE001 - a WorkerError: the caller raises or records it, as asked
        return None, e


def _run_row(name: str, repeat: int, result: RunResult, cached: bool) -> dict:
    recs = result.records
    total = rec.total_bytes(recs)
    train = rec.split_bytes(recs)["train"]
    return {"name": name, "repeat": repeat, "status": result.status, "cached": cached,
            "s_per_epoch": rec.s_per_epoch(recs), "test_acc_at_best_val": rec.test_acc_at_best_val(recs),
            "train_bytes": train, "eval_bytes": total - train, "total_bytes": total, "elapsed_s": result.elapsed_s,
            "run_dir": str(result.run_dir) if result.run_dir is not None else None}
