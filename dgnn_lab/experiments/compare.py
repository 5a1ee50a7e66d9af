"""Compare training strategies for real: run named configurations one after another and tabulate them.

Each configuration is a full :class:`~dgnn_lab.train.config.TrainConfig` (a ``base`` plus a preset's or your
own overrides) trained by real worker processes in its own run directory. The directory is named by the
configuration's name and a stable hash of everything that changes its numbers
(``runs/compare/<name>-<hash>/``), so asking again for a configuration that already finished (status
``done``) re-opens it with :meth:`dgnn_lab.dist.RunResult.load` instead of training it again: a notebook
re-opens its comparisons instantly, and an interrupted or failed run is trained afresh::

    from dgnn_lab.experiments.compare import compare
    cmp = compare(["sync", "stale", "int8"], base={"dataset": "cora", "workers": 2, "epochs": 100})
    cmp.table          # one row per configuration: accuracy, bytes, time per epoch, wait share, staleness
    cmp.records()      # name -> telemetry records, for dgnn_lab.viz.comparison

A preset is a named set of overrides (:data:`PRESETS`); a strategy a student registers with
:func:`dgnn_lab.protocols.halo.register_strategy` becomes a preset of the same name.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dgnn_lab import records as rec
from dgnn_lab.train import api
from dgnn_lab.train.config import TrainConfig

if TYPE_CHECKING:
    import pandas as pd

    from dgnn_lab.dist import RunHandle, RunResult

__all__ = ["PRESETS", "Comparison", "compare", "config_hash", "preset", "preset_names", "resolve", "run_dir_for",
           "summarize"]

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
_DEFAULT_ROOT = Path("runs") / "compare"
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
        used = {n: obj.__globals__[n] for n in _all_names(obj.__code__)
                if isinstance(obj.__globals__.get(n), simple)}  # module-level constants the code reads
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


def run_dir_for(name: str, config: TrainConfig | Mapping, root: str | Path | None = None) -> Path:
    """``root/<name>-<hash>``: where ``config`` (called ``name``) runs and is found again."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._") or "run"
    return Path(root if root is not None else _DEFAULT_ROOT) / f"{safe}-{config_hash(config)}"


# -------------------------------------------------------------------------------------------------- rows

def summarize(name: str, result: RunResult, *, cached: bool = False) -> dict:
    """One table row for a run: what it was, accuracy, bytes, time per epoch, wait share, staleness.

    Bytes are sent bytes summed over workers: ``halo_bytes`` (halo rows and their gradients),
    ``training_bytes`` (everything but evaluation and metrics) and ``total_bytes``; ``*_per_epoch`` divide by
    the epochs run.

    ``s_per_epoch`` is the median over epochs of the slowest worker's epoch time, leaving out epoch 0 when a
    run has more than two (it pays one-off costs). ``wait_share`` is the training workers' waiting over their
    epoch time (a parameter server, which mostly waits by design, is left out). ``*staleness_mean/max`` give
    the mean and max over everything the protocol observed, from its ``*staleness_hist`` histograms when the
    records carry them (``staleness``: age in epochs of the halo rows aggregated; ``grad_staleness``: rounds a
    gradient is late at the parameter server), else over the per-epoch values; ``skipped_blocks`` and
    ``straggler_s`` (injected delay) are totals, where recorded.
    """
    s = result.summary()
    cfg = result.config or {}
    recs = result.records
    row = {
        "name": name, "mode": cfg.get("mode"), "sync": cfg.get("sync"), "quantize": cfg.get("quantize"),
        "workers": cfg.get("workers"), "status": result.status, "cached": cached, "epochs": s["epochs"],
        "test_acc": s["test_acc"], "best_val_acc": s["best_val_acc"],
        "test_acc_at_best_val": s["test_acc_at_best_val"],
        "halo_bytes": s["halo_bytes"], "training_bytes": rec.training_bytes(recs), "total_bytes": s["total_bytes"],
        **{f"{kind}_bytes_per_epoch": rec.bytes_per_epoch(recs, kind) for kind in ("halo", "training", "total")},
        "s_per_epoch": rec.s_per_epoch(recs),
        "wait_share": rec.wait_share(recs, cfg.get("workers")),  # the training workers, not a server
        "elapsed_s": s["elapsed_s"], "oversubscribed": s["oversubscribed"],
    }
    for what, st in rec.staleness_summary(recs).items():
        row[f"{what}_mean"], row[f"{what}_max"] = st["mean"], st["max"]
    for col in _SUMMED:
        total = rec.field_total(recs, col)
        if total is not None:
            row[col] = total
    row["run_dir"] = str(result.run_dir) if result.run_dir is not None else None
    return row


@dataclass(repr=False)
class Comparison:
    """The outcome of :func:`compare`: ``table`` (one row per configuration, in the order given), the
    ``results`` (name -> ``RunResult``) and the ``configs`` (name -> ``TrainConfig``) they ran."""

    table: pd.DataFrame
    results: dict[str, RunResult] = field(default_factory=dict)
    configs: dict[str, TrainConfig] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def records(self) -> dict[str, list[dict]]:
        """Name -> telemetry records: what the figures of :mod:`dgnn_lab.viz.comparison` take."""
        return {name: r.records for name, r in self.results.items()}

    def __repr__(self) -> str:
        cached = int(self.table["cached"].sum()) if "cached" in self.table else 0
        return f"Comparison({list(self.results)}, cached={cached}, errors={list(self.errors)})"

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format=lambda v: f"{v:.4g}")


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


def compare(configs: Iterable | Mapping, base: TrainConfig | Mapping | None = None, *,
            root: str | Path | None = None, reuse: bool = True, errors: str = "raise",
            on_start: Callable[[str, RunHandle], Any] | None = None,
            on_done: Callable[[str, RunResult, bool], Any] | None = None,
            stop: threading.Event | Callable[[], bool] | None = None) -> Comparison:
    """Train every configuration (see :func:`resolve`) one after another, for real, and tabulate them.

    Each runs in :func:`run_dir_for` under ``root`` (default ``runs/compare`` in the current directory); with
    ``reuse`` a finished run found there is loaded, not retrained (its row says ``cached``). ``on_start(name,
    handle)`` is called as each real run starts (a dashboard can attach to the handle); ``on_done(name, result,
    cached)`` after each. ``stop`` (an Event or a callable) is checked between runs: once set, the remaining
    configurations are skipped. ``errors="raise"`` re-raises a worker's failure (after stopping);
    ``"record"`` keeps going and lists it in ``Comparison.errors`` and the table's ``status``.
    """
    import pandas as pd

    if errors not in ("raise", "record"):
        raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
    resolved = resolve(configs, base)
    stopped = (stop.is_set if isinstance(stop, threading.Event) else stop) or (lambda: False)
    rows, results, errs = [], {}, {}
    for name, cfg in resolved.items():
        if stopped():
            break
        run_dir = run_dir_for(name, cfg, root)
        result = _load_cached(run_dir) if reuse else None
        cached = result is not None
        if result is None:
            if run_dir.exists():  # an unfinished or failed attempt (or reuse=False): train afresh
                shutil.rmtree(run_dir)
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            cfg.run_dir = str(run_dir)
            handle = api.start(cfg)
            if on_start is not None:
                on_start(name, handle)
            try:
                result = handle.wait()
            except KeyboardInterrupt:
                handle.stop()
                raise
            except Exception as e:  # noqa: BLE001 - a WorkerError: raised or recorded, as asked
                if errors == "raise":
                    raise
                errs[name] = e
                rows.append({"name": name, "mode": cfg.mode, "status": "failed", "cached": False,
                             "error": _one_line(e), "run_dir": str(run_dir)})
                continue
        results[name] = result
        rows.append(summarize(name, result, cached=cached))
        if on_done is not None:
            on_done(name, result, cached)
    return Comparison(table=pd.DataFrame(rows), results=results, configs=resolved, errors=errs)
