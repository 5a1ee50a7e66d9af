"""``TrainConfig``: every knob of a full-graph training run, checked once in the launching process.

A config is validated before any worker starts, so a typo reaches the user as one ``ValueError`` naming the
bad value and what is allowed, not as four tracebacks from four processes. It travels to the workers as a
plain dict (:meth:`TrainConfig.to_dict`), which is also what a run directory's ``config.json`` holds.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

MODELS = ("gcn", "sage")
MODES = ("full-sync", "full-stale", "full-bns", "local-sgd", "minibatch")
BACKENDS = ("auto", "gloo", "nccl")
SEED_SPLITS = ("local", "chunk")
REMOTE_SAMPLING = ("owner", "halo")
QUANTIZE = ("none", "fp16", "int8")
SYNCS = ("allreduce", "ps")


def partition_methods() -> tuple[str, ...]:
    """The partitioners training can use by name: the edge-cut built-ins, the vertex-cut built-ins and
    registered functions (node assignments: edge-cut).

    A vertex-cut method (``edge-random``, ``dbh``, ``hdrf``) trains with execution ``vertex-cut`` (chosen by
    default in mode ``full-sync``: partial aggregates reduced at masters, rows broadcast to mirrors); every
    other execution model exchanges owned rows of a node partition and needs an edge-cut method.
    """
    from dgnn_lab.partition import EDGE_CUT_METHODS, MODEL_METHODS, PARTITIONER_REGISTRY, VERTEX_CUT_METHODS

    return (*EDGE_CUT_METHODS, *MODEL_METHODS, *VERTEX_CUT_METHODS, *PARTITIONER_REGISTRY.names())


#: The axes a config names strategies on (besides ``partition``), each with its registry (see
#: :mod:`dgnn_lab.registry`): a name, ``module:attribute``, ``{"name": ..., **options}`` or the object.
AXES = ("execution", "halo", "grad_sync", "codec", "sampler", "cache")
#: What ``mode`` is shorthand for.
MODE_EXECUTION = {"full-sync": "full-graph", "full-stale": "full-graph", "full-bns": "full-graph",
                  "local-sgd": "local-sgd", "minibatch": "minibatch"}
#: The value of an axis a model does not use must stay the default.
_AXIS_DEFAULTS = {"sampler": "neighbor", "cache": "none", "codec": "none"}


#: Where each axis keeps its registry (imported on first use: the config module stays light).
REGISTRIES = {"execution": "dgnn_lab.execution.loop:EXECUTION_REGISTRY",
              "halo": "dgnn_lab.protocols.halo:HALO_REGISTRY",
              "grad_sync": "dgnn_lab.protocols.gradient:GRAD_SYNC_REGISTRY",
              "codec": "dgnn_lab.protocols.codecs:CODEC_REGISTRY",
              "sampler": "dgnn_lab.sampling.distributed:SAMPLER_REGISTRY",
              "cache": "dgnn_lab.sampling.cache:CACHE_REGISTRY",
              "partition": "dgnn_lab.partition.api:PARTITIONER_REGISTRY"}


def _registry(axis: str):
    import importlib

    if axis not in REGISTRIES:
        raise ValueError(f"unknown axis {axis!r}; allowed: {', '.join(REGISTRIES)}")
    if axis == "execution":
        from dgnn_lab.execution.loop import _builtins

        _builtins()
    module, attr = REGISTRIES[axis].split(":")
    return getattr(importlib.import_module(module), attr)


def _label(spec: Any) -> str:
    """A short text for a spec in messages and object keys."""
    if isinstance(spec, dict):
        return str(spec.get("name"))
    if isinstance(spec, str):
        return spec
    from dgnn_lab.registry import describe, importable_name

    return importable_name(spec) or describe(spec)


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


def parse_partition_args(items: Any) -> dict:
    """``["balance=train,degree", "ufactor=30"]`` (the command line's repeatable ``--partition-arg``), or a
    dict, -> keyword arguments of :func:`dgnn_lab.partition.partition`: numbers become int/float, the rest
    stays text (``balance`` parses its own comma-separated keys)."""
    if isinstance(items, dict):
        return dict(items)
    if isinstance(items, str):
        items = [items]
    out: dict = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"partition argument {item!r} is not KEY=VALUE (e.g. balance=train,degree)")
        raw = raw.strip()
        try:
            out[key] = int(raw)
        except ValueError:
            try:
                out[key] = float(raw)
            except ValueError:
                out[key] = raw
    return out


def parse_fanouts(text: str) -> list[int]:
    """``"10,5"`` -> ``[10, 5]``: the command line's form of ``fanouts`` (one per layer, -1 = every neighbour)."""
    try:
        return [int(f) for f in str(text).split(",") if f.strip()]
    except ValueError:
        raise ValueError(f"fanouts must be comma-separated integers such as 10,5 (-1 = all), got {text!r}") from None


def _axis_names(axis: str) -> tuple[str, ...]:
    """What an axis accepts by name, for help texts: its registry's names, or ``module:attribute``."""
    return (*_registry(axis).names(), "module:attribute")


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

    # Each field's ``metadata`` is its command-line form: ``dgnn-lab train`` builds one option per field from
    # it (dgnn_lab/cli/train.py). "help" (the default is appended to it), "flag" (when not --<name-with-dashes>),
    # "metavar", "group" (a section of --help), "allowed" (names listed in the help; a callable is called when
    # the help is built), "none" (what a None default means), "parse" (text -> value), "cli": False (no
    # option), "shared": True (the option is the shared dataset one, dgnn_lab.cli.common.add_dataset_args).
    dataset: str = field(default="cora", metadata={
        "help": "dataset name (see `dgnn-lab datasets`)", "shared": True})
    dataset_args: dict = field(default_factory=dict, metadata={
        "help": "generator parameters, KEY=VALUE", "flag": "--dataset-arg", "shared": True})
    workers: int = field(default=2, metadata={"help": "worker processes", "metavar": "P"})
    # data partition: a method name, a function f(data, num_parts) -> assignment, or a PartitionPlan; the
    # launching process builds the plan once and saves it in partition_dir (or trains on a saved plan there)
    partition: Any = field(default="metis", metadata={
        "help": "partitioner (a vertex-cut one trains with --execution vertex-cut, chosen by default); cost needs "
                "--partition-arg model=PATH", "metavar": "METHOD",
        "allowed": lambda: (*partition_methods(), "module:attribute")})
    partition_args: dict = field(default_factory=dict, metadata={
        "help": "partitioner option, repeatable, e.g. balance=train,degree (METIS/volume vertex weights), "
                "ufactor=30, eps=0.05", "flag": "--partition-arg", "metavar": "KEY=VALUE", "repeat": True,
        "parse": parse_partition_args})
    partition_dir: str | None = field(default=None, metadata={
        "help": "train on the plan saved in DIR by `dgnn-lab partition --save DIR` (its number of parts must "
                "equal --workers)", "metavar": "DIR", "none": "partition here with --partition"})
    mode: str = field(default="full-sync", metadata={
        "help": "execution model and protocol, shorthand for --execution/--halo", "metavar": "MODE",
        "allowed": MODES})
    # the axes (a name, "module:attribute", {"name": ..., **options} or the object); None: what mode implies
    execution: Any = field(default=None, metadata={
        "help": "execution model", "metavar": "NAME", "group": "axes",
        "allowed": lambda: _axis_names("execution"), "none": "what --mode implies"})
    halo: Any = field(default=None, metadata={
        "help": "halo-exchange protocol (full-graph execution)", "metavar": "NAME", "group": "axes",
        "allowed": lambda: _axis_names("halo"),
        "none": "what --mode implies: sync; pipegcn for full-stale, sancus with --skip-threshold; bns for full-bns"})
    grad_sync: Any = field(default=None, metadata={
        "help": "gradient synchronisation", "metavar": "NAME", "group": "axes",
        "allowed": lambda: _axis_names("grad_sync"),
        "none": "allreduce; averaging for local-sgd; ps with --sync ps"})
    codec: Any = field(default=None, metadata={
        "help": "codec of exchanged rows", "metavar": "NAME", "group": "axes",
        "allowed": lambda: _axis_names("codec"), "none": "--quantize"})
    sampler: Any = field(default="neighbor", metadata={
        "help": "mini-batch neighbourhood sampler", "metavar": "NAME", "group": "axes",
        "allowed": lambda: _axis_names("sampler")})
    model: str = field(default="gcn", metadata={"help": "GNN architecture", "metavar": "MODEL", "allowed": MODELS})
    layers: int = field(default=2, metadata={"help": "GNN layers", "metavar": "L"})
    hidden: int = field(default=16, metadata={"help": "hidden width", "metavar": "H"})
    dropout: float = field(default=0.5, metadata={"help": "dropout probability, in [0, 1)", "metavar": "D"})
    lr: float = field(default=0.01, metadata={"help": "Adam learning rate", "metavar": "LR"})
    weight_decay: float = field(default=5e-4, metadata={"help": "Adam weight decay", "metavar": "WD"})
    epochs: int = field(default=200, metadata={"help": "training epochs", "metavar": "E"})
    seed: int = field(default=0, metadata={"help": "seed for weights, dropout and the partition", "metavar": "S"})
    eval_every: int = field(default=1, metadata={
        "help": "evaluate train/val/test accuracy every N epochs, 0 = never", "metavar": "N"})
    backend: str = field(default="auto", metadata={
        "help": "auto = nccl with a GPU per worker, else gloo", "metavar": "B", "allowed": BACKENDS})
    threads_per_worker: int | None = field(default=None, metadata={
        "help": "torch threads per worker", "flag": "--threads", "metavar": "T", "none": "max(1, cores // workers)"})
    timeout_s: float = field(default=60.0, metadata={
        "help": "rendezvous and collective timeout in seconds", "flag": "--timeout", "metavar": "SEC"})
    run_dir: str | None = field(default=None, metadata={
        "help": "where config.json and records.jsonl go", "metavar": "DIR",
        "none": "a fresh runs/<date>-<time>-<id>/"})
    # mini-batch (mode "minibatch"): one fanout per layer, -1 = every neighbour
    fanouts: list[int] = field(default_factory=lambda: [10, 5], metadata={
        "help": "neighbours sampled per layer, comma-separated, -1 = all", "metavar": "F1,F2",
        "group": "mini-batch", "parse": parse_fanouts})
    batch_size: int = field(default=512, metadata={
        "help": "seeds per worker per step", "metavar": "B", "group": "mini-batch"})
    seed_split: str = field(default="local", metadata={
        "help": "local: each worker trains the seeds it owns (DistDGL node_split); chunk: contiguous chunks of "
                "the training index", "metavar": "S", "group": "mini-batch"})
    remote_sampling: str = field(default="owner", metadata={
        "help": "owner: remote neighbourhoods sampled by their owner (request/response); halo: from a "
                "replicated L-hop halo topology", "metavar": "R", "group": "mini-batch"})
    cache: str = field(default="none", metadata={
        "help": "remote feature cache policy (an axis)", "metavar": "C", "group": "mini-batch",
        "allowed": lambda: _axis_names("cache")})
    cache_size: float = field(default=0.1, metadata={
        "help": "cache capacity as a fraction of remote nodes", "metavar": "F", "group": "mini-batch"})
    pipeline: bool = field(default=False, metadata={
        "help": "overlap sampling and feature fetching of the next batch with training", "group": "mini-batch"})
    equal_steps: bool = field(default=True, metadata={
        "help": "every worker runs the same number of steps per epoch; --no-equal-steps shows the classic hang "
                "of uneven step counts, ended by --timeout", "group": "mini-batch"})
    # communication protocol (full-stale, full-bns, local-sgd; quantize, sync and straggler apply to every mode)
    staleness: int = field(default=1, metadata={
        "help": "full-stale: maximum age of boundary rows in epochs; --sync ps: staleness bound of gradients "
                "(0 = synchronous)", "metavar": "S", "group": "communication protocol"})
    skip_threshold: float = field(default=0.0, metadata={
        "help": "full-stale: skip re-sending a boundary block whose relative change is below X while its age is "
                "at most --staleness (Sancus-like; 0 = always send)", "metavar": "X",
        "group": "communication protocol"})
    smoothing: float = field(default=0.0, metadata={
        "help": "full-stale: moving-average weight of old boundary rows, in [0, 1)", "metavar": "G",
        "group": "communication protocol"})
    bns_p: float = field(default=1.0, metadata={
        "help": "full-bns: fraction of boundary rows sent per epoch, in (0, 1]", "metavar": "P",
        "group": "communication protocol"})
    quantize: str = field(default="none", metadata={
        "help": "compression of exchanged rows, shorthand for --codec", "metavar": "Q",
        "group": "communication protocol", "allowed": QUANTIZE})
    local_sgd_period: int = field(default=10, metadata={
        "help": "local-sgd: average the models every K epochs", "metavar": "K", "group": "communication protocol"})
    local_sgd_correction: bool = field(default=False, metadata={
        "help": "local-sgd: one global full-graph step after each averaging", "group": "communication protocol"})
    sync: str = field(default="allreduce", metadata={
        "help": "gradient synchronisation, shorthand for --grad-sync: allreduce, or ps (an asynchronous "
                "parameter server, one extra process)", "metavar": "S", "group": "communication protocol"})
    straggler: list | None = field(default=None, metadata={
        "help": "slow worker RANK's compute by FACTOR (e.g. 1:2.0)", "metavar": "RANK:FACTOR",
        "group": "communication protocol", "none": "no straggler", "parse": str})
    # the old name of ``halo`` (a registered halo strategy overriding the mode's built-in one)
    strategy: Any = field(default=None, metadata={"help": "the old name of halo", "cli": False})

    def __post_init__(self) -> None:
        self._objects: dict = {}
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
        self.mode = _choice("mode", self.mode, MODES)
        self._validate_partition()
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
        self.fanouts = fan
        self.batch_size = _int("batch_size", self.batch_size, 1)
        self.seed_split = _choice("seed_split", self.seed_split, SEED_SPLITS)
        self.remote_sampling = _choice("remote_sampling", self.remote_sampling, REMOTE_SAMPLING)
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
        self._validate_axes()

    def _validate_partition(self) -> None:
        from dgnn_lab.partition import VERTEX_CUT_METHODS, PartitionPlan, read_book

        # the plan kind, checked against the execution model in _validate_axes (vertex-cut plans need 'vertex-cut')
        self._partition_kind = "vertex-cut" if isinstance(self.partition, str) and \
            self.partition.lower() in VERTEX_CUT_METHODS else "edge-cut"

        self.partition_args = parse_partition_args(self.partition_args) if isinstance(
            self.partition_args, (list, tuple, str)) else self.partition_args
        if not isinstance(self.partition_args, dict):
            raise ValueError(f"partition_args must be a dict of partitioner options, got {self.partition_args!r}")
        unknown = sorted(set(self.partition_args) - {"balance", *_method_options(self.partition)})
        if unknown and isinstance(self.partition, str):
            raise ValueError(f"partition {self.partition!r} takes no option {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(['balance', *_method_options(self.partition)])}")

        if self.partition_dir is not None:
            self.partition_dir = str(self.partition_dir)
            try:
                book = read_book(self.partition_dir)
            except (OSError, ValueError) as e:
                raise ValueError(f"partition_dir {self.partition_dir!r}: {e}") from None
            self._partition_kind = book["kind"]
            if book["num_parts"] != self.workers:
                raise ValueError(f"partition_dir {self.partition_dir!r} holds a plan of {book['num_parts']} parts "
                                 f"but workers={self.workers}")
            if not isinstance(self.partition, str):
                raise ValueError("partition and partition_dir both give a plan: pass one of them")
            if self.partition not in ("metis", book["method"]):  # metis: the default, i.e. not given
                raise ValueError(f"partition={self.partition!r} and partition_dir {self.partition_dir!r} (a "
                                 f"{book['method']!r} plan) name two partitions: pass one")
            self.partition = book["method"]
            return
        if isinstance(self.partition, PartitionPlan):
            plan = self.partition
            self._partition_kind = plan.kind
            if plan.num_parts != self.workers:
                raise ValueError(f"partition is a plan of {plan.num_parts} parts but workers={self.workers}")
            return
        if callable(self.partition) and not isinstance(self.partition, type):
            return
        if isinstance(self.partition, str) and ":" in self.partition:
            _registry("partition").resolve(self.partition)
            return
        if isinstance(self.partition, str) and self.partition in partition_methods():
            return
        self.partition = _choice("partition", self.partition, partition_methods())

    def _set_axis(self, axis: str, value: Any) -> None:
        """Check ``value`` against the axis's registry (in the launching process: before any worker)."""
        if isinstance(value, str) and ":" not in value and axis != "execution":
            value = value.lower() if value.lower() in _registry(axis) else value
        _registry(axis).resolve(value)
        setattr(self, axis, value)

    def _validate_axes(self) -> None:
        """Map the shorthand fields (``mode``, ``sync``, ``quantize``, ``strategy``) onto the axes, check
        every axis, and refuse a combination that cannot train, naming both settings."""
        from dgnn_lab.execution.loop import model_class
        from dgnn_lab.protocols.gradient import sync_class
        from dgnn_lab.protocols.halo import default_strategy_name

        for axis in AXES:  # a by-value object handed back to a worker takes the place of its name
            spec = getattr(self, axis)
            key = f"{axis}:{_label(spec)}" if spec is not None else None
            if key in self._objects:
                obj = self._objects[key]
                setattr(self, axis, {**spec, "name": obj} if isinstance(spec, dict) else obj)
        implied = MODE_EXECUTION[self.mode]
        kind = getattr(self, "_partition_kind", "edge-cut")
        if self.execution is None:  # a vertex-cut partition in the default mode: the vertex-cut execution
            self.execution = "vertex-cut" if kind == "vertex-cut" and self.mode == "full-sync" else implied
        self._set_axis("execution", self.execution)
        ex = model_class(self.execution)
        ex_name = _label(self.execution)
        if self.mode != "full-sync" and ex_name != implied:
            raise ValueError(f"mode={self.mode!r} means execution {implied!r}, but execution={ex_name!r}; "
                             f"pass one of them")
        needs = getattr(ex, "partition_kind", "edge-cut")
        if kind != needs:
            shown = self.partition if isinstance(self.partition, str) else getattr(self.partition, "method",
                                                                                   _label(self.partition))
            hint = "execution 'vertex-cut' (mode 'full-sync') or an edge-cut method" if kind == "vertex-cut" \
                else "a vertex-cut method (edge-random, dbh, hdrf) or another execution"
            article = "an" if kind == "edge-cut" else "a"
            via = f" (mode {self.mode!r})" if self.mode != "full-sync" else ""
            raise ValueError(f"partition {shown!r} is {article} {kind} partition, but execution {ex_name!r}{via} "
                             f"trains on {needs} partitions: use {hint}")
        if ex_name in ("minibatch", "local-sgd"):
            self.mode = ex_name
        # halo protocol (strategy is its old name)
        if self.strategy is not None:
            if self.halo is not None and _label(self.halo) != _label(self.strategy):
                raise ValueError(f"strategy={_label(self.strategy)!r} and halo={_label(self.halo)!r} name two "
                                 f"halo protocols; strategy is the old name of halo: pass one")
            self.halo = self.strategy
        if "halo" in ex.uses:
            if self.halo is None:
                self.halo = default_strategy_name(self.mode, self.skip_threshold) if self.mode in (
                    "full-sync", "full-stale", "full-bns") else "sync"
            self._set_axis("halo", self.halo)
            builtin_mode = {"pipegcn": "full-stale", "sancus": "full-stale", "bns": "full-bns"}
            if self.mode == "full-sync" and isinstance(self.halo, str) and self.halo in builtin_mode:
                self.mode = builtin_mode[self.halo]  # reports name the protocol's family
        elif self.halo is not None:
            raise ValueError(f"halo={_label(self.halo)!r} is a halo-exchange protocol: it needs execution "
                             f"'full-graph' (a full-graph mode), got execution={ex_name!r}")
        self.strategy = None  # the old name is consumed: halo carries the protocol from here on
        # gradient synchronisation (sync is its shorthand)
        if self.grad_sync is None:  # the model's first kind: averaging for local SGD, else the all-reduce
            self.grad_sync = "ps" if self.sync == "ps" else \
                "averaging" if ex.grad_sync_kinds[0] == "weights" else "allreduce"
        elif self.sync == "ps" and not sync_class(self.grad_sync).extra_ranks:
            raise ValueError(f"sync='ps' and grad_sync={_label(self.grad_sync)!r} name two gradient "
                             f"synchronisations: pass one")
        self._set_axis("grad_sync", self.grad_sync)
        gs = sync_class(self.grad_sync)
        if gs.kind not in ex.grad_sync_kinds:
            fits = "gradient synchronisation every step (allreduce, ps)" if "gradients" in ex.grad_sync_kinds \
                else "periodic weight averaging (averaging)"
            raise ValueError(f"grad_sync={_label(self.grad_sync)!r} ({gs.kind}) does not fit execution "
                             f"{ex_name!r}, which needs {fits}")
        if gs.extra_ranks:
            self.sync = "ps"
        # codec (quantize is its shorthand)
        if self.codec is None:
            self.codec = self.quantize
        elif self.quantize != "none" and _label(self.codec) != self.quantize:
            raise ValueError(f"quantize={self.quantize!r} and codec={_label(self.codec)!r} name two codecs: "
                             f"pass one")
        self._set_axis("codec", self.codec)
        if isinstance(self.codec, str) and self.codec in QUANTIZE:
            self.quantize = self.codec
        self._set_axis("sampler", self.sampler)
        self._set_axis("cache", self.cache)
        for axis in ("sampler", "cache", "codec"):
            if axis not in ex.uses and _label(getattr(self, axis)) != _AXIS_DEFAULTS[axis]:
                raise ValueError(f"{axis}={_label(getattr(self, axis))!r} has no effect in execution {ex_name!r} "
                                 f"(it applies to: {', '.join(_users(axis))}); remove it or change execution")
        ex.check(self)

    @property
    def world_size(self) -> int:
        """Processes a run starts: the workers, plus one per extra rank of the gradient synchronisation (a
        parameter server)."""
        from dgnn_lab.protocols.gradient import sync_class

        return self.workers + sync_class(self.grad_sync).extra_ranks

    def axes(self) -> dict[str, Any]:
        """What every axis is set to, as a file would name it (registered names, ``module:attribute``, or a
        description of a by-value object)."""
        out = {axis: _registry(axis).file_name(getattr(self, axis)) for axis in AXES if getattr(self, axis) is not None}
        return {"partition": self.to_dict()["partition"], **out}

    def by_value(self) -> dict[str, Any]:
        """The strategy objects that must travel to spawned workers by value (defined in ``__main__`` or
        registered from there), keyed ``"axis:name"``: for the launch channel only, never for a file."""
        out = {}
        for axis in AXES:
            spec = getattr(self, axis)
            reg = _registry(axis)
            if spec is not None and reg.needs_value(spec):
                obj = spec if not isinstance(spec, (str, dict)) else reg.resolve(spec)[0]
                out[f"{axis}:{_label(reg.file_name(spec))}"] = obj
        return out

    def to_dict(self) -> dict:
        """A JSON-able dict (what workers receive and ``config.json`` stores): strategies appear by name,
        ``module:attribute`` or a description, never as code."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for axis in AXES:
            if d[axis] is not None:
                d[axis] = _registry(axis).file_name(d[axis])
        if not isinstance(self.partition, str):
            from dgnn_lab.partition import PartitionPlan

            reg = _registry("partition")
            named = next((n for n in reg.names() if reg.get(n) is self.partition), None)
            # a label (the plan's own method name): workers read the saved plan, never call the function
            d["partition"] = self.partition.method if isinstance(self.partition, PartitionPlan) else \
                named or getattr(self.partition, "__name__", "custom")
        return json.loads(json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}))

    @classmethod
    def from_dict(cls, d: dict, objects: dict | None = None) -> TrainConfig:
        """Build from a dict, rejecting unknown keys by name (a misspelt key must not be silently ignored).
        ``objects`` (from :meth:`by_value`, over the launch channel) stand in for the names they carry."""
        if isinstance(d, TrainConfig):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"a training config is a dict or TrainConfig, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ValueError(f"unknown config key {', '.join(map(repr, unknown))}; allowed: {', '.join(names)}")
        cfg = cls.__new__(cls)
        for f in fields(cls):
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            setattr(cfg, f.name, copy.deepcopy(d[f.name]) if f.name in d else default)
        cfg._objects = dict(objects or {})
        cfg.validate()
        return cfg


def _method_options(method: Any) -> tuple[str, ...]:
    """The keyword options a built-in partition method takes (none for others: they are checked when called)."""
    from dgnn_lab.partition import METHOD_OPTIONS

    return tuple(METHOD_OPTIONS.get(method.lower(), {})) if isinstance(method, str) else ()


def _users(axis: str) -> list[str]:
    from dgnn_lab.execution.loop import EXECUTION_REGISTRY, _builtins

    _builtins()
    return [n for n in EXECUTION_REGISTRY.names() if axis in EXECUTION_REGISTRY.get(n).uses]
