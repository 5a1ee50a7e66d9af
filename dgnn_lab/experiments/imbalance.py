"""Workload imbalance, measured: remedies trained side by side, a cost model calibrated on this machine.

Everything here is real runs through :func:`dgnn_lab.experiments.compare.compare` (cached in the runs root,
so a notebook re-opens them instantly):

* :func:`remedies`: the same run settings under each remedy of :data:`REMEDIES` (METIS as the baseline, METIS
  with degree weights, the ``volume`` partitioner, vertex-cut training with HDRF, the cost-model partitioner)
  -> work imbalance, CPU and wall-time imbalance, bytes and time per epoch, accuracy;
* :func:`calibrate`: short runs under several partitions, their per-worker work and busy time fitted into a
  :class:`~dgnn_lab.partition.cost.CostModel` (seconds per edge, per row, per halo byte, per epoch);
* :func:`validate`: the model's predicted epoch time of runs (not used to fit it) against the measured one;
* :func:`frontier`: the busiest worker's work against the bytes each remedy moves: the trade between
  balance and communication.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dgnn_lab import records as rec
from dgnn_lab.experiments.compare import Comparison, ReportTable, compare
from dgnn_lab.partition.cost import CostModel, fit_cost_model
from dgnn_lab.train.config import TrainConfig

__all__ = ["CALIBRATION_PARTITIONS", "REMEDIES", "calibrate", "frontier", "predicted_vs_measured", "remedies",
           "validate"]

#: Each remedy's overrides of a base config (``cost`` also needs a cost model: :func:`remedies` adds it).
REMEDIES: dict[str, dict] = {
    "metis": {"partition": "metis"},
    "metis+degree": {"partition": "metis", "partition_args": {"balance": "degree"}},
    "volume": {"partition": "volume"},
    "vertex-cut (hdrf)": {"partition": "hdrf"},
    "cost model": {"partition": "cost"},
}
#: The partitions :func:`calibrate` measures: different spreads of edges, rows and halo over the workers.
CALIBRATION_PARTITIONS = ("random", "range", "ldg", "metis", "metis+degree")

_IMBALANCE_COLUMNS = ["name", "partition", "work_imbalance", "cpu_imbalance", "time_imbalance", "max_work_edges",
                      "train_bytes_per_epoch", "s_per_epoch", "test_acc", "cached"]


def remedies(base: TrainConfig | Mapping, names: Sequence[str] | None = None, *,
             cost_model: CostModel | str | Path | None = None, **compare_kw: Any) -> Comparison:
    """Train ``base`` under each remedy in ``names`` (default: all of :data:`REMEDIES`, ``cost model`` only
    when ``cost_model`` is given: a :class:`CostModel` is saved into the runs root so the run's config can
    name it by path). Returns the :func:`compare` result; ``.table`` has the imbalance columns."""
    names = list(names) if names is not None else [n for n in REMEDIES if n != "cost model" or cost_model]
    unknown = [n for n in names if n not in REMEDIES]
    if unknown:
        raise ValueError(f"unknown remedy {', '.join(map(repr, unknown))}; allowed: {', '.join(REMEDIES)}")
    configs = {}
    for name in names:
        over = dict(REMEDIES[name])
        if over["partition"] == "cost":
            if cost_model is None:
                raise ValueError("the 'cost model' remedy needs cost_model= (a CostModel or the path of a saved one)")
            over["partition_args"] = {"model": str(_model_path(cost_model))}
        configs[name] = over
    return compare(configs, base, **compare_kw)


def _model_path(model: CostModel | str | Path) -> Path:
    if not isinstance(model, CostModel):
        return Path(model).resolve()
    import hashlib
    import json

    from dgnn_lab import settings

    key = hashlib.sha256(json.dumps([model.a, model.b, model.c, model.d, model.widths, model.settings],
                                    sort_keys=True, default=str).encode()).hexdigest()[:10]
    return model.save(settings.runs_root() / "cost_models" / f"cost-{key}.json").resolve()


def calibrate(base: TrainConfig | Mapping, partitions: Sequence[str] = CALIBRATION_PARTITIONS, *,
              dataset_args: Iterable[Mapping] | None = None, **compare_kw: Any) -> tuple[CostModel, Comparison]:
    """Fit a :class:`CostModel` to real runs of ``base`` under each of ``partitions`` (names of
    :data:`REMEDIES` or partition methods), on each of ``dataset_args`` (default: the base's graph only).
    Every run is measured on this machine with the base's workers and threads; the model is valid for those
    settings (``model.settings``). Returns the model and the comparison of the calibration runs."""
    base = dict(base) if isinstance(base, Mapping) else {f: getattr(base, f) for f in TrainConfig.__dataclass_fields__}
    graphs = list(dataset_args) if dataset_args is not None else [base.get("dataset_args", {})]
    configs = {}
    for gi, args in enumerate(graphs):
        for name in partitions:
            over = dict(REMEDIES.get(name, {"partition": name}))
            over["dataset_args"] = dict(args)
            configs[name if len(graphs) == 1 else f"{name} @{gi}"] = over
    cmp = compare(configs, base, **compare_kw)
    results = list(cmp.results.values())
    if not results:
        raise ValueError("no calibration run finished")
    start = next(r for r in results[0].records if r.get("type") == "start" and "exchange_widths" in r)
    cfg = results[0].config
    settings = {k: cfg.get(k) for k in ("dataset", "model", "hidden", "layers", "workers", "threads_per_worker")}
    settings["threads"] = results[0].num_threads
    model = fit_cost_model(results, layers=int(cfg["layers"]), widths=start["exchange_widths"],
                           backward=start["backward_layers"], settings=settings)
    return model, cmp


def predicted_vs_measured(model: CostModel, result: Any) -> dict:
    """One run's measured median epoch time against the model's prediction from the run's own plan."""
    from dgnn_lab.partition import load_plan

    if result.run_dir is None or not (Path(result.run_dir) / "plan").exists():
        raise ValueError("the run has no saved plan (run directory with plan/) to predict from")
    plan = load_plan(Path(result.run_dir) / "plan")
    measured = rec.s_per_epoch(result.records)
    predicted = model.predict_epoch(plan)
    return {"predicted_s": predicted, "measured_s": measured,
            "error": (predicted - measured) / measured if measured else None}


def validate(model: CostModel, runs: Mapping[str, Any]) -> ReportTable:
    """Predicted against measured time per epoch for each named run (``Comparison.results``): one row each,
    with the relative error."""
    rows = [{"name": name, "partition": (res.config or {}).get("partition"), **predicted_vs_measured(model, res)}
            for name, res in runs.items()]
    return ReportTable(rows)


def frontier(comparison: Comparison) -> ReportTable:
    """The imbalance columns of a :func:`remedies` (or any) comparison, sorted by bytes per epoch; a row is on
    the frontier when no other row has both less work on its busiest worker and fewer bytes."""
    cols = [c for c in _IMBALANCE_COLUMNS if c in comparison.table.columns]
    t = pd.DataFrame(comparison.table[cols]).sort_values("train_bytes_per_epoch", kind="stable")
    work = t["max_work_edges"].to_numpy(dtype=float)
    byts = t["train_bytes_per_epoch"].to_numpy(dtype=float)
    t["on_frontier"] = [not bool(np.any((work < w) & (byts <= b) | (work <= w) & (byts < b)))
                        for w, b in zip(work, byts, strict=True)]
    return ReportTable(t.reset_index(drop=True))
