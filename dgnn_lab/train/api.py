"""Start full-graph training from Python: ``train(...)`` blocks, ``start(...)`` returns a handle at once.

Both take a :class:`~dgnn_lab.train.config.TrainConfig`, a dict, or keyword arguments, and validate it in
the calling process before any worker exists, so bad input is one ``ValueError``::

    from dgnn_lab.train import train
    result = train(dataset="cora", workers=2, model="gcn", partition="metis", epochs=200)
    result.summary()["test_acc_at_best_val"]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dgnn_lab.train.config import TrainConfig

ENTRY = "dgnn_lab.execution.full_graph:worker_main"
ENTRIES = {"full-sync": ENTRY, "full-stale": ENTRY, "full-bns": ENTRY,
           "local-sgd": "dgnn_lab.execution.local_sgd:worker_main",
           "minibatch": "dgnn_lab.execution.minibatch:worker_main"}


def entry_for(cfg: TrainConfig) -> str:
    """The worker entry point (``module:function``) that runs ``cfg.mode``."""
    return ENTRIES[cfg.mode]


def make_config(config: TrainConfig | dict | None = None, **kwargs: Any) -> TrainConfig:
    """A validated config from a ``TrainConfig``/dict plus keyword overrides."""
    if config is None:
        base: dict = {}
    elif isinstance(config, TrainConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = dict(config)
    else:
        raise ValueError(f"config must be a TrainConfig, a dict or None, got {type(config).__name__}")
    base.update(kwargs)
    return TrainConfig.from_dict(base)


def _prepare_dataset(cfg: TrainConfig) -> None:
    """Planetoid files must be on disk before P workers each find out they are not (no downloads here), and
    PyG's one-time ``processed/`` files are written here, once: P workers processing a fresh copy at the same
    time would read each other's half-written files."""
    from dgnn_lab import datasets

    root = cfg.dataset_args.get("root")
    info = next(i for i in datasets.list_datasets(root) if i.name == cfg.dataset)
    if info.kind != "planetoid":
        return
    if not info.available:
        where = datasets.planetoid_raw_dir(cfg.dataset, root)
        raise FileNotFoundError(f"dataset {cfg.dataset!r} is not on disk: its Planetoid files are missing from "
                                f"{where}/ (pass root=... / --data-root, or set DGNN_LAB_DATA)")
    datasets.load(cfg.dataset, **cfg.dataset_args)


def start(config: TrainConfig | dict | None = None, *, on_record: Callable[[dict], Any] | None = None,
          **kwargs: Any):
    """Launch the workers and return a :class:`dgnn_lab.dist.RunHandle` at once (for dashboards: its
    ``.records`` grow while training runs, ``.stop()`` interrupts, ``.wait()`` gives the ``RunResult``)."""
    from dgnn_lab.dist import launch

    cfg = make_config(config, **kwargs)
    _prepare_dataset(cfg)
    return launch(entry_for(cfg), cfg.to_dict(), cfg.world_size, backend=cfg.backend, run_dir=cfg.run_dir,
                  timeout_s=cfg.timeout_s, threads_per_worker=cfg.threads_per_worker, on_record=on_record)


def train(config: TrainConfig | dict | None = None, *, on_record: Callable[[dict], Any] | None = None,
          **kwargs: Any):
    """Train and wait: returns the :class:`dgnn_lab.dist.RunResult` (raises ``WorkerError`` naming the
    rank if a worker fails; Ctrl-C stops every worker and records the run as interrupted)."""
    return start(config, on_record=on_record, **kwargs).wait()
