"""``TrainConfig``: every knob of a full-graph training run, checked once in the launching process.

A config is validated before any worker starts, so a typo reaches the user as one ``ValueError`` naming the
bad value and what is allowed, not as four tracebacks from four processes. It travels to the workers as a
plain dict (:meth:`TrainConfig.to_dict`), which is also what a run directory's ``config.json`` holds.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MODELS = ("gcn", "sage")
MODES = ("full-sync", "full-stale", "full-bns", "local-sgd", "minibatch")
BACKENDS = ("auto", "gloo", "nccl")
SEED_SPLITS = ("local", "chunk")
REMOTE_SAMPLING = ("owner", "halo")
CACHES = ("none", "degree", "presample")
QUANTIZE = ("none", "fp16", "int8")
SYNCS = ("allreduce", "ps")


def partition_methods() -> tuple[str, ...]:
    """The partitioners full-graph training can use: :data:`dgnn_lab.partition.EDGE_CUT_METHODS`.

    Vertex-cut methods are excluded: this trainer exchanges owned rows of a node partition, not the partial
    aggregates of an edge partition.
    """
    from dgnn_lab.partition import EDGE_CUT_METHODS

    return tuple(EDGE_CUT_METHODS)


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return value


def _float(name: str, value: Any, low: float, high: float | None = None, *, high_open: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    too_high = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or value < low or too_high:
        rng = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value.lower()


def parse_straggler(value: Any, workers: int) -> list:
    """``"RANK:FACTOR"`` or ``[rank, factor]`` -> ``[rank, factor]``: worker ``rank`` computes ``factor`` times
    slower (``factor >= 1``)."""
    raw = value
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2:
            raise ValueError(f"straggler must look like RANK:FACTOR (e.g. 1:2.0), got {raw!r}")
        value = parts
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"straggler must be RANK:FACTOR or [rank, factor], got {raw!r}")
    try:
        rank, factor = int(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise ValueError(f"straggler must be RANK:FACTOR with an integer rank and a number, got {raw!r}") from None
    if not 0 <= rank < workers:
        raise ValueError(f"straggler rank must be in [0, {workers - 1}] (the workers), got {rank}")
    if math.isnan(factor) or factor < 1.0:
        raise ValueError(f"straggler factor must be >= 1 (how many times slower), got {factor}")
    return [rank, factor]


@dataclass
class TrainConfig:
    """One full-graph training run (defaults: the GCN paper's Cora setting on 2 workers).

    ``dataset_args`` go to :func:`dgnn_lab.datasets.load` (e.g. ``{"num_nodes": 200_000}`` for csbm, or
    ``{"root": "/data"}`` for Cora). ``eval_every`` evaluates train/val/test accuracy every that many epochs
    (0: never; accuracies are then ``None``). ``threads_per_worker`` defaults to ``max(1, cores // workers)``.

    ``mode`` picks the execution model and protocol: ``full-sync`` (exact halo exchange), ``full-stale``
    (PipeGCN: boundary rows up to ``staleness`` epochs old; ``skip_threshold`` > 0 skips re-sending blocks that
    changed less than that, Sancus-like; ``smoothing`` is the moving-average weight), ``full-bns`` (each epoch a
    random fraction ``bns_p`` of boundary rows is sent, rescaled by 1/p), ``local-sgd`` (cross-partition edges
    ignored, models averaged every ``local_sgd_period`` epochs, optional global correction step), and
    ``minibatch`` (``fanouts`` per layer, ``batch_size`` seeds per worker per step, seeds split ``local`` by owner
    or in ``chunk``s of the training index, remote neighbourhoods sampled by their ``owner`` or from a replicated
    ``halo``, remote features cached by ``cache`` policy for a ``cache_size`` fraction of remote nodes,
    ``pipeline`` overlapping sampling/fetching with training, ``equal_steps`` = False only to show the hang of
    uneven step counts). ``quantize`` compresses exchanged rows; ``sync="ps"`` replaces the gradient all-reduce
    by an asynchronous parameter server (one extra process) with staleness bound ``staleness``; ``straggler`` =
    ``[rank, factor]`` slows one worker's compute by ``factor``.
    """

    dataset: str = "cora"
    dataset_args: dict = field(default_factory=dict)
    workers: int = 2
    partition: str = "metis"
    mode: str = "full-sync"
    model: str = "gcn"
    layers: int = 2
    hidden: int = 16
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 200
    seed: int = 0
    eval_every: int = 1
    backend: str = "auto"
    threads_per_worker: int | None = None
    timeout_s: float = 60.0
    run_dir: str | None = None
    # mini-batch (mode "minibatch"): one fanout per layer, -1 = every neighbour
    fanouts: list[int] = field(default_factory=lambda: [10, 5])
    batch_size: int = 512
    seed_split: str = "local"
    remote_sampling: str = "owner"
    cache: str = "none"
    cache_size: float = 0.1
    pipeline: bool = False
    equal_steps: bool = True
    # communication protocol (full-stale, full-bns, local-sgd; quantize, sync and straggler apply to every mode)
    staleness: int = 1
    skip_threshold: float = 0.0
    smoothing: float = 0.0
    bns_p: float = 1.0
    quantize: str = "none"
    local_sgd_period: int = 10
    local_sgd_correction: bool = False
    sync: str = "allreduce"
    straggler: list | None = None
    # a registered halo strategy (dgnn_lab.protocols.halo.register_strategy) overriding the mode's built-in
    # one; a class from a notebook cell travels pickled by value in strategy_payload (filled in on validation)
    strategy: str | None = None
    strategy_payload: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> TrainConfig:
        """Check and normalise every field in place; raise ``ValueError`` naming the first bad one."""
        from dgnn_lab import datasets

        if not isinstance(self.dataset, str):
            raise ValueError(f"dataset must be a name, got {self.dataset!r}; valid: {', '.join(datasets.names())}")
        if self.dataset.lower() not in datasets.names():
            raise ValueError(f"unknown dataset {self.dataset!r}; valid names: {', '.join(datasets.names())}")
        self.dataset = self.dataset.lower()
        if not isinstance(self.dataset_args, dict):
            raise ValueError(f"dataset_args must be a dict of keyword arguments, got {self.dataset_args!r}")
        allowed = inspect.signature(datasets._loader(self.dataset)).parameters
        unknown = [k for k in self.dataset_args if k not in allowed]
        if unknown:
            raise ValueError(f"dataset {self.dataset!r} takes no parameter {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(allowed) or 'none'}")
        self.dataset_args = {k: (str(v) if k == "root" and v is not None else v) for k, v in self.dataset_args.items()}
        self.workers = _int("workers", self.workers, 1)
        self.partition = _choice("partition", self.partition, partition_methods())
        self.mode = _choice("mode", self.mode, MODES)
        self.model = _choice("model", self.model, MODELS)
        self.layers = _int("layers", self.layers, 1)
        self.hidden = _int("hidden", self.hidden, 1)
        self.dropout = _float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        self.lr = _float("lr", self.lr, 0.0)
        if self.lr == 0.0:
            raise ValueError("lr must be > 0, got 0.0")
        self.weight_decay = _float("weight_decay", self.weight_decay, 0.0)
        self.epochs = _int("epochs", self.epochs, 1)
        self.seed = _int("seed", self.seed, 0)
        self.eval_every = _int("eval_every", self.eval_every, 0)
        self.backend = _choice("backend", self.backend, BACKENDS)
        if self.threads_per_worker is not None:
            self.threads_per_worker = _int("threads_per_worker", self.threads_per_worker, 1)
        self.timeout_s = _float("timeout_s", self.timeout_s, 0.0)
        if self.timeout_s == 0.0:
            raise ValueError("timeout_s must be > 0 seconds, got 0.0")
        if self.run_dir is not None:
            self.run_dir = str(self.run_dir)
        self._validate_minibatch()
        self._validate_protocol()
        return self

    def _validate_minibatch(self) -> None:
        if isinstance(self.fanouts, (str, int)) or not hasattr(self.fanouts, "__iter__"):
            raise ValueError(f"fanouts must be a list of integers (one per layer, -1 = all), got {self.fanouts!r}")
        fan = [_int("fanouts entry", f, -1) for f in self.fanouts]
        if any(f == 0 for f in fan):
            raise ValueError(f"fanouts entries must be >= 1 or -1 (every neighbour), got {fan}")
        if self.mode == "minibatch" and len(fan) != self.layers:
            raise ValueError(f"fanouts needs one entry per layer: {len(fan)} fanouts {fan} for layers={self.layers}")
        self.fanouts = fan
        self.batch_size = _int("batch_size", self.batch_size, 1)
        self.seed_split = _choice("seed_split", self.seed_split, SEED_SPLITS)
        self.remote_sampling = _choice("remote_sampling", self.remote_sampling, REMOTE_SAMPLING)
        self.cache = _choice("cache", self.cache, CACHES)
        self.cache_size = _float("cache_size", self.cache_size, 0.0, 1.0)
        for name in ("pipeline", "equal_steps", "local_sgd_correction"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def _validate_protocol(self) -> None:
        self.staleness = _int("staleness", self.staleness, 0)
        self.skip_threshold = _float("skip_threshold", self.skip_threshold, 0.0)
        self.smoothing = _float("smoothing", self.smoothing, 0.0, 1.0, high_open=True)
        self.bns_p = _float("bns_p", self.bns_p, 0.0, 1.0)
        if self.bns_p == 0.0:
            raise ValueError("bns_p must be in (0, 1], got 0.0")
        self.quantize = _choice("quantize", self.quantize, QUANTIZE)
        self.local_sgd_period = _int("local_sgd_period", self.local_sgd_period, 1)
        self.sync = _choice("sync", self.sync, SYNCS)
        if self.straggler is not None:
            self.straggler = parse_straggler(self.straggler, self.workers)
        if self.strategy is not None or self.strategy_payload is not None:
            from dgnn_lab.protocols.halo import check_strategy

            self.strategy, self.strategy_payload = check_strategy(self.strategy, self.strategy_payload, self.mode)

    @property
    def world_size(self) -> int:
        """Processes a run starts: the workers, plus one parameter-server process when ``sync == "ps"``."""
        return self.workers + (1 if self.sync == "ps" else 0)

    def to_dict(self) -> dict:
        """A JSON-able dict (what workers receive and ``config.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict, rejecting unknown keys by name (a misspelt key must not be silently ignored)."""
        if isinstance(d, TrainConfig):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"a training config is a dict or TrainConfig, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ValueError(f"unknown config key {', '.join(map(repr, unknown))}; allowed: {', '.join(names)}")
        return cls(**d)
