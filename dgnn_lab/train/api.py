"""Start training from Python: ``train(...)`` blocks, ``start(...)`` returns a handle at once.

Both take a :class:`~dgnn_lab.train.config.TrainConfig`, a dict, or keyword arguments, and validate it in
the calling process before any worker exists, so bad input is one ``ValueError``::

    from dgnn_lab.train import train
    result = train(dataset="cora", workers=2, model="gcn", partition="metis", epochs=200)
    result.summary()["test_acc_at_best_val"]

The launching process partitions the graph **once** (a method name, your function ``f(data, num_parts)``,
or a ready ``PartitionPlan``), saves the plan into the run directory (``run_dir/plan``) and each worker
reads only its own part. Strategies defined in a notebook cell travel to the workers by value over the
launch channel; the run directory names them and never holds code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dgnn_lab.execution.loop import ENTRY, model_class
from dgnn_lab.train.config import TrainConfig

__all__ = ["ENTRY", "entry_for", "make_config", "prepare_run", "start", "train", "write_torchrun_spec"]


def entry_for(cfg: TrainConfig) -> str:
    """The worker entry point (``module:function``): one loop for every execution model."""
    return ENTRY


def make_config(config: TrainConfig | dict | None = None, **kwargs: Any) -> TrainConfig:
    """A validated config from a ``TrainConfig``/dict plus keyword overrides (objects stay objects)."""
    if config is None:
        base: dict = {}
    elif isinstance(config, TrainConfig):
        base = {f: getattr(config, f) for f in config.__dataclass_fields__}
    elif isinstance(config, dict):
        base = dict(config)
    else:
        raise ValueError(f"config must be a TrainConfig, a dict or None, got {type(config).__name__}")
    base.update(kwargs)
    names = TrainConfig.__dataclass_fields__
    unknown = [k for k in base if k not in names]
    if unknown:
        raise ValueError(f"unknown config key {', '.join(map(repr, unknown))}; allowed: {', '.join(names)}")
    return TrainConfig(**base)


def _prepare_dataset(cfg: TrainConfig):
    """Load the dataset once here, before any worker exists: missing Planetoid files are downloaded once (not
    by P workers at the same time; offline, one ``FileNotFoundError`` says which files to put where), PyG's
    one-time ``processed/`` files are written once (P workers processing a fresh copy at the same time would
    read each other's half-written files), and the partitioner needs the graph."""
    from dgnn_lab import datasets

    return datasets.load(cfg.dataset, **cfg.dataset_args)


def prepare_run(cfg: TrainConfig, run_dir: str | Path, data: Any = None) -> TrainConfig:
    """Partition once, here, and save the plan into ``run_dir/plan`` (``cfg.partition_dir`` then points at it);
    a config that already has a ``partition_dir`` is checked against the dataset instead. Returns ``cfg``."""
    from dgnn_lab.partition import PartitionPlan, partition, read_book, save_plan

    data = _prepare_dataset(cfg) if data is None else data
    n = int(data.num_nodes)
    if cfg.partition_dir is not None:
        book = read_book(cfg.partition_dir)
        if book["num_nodes"] != n:
            raise ValueError(f"partition_dir {cfg.partition_dir!r} holds a plan of {book['num_nodes']} nodes but "
                             f"dataset {cfg.dataset!r} has {n}: was it saved for another graph?")
        return cfg
    if not 1 <= cfg.workers <= n:
        raise ValueError(f"workers must be between 1 and the graph's {n} nodes, got {cfg.workers}")
    if isinstance(cfg.partition, PartitionPlan):
        plan = cfg.partition
        if plan.num_nodes != n:
            raise ValueError(f"partition is a plan of {plan.num_nodes} nodes but dataset {cfg.dataset!r} has {n}")
    else:
        plan = partition(data, cfg.workers, cfg.partition, seed=cfg.seed, hops=1, **cfg.partition_args)
        ex = model_class(cfg.execution)
        needs = getattr(ex, "partition_kind", "edge-cut")
        if plan.kind != needs:
            raise ValueError(f"partition method {plan.method!r} gives a plan of kind {plan.kind!r}, but execution "
                             f"{ex.name!r} trains on {needs} plans")
    path = save_plan(plan, Path(run_dir) / "plan")
    cfg.partition_dir = str(path.resolve())
    return cfg


def _run_dir(cfg: TrainConfig) -> Path:
    from dgnn_lab.dist.launch import _new_run_dir

    rd = Path(cfg.run_dir) if cfg.run_dir is not None else _new_run_dir()
    if rd.exists() and any(rd.glob("records*.jsonl")):
        raise ValueError(f"run_dir {rd} already holds a run's records; pass a fresh directory (or None)")
    rd.mkdir(parents=True, exist_ok=True)
    return rd


def start(config: TrainConfig | dict | None = None, *, on_record: Callable[[dict], Any] | None = None,
          **kwargs: Any):
    """Launch the workers and return a :class:`dgnn_lab.dist.RunHandle` at once (for dashboards: its
    ``.records`` grow while training runs, ``.stop()`` interrupts, ``.wait()`` gives the ``RunResult``)."""
    from dgnn_lab.dist import launch

    cfg = make_config(config, **kwargs)
    data = _prepare_dataset(cfg)  # before the run directory: a dataset that cannot be had leaves nothing behind
    rd = _run_dir(cfg)
    prepare_run(cfg, rd, data)
    return launch(entry_for(cfg), cfg.to_dict(), cfg.world_size, backend=cfg.backend, run_dir=rd,
                  timeout_s=cfg.timeout_s, threads_per_worker=cfg.threads_per_worker, on_record=on_record,
                  objects=cfg.by_value())


def write_torchrun_spec(config: TrainConfig | dict, run_dir: str | Path) -> Path:
    """Partition once, save the plan into ``run_dir/plan`` and write ``run_dir/torchrun.json``, the spec
    ``torchrun ... -m dgnn_lab.worker SPEC`` runs on every machine. A strategy must be named (a registered
    built-in or ``module:attribute`` that every machine can import): a spec never carries code."""
    import json

    from dgnn_lab.registry import importable_name

    cfg = make_config(config)
    d = cfg.to_dict()
    for key, obj in cfg.by_value().items():
        axis = key.split(":", 1)[0]
        name = importable_name(obj)
        if name is None:
            raise ValueError(f"{key} is defined in __main__ (a notebook or script) or is an instance, and cannot "
                             f"travel through a torchrun spec, which never carries code: put it in a module every "
                             f"machine can import and name it 'module:attribute'")
        d[axis] = {**d[axis], "name": name} if isinstance(d[axis], dict) else name
    rd = Path(run_dir).resolve()
    rd.mkdir(parents=True, exist_ok=True)
    prepare_run(cfg, rd)
    d["partition_dir"] = cfg.partition_dir
    spec = {"entry": entry_for(cfg), "config": d, "run_dir": str(rd), "backend": cfg.backend,
            "timeout_s": cfg.timeout_s, "threads_per_worker": cfg.threads_per_worker}
    path = rd / "torchrun.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def train(config: TrainConfig | dict | None = None, *, on_record: Callable[[dict], Any] | None = None,
          **kwargs: Any):
    """Train and wait: returns the :class:`dgnn_lab.dist.RunResult` (raises ``WorkerError`` naming the
    rank if a worker fails; Ctrl-C stops every worker and records the run as interrupted)."""
    return start(config, on_record=on_record, **kwargs).wait()
