"""Measured comparisons of distributed mini-batch training: feature caches, pipelining, seed splits.

Every number comes from real runs (worker processes, the instrumented communicator), never from a model of
them. :func:`run_variants` runs several configurations one after another inside ONE launch of worker
processes: starting P processes and importing torch costs seconds (far more than a small run's training), so
a sweep pays it once. Each variant runs the ordinary worker entry of its mode (``worker_main``) from scratch:
its own setup, cache and process-group traffic (the launching process partitions once per distinct
partitioning and saves the plans beside the run); its records are tagged with the variant's name
and split into one :class:`~dgnn_lab.dist.RunResult` per variant, exactly as if it had been launched alone.

* :func:`cache_sweep`: cache policy x capacity -> measured hit rate, rows and bytes fetched per epoch, saving;
* :func:`pipeline_comparison`: pipelining off vs on -> stage seconds, overlap, loop time, speedup;
* :func:`seed_split_comparison`: locality-aware vs chunked seed split -> remote rows, bytes, time;
* :func:`minibatch_study`: all three in one launch, sharing the baseline run (notebook 05);
* :func:`minibatch_metrics`: the per-epoch figures of one mini-batch run (the rows of those tables).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dgnn_lab import records as rec
from dgnn_lab.experiments.compare import EpochCounter, ReportTable, _emit, _sig, progress_sink
from dgnn_lab.sampling.cache import CACHE_POLICIES, check_cache_fraction, check_cache_policy
from dgnn_lab.train.api import entry_for, make_config
from dgnn_lab.train.config import TrainConfig

__all__ = ["MinibatchStudy", "cache_sweep", "minibatch_metrics", "minibatch_study", "pipeline_comparison",
           "run_variants", "seed_split_comparison", "variants_worker"]

ENTRY = "dgnn_lab.experiments.studies:variants_worker"


class _VariantContext:
    """A worker context whose records carry the variant's name (everything else is the real context)."""

    def __init__(self, ctx, name: str) -> None:
        self._ctx, self._name = ctx, name

    def __getattr__(self, attr: str):
        return getattr(self._ctx, attr)

    def emit(self, record: dict) -> None:
        self._ctx.emit({**record, "variant": self._name})


def variants_worker(ctx, config: dict) -> dict:
    """Worker entry of :func:`run_variants`: run each ``config["variants"]`` entry ``[name, entry, cfg]`` in
    turn, in this one process group (every rank in the same order)."""
    from dgnn_lab.dist.context import resolve_entry

    done = {}
    for name, entry, cfg in config["variants"]:
        out = resolve_entry(entry)(_VariantContext(ctx, name), cfg)
        ctx.emit({"type": "variant_done", "variant": name, "result": out if isinstance(out, dict) else None})
        done[name] = True
    return {"variants": list(done)}


def _variant_headline(records: list[dict]) -> str:
    """A variant's headline figures in one line: test accuracy, feature bytes fetched, loop time, hit rate."""
    m = rec.minibatch_metrics(records)
    secs = m["loop_s"] if math.isfinite(m["loop_s"]) else m["epoch_s"]
    parts = [f"test acc {m['test_acc']:.3f}" if m["test_acc"] is not None else "not evaluated",
             f"{rec.format_bytes(m['bytes_fetched'])}/epoch fetched", f"{_sig(secs)} s/epoch loop"]
    if m["cache_lookups"] and m["cache_lookups"] > 0:
        parts.append(f"hit rate {m['hit_rate']:.2f}")
    return " · ".join(parts)


class _VariantProgress:
    """``on_record`` hook of :func:`run_variants`: progress events per variant (``start`` at its first record,
    ``epoch`` as every one of its workers finishes one, ``done`` once every rank reported ``variant_done``),
    then the caller's own ``on_record``."""

    def __init__(self, sink: Callable[[dict], Any], cfgs: Mapping[str, TrainConfig], world_size: int,
                 on_record: Callable[[dict], Any] | None) -> None:
        self.sink, self.cfgs, self.world_size, self.on_record = sink, cfgs, world_size, on_record
        self.names = list(cfgs)
        self._state: dict[str, dict] = {}

    def __call__(self, record: dict) -> None:
        name = record.get("variant")
        if name in self.cfgs:
            self._track(name, record)
        if self.on_record is not None:
            self.on_record(record)

    def _track(self, name: str, record: dict) -> None:
        st = self._state.get(name)
        if st is None:
            c = self.cfgs[name]

            def on_epoch(n: int) -> None:
                _emit(self.sink, {"event": "epoch", "run": name, "name": name, "epoch": n, "epochs": c.epochs})

            st = self._state[name] = {"t0": time.monotonic(), "records": [], "ranks": set(), "finished": False,
                                      "counter": EpochCounter(c.workers, on_epoch)}
            _emit(self.sink, {"event": "start", "run": name, "name": name, "repeat": 0,
                              "index": self.names.index(name) + 1, "count": len(self.names), "epochs": c.epochs})
        if record.get("type") == "variant_done":
            st["ranks"].add(record.get("rank"))
            if len(st["ranks"]) >= self.world_size:
                self._finish(name, "done")
            return
        st["records"].append(record)
        st["counter"](record)

    def _finish(self, name: str, status: str) -> None:
        st = self._state[name]
        if st["finished"]:
            return
        st["finished"] = True
        try:
            line = _variant_headline(st["records"]) if status == "done" else ""
        except (ValueError, KeyError, TypeError):  # no epochs (failed early) or not a mini-batch variant
            line = ""
        _emit(self.sink, {"event": "done", "run": name, "name": name, "repeat": 0,
                          "index": self.names.index(name) + 1, "count": len(self.names), "status": status,
                          "elapsed_s": time.monotonic() - st["t0"], "line": line})

    def close(self, status: str) -> None:
        """The launch ended: variants that had not finished take its ``status``; the view closes."""
        for name in list(self._state):
            self._finish(name, status)
        _emit(self.sink, {"event": "close"})


def run_variants(base: TrainConfig | Mapping | None, variants: Mapping[str, Mapping[str, Any]], *,
                 run_dir: str | None = None, on_record: Callable[[dict], Any] | None = None,
                 progress: bool | Callable[[dict], Any] = True) -> dict:
    """Run ``base`` updated by each of ``variants`` (name -> field overrides) in one launch; returns
    ``{name: RunResult}`` in the order given. Every variant is validated before any process starts; all must
    use the same number of workers, backend and threads. Raises the first worker failure (``WorkerError``).

    ``progress`` shows each variant while it trains: ``True`` a live bar per variant in a notebook (epochs
    done, elapsed time, then its headline figures) or one line per variant on stderr elsewhere, ``False``
    nothing, or a callable of the progress events (see :mod:`dgnn_lab.experiments.compare`)."""
    from dgnn_lab.dist import RunResult, launch
    from dgnn_lab.train.api import _prepare_dataset, _run_dir, prepare_run

    if not isinstance(variants, Mapping) or not variants:
        raise ValueError(f"variants must be a non-empty mapping of name -> config overrides, got {variants!r}")
    cfgs = {}
    for name, over in variants.items():
        if not isinstance(over, Mapping):
            raise ValueError(f"variant {name!r}: overrides must be a dict of TrainConfig fields, got {over!r}")
        cfgs[str(name)] = make_config(base if base is not None else {}, **dict(over))
    first = next(iter(cfgs.values()))
    for name, c in cfgs.items():
        same = (c.world_size, c.backend, c.threads_per_worker) == (first.world_size, first.backend,
                                                                   first.threads_per_worker)
        if not same:
            raise ValueError(f"variant {name!r} changes the launch (workers/world size, backend or threads); "
                             f"run_variants runs every variant in one launch, so only training fields may vary")
    rd = _run_dir(first if run_dir is None else make_config(first, run_dir=run_dir))
    plans: dict[str, str] = {}  # one plan per distinct partitioning, built here, once
    data: dict[str, Any] = {}
    objects: dict = {}
    for c in cfgs.values():
        key = json.dumps([c.dataset, c.dataset_args, c.to_dict()["partition"], c.seed], sort_keys=True, default=str)
        if key not in plans and c.partition_dir is None:
            dkey = json.dumps([c.dataset, c.dataset_args], sort_keys=True, default=str)
            if dkey not in data:
                data[dkey] = _prepare_dataset(c)
            sub = rd / f"variant-{len(plans)}"
            plans[key] = prepare_run(c, sub, data[dkey]).partition_dir
        if c.partition_dir is None:
            c.partition_dir = plans[key]
        objects.update(c.by_value())
    spec = {"variants": [[n, entry_for(c), c.to_dict()] for n, c in cfgs.items()]}
    sink = progress_sink(progress, what="variants",
                         title=f"{len(cfgs)} variants in one launch of {first.world_size} processes")
    hook = _VariantProgress(sink, cfgs, first.world_size, on_record) if sink is not None else None
    try:
        handle = launch(ENTRY, spec, first.world_size, backend=first.backend, run_dir=rd,
                        timeout_s=max(c.timeout_s for c in cfgs.values()),
                        threads_per_worker=first.threads_per_worker, on_record=hook or on_record, objects=objects)
        whole = handle.wait()
    except BaseException as e:
        if hook is not None:
            hook.close("interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    if hook is not None:
        hook.close(whole.status)
    out = {}
    for name, c in cfgs.items():
        recs = [r for r in whole.records if r.get("variant") == name or r.get("type") == "ready"]
        out[name] = RunResult(records=recs, status=whole.status, config=c.to_dict(), world_size=whole.world_size,
                              cores=whole.cores, run_dir=whole.run_dir, backend=whole.backend,
                              num_threads=whole.num_threads, entry=entry_for(c), elapsed_s=None, error=whole.error)
    return out


def minibatch_metrics(result) -> dict:
    """Per-epoch figures of a mini-batch run (:func:`dgnn_lab.records.minibatch_metrics`), summed over workers
    and averaged over epochs: remote rows and bytes fetched for training (``fetch_resp``: the feature rows;
    ``fetch_req``: the ids asked for), sampling bytes (``sample_*``), requests, cache hits / lookups and the hit
    rate, stage seconds (``sample_s``, ``fetch_s``, ``train_s``) and their ``overlap_s``, the loop's wall time
    ``loop_s`` (slowest worker) and ``epoch_s``; the cache's size (rows, bytes: its one-off fill traffic) and
    the last test accuracy."""
    return rec.minibatch_metrics(result.records)


def _table(results: Mapping[str, Any], columns: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    # a ReportTable: numbers stay numbers, the display reads (no 5.299e+04)
    return ReportTable([{"variant": name, **columns[name], **minibatch_metrics(r)} for name, r in results.items()])


def cache_sweep(base: TrainConfig | Mapping | None, *, policies: Iterable[str] = CACHE_POLICIES,
                sizes: Sequence[float] = (0.05, 0.1, 0.25, 0.5), run_dir: str | None = None,
                progress: bool | Callable[[dict], Any] = True) -> pd.DataFrame:
    """Train ``base`` (mode ``minibatch``) with every cache ``policy`` at every capacity in ``sizes`` (fractions
    of the remote candidate nodes; ``none`` once), all in one launch. One row per run: ``policy``,
    ``cache_size``, the :func:`minibatch_metrics` and ``bytes_saved`` (fraction of the no-cache run's feature
    bytes not fetched; NaN without a ``none`` run). Identical seeds everywhere, so the runs sample the same
    batches and differ only in where the rows come from."""
    variants, cols = _cache_variants(policies, sizes)
    return _cache_table(run_variants(base, variants, run_dir=run_dir, progress=progress), cols)


def _cache_variants(policies: Iterable[str], sizes: Sequence[float]) -> tuple[dict, dict]:
    policies = [check_cache_policy(p) for p in policies]
    sizes = [check_cache_fraction(s) for s in sizes]
    if not policies or not sizes:
        raise ValueError(f"a cache sweep needs at least one policy and one size, got {policies} and {sizes}")
    variants, cols = {}, {}
    for p in policies:
        for s in ([0.0] if p == "none" else sizes):
            name = "none" if p == "none" else f"{p} {s:g}"
            variants[name] = {"mode": "minibatch", "cache": p, "cache_size": s}
            cols[name] = {"policy": p, "cache_size": s}
    return variants, cols


def _cache_table(results: Mapping[str, Any], cols: Mapping[str, dict]) -> pd.DataFrame:
    table = _table(results, cols)
    base_bytes = table.loc[table["policy"] == "none", "bytes_fetched"]
    table["bytes_saved"] = 1.0 - table["bytes_fetched"] / float(base_bytes.iloc[0]) if len(base_bytes) and \
        float(base_bytes.iloc[0]) > 0 else float("nan")
    return table


def pipeline_comparison(base: TrainConfig | Mapping | None, *, run_dir: str | None = None,
                        results: dict | None = None, progress: bool | Callable[[dict], Any] = True) -> pd.DataFrame:
    """Train ``base`` (mode ``minibatch``) with pipelining off, then on, in one launch: one row each with the
    :func:`minibatch_metrics` and ``speedup`` = loop time off / loop time on (measured in the same launch).
    Pass a dict as ``results`` to get the two ``RunResult``s too (keys ``off``, ``on``)."""
    res = run_variants(base, {"off": {"mode": "minibatch", "pipeline": False},
                              "on": {"mode": "minibatch", "pipeline": True}}, run_dir=run_dir, progress=progress)
    if results is not None:
        results.update(res)
    return _pipeline_table(res)


def _pipeline_table(res: Mapping[str, Any]) -> pd.DataFrame:
    table = _table(res, {"off": {"pipeline": False}, "on": {"pipeline": True}})
    table["speedup"] = float(table.loc[0, "loop_s"]) / table["loop_s"]
    return table


def seed_split_comparison(base: TrainConfig | Mapping | None, *, run_dir: str | None = None,
                          results: dict | None = None,
                          progress: bool | Callable[[dict], Any] = True) -> pd.DataFrame:
    """Train ``base`` (mode ``minibatch``) with the locality-aware (``local``) and the naive chunked
    (``chunk``) seed split in one launch: one row each (:func:`minibatch_metrics`, ``seeds_local``: the
    fraction of seeds a worker owns). ``results``, if a dict, receives the two ``RunResult``s."""
    res = run_variants(base, {"local": {"mode": "minibatch", "seed_split": "local"},
                              "chunk": {"mode": "minibatch", "seed_split": "chunk"}}, run_dir=run_dir,
                       progress=progress)
    if results is not None:
        results.update(res)
    return _split_table(res)


def _split_table(res: Mapping[str, Any]) -> pd.DataFrame:
    table = _table(res, {"local": {"seed_split": "local"}, "chunk": {"seed_split": "chunk"}})
    table["seeds_local"] = [rec.local_seed_share(r.records) for r in res.values()]
    return table


@dataclass
class MinibatchStudy:
    """The tables of :func:`minibatch_study` and the ``RunResult`` of every variant (``results``)."""

    seed_split: pd.DataFrame
    caches: pd.DataFrame
    pipeline: pd.DataFrame
    results: dict = field(default_factory=dict)


def minibatch_study(base: TrainConfig | Mapping | None, *, cache_policies: Iterable[str] = CACHE_POLICIES,
                    cache_sizes: Sequence[float] = (0.1, 0.5), run_dir: str | None = None,
                    progress: bool | Callable[[dict], Any] = True) -> MinibatchStudy:
    """Seed splits, caches and pipelining in ONE launch: the tables of :func:`seed_split_comparison`,
    :func:`cache_sweep` and :func:`pipeline_comparison`, sharing one baseline run (``base`` with seed split
    ``local``, no cache, no pipelining), which appears in all three. Saves two launches' process start-up and
    imports, which on a small machine cost more than a small run's training. ``progress``: see
    :func:`run_variants` (a bar, or a line on stderr, per variant while it trains)."""
    baseline = {"mode": "minibatch", "seed_split": "local", "cache": "none", "cache_size": 0.0, "pipeline": False}
    cache_variants, cache_cols = _cache_variants(cache_policies, cache_sizes)
    variants: dict[str, dict] = {"local": baseline, "chunk": {**baseline, "seed_split": "chunk"}}
    for name, over in cache_variants.items():
        if name != "none":
            variants[name] = {**baseline, **over}
    variants["pipeline on"] = {**baseline, "pipeline": True}
    res = run_variants(base, variants, run_dir=run_dir, progress=progress)
    caches = {name: res["local" if name == "none" else name] for name in cache_variants}
    return MinibatchStudy(
        seed_split=_split_table({"local": res["local"], "chunk": res["chunk"]}),
        caches=_cache_table(caches, cache_cols),
        pipeline=_pipeline_table({"off": res["local"], "on": res["pipeline on"]}),
        results=res)
