"""``partition(data, num_parts, method)``: one entry point for every partitioner, returning a ``PartitionPlan``.

A method is a name (see :data:`METHODS`) or your own function ``f(data, num_parts) -> assignment`` (one part
id per node): the extension point a notebook exercise uses. Everything is deterministic for ``seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dgnn_lab.partition._threads import threads_for
from dgnn_lab.partition.edge_cut import random_assignment, range_assignment
from dgnn_lab.partition.metis import metis_assignment
from dgnn_lab.partition.plan import PartitionPlan, build_plan
from dgnn_lab.partition.streaming import ORDERS, streaming_assignment
from dgnn_lab.partition.vertex_cut import VERTEX_CUT_METHODS, build_vertex_cut_plan, vertex_cut_assignment
from dgnn_lab.partition.volume import PRESETS as VOLUME_PRESETS
from dgnn_lab.partition.volume import STARTS as VOLUME_STARTS
from dgnn_lab.partition.volume import combined_node_weights, volume_assignment
from dgnn_lab.registry import Registry

EDGE_CUT_METHODS = ("random", "range", "metis", "ldg", "fennel", "volume")
#: Every built-in method name that works with no more than ``seed``, edge-cut first.
METHODS = EDGE_CUT_METHODS + VERTEX_CUT_METHODS
#: Built-in edge-cut methods that need a fitted model (``model=``): not in :data:`METHODS`, which every generic
#: "try each method" loop (widgets, benchmarks, tests) may call bare.
MODEL_METHODS = ("cost",)
#: One-line descriptions (CLI help, widget tooltips, notebook tables).
DESCRIPTIONS = {
    "random": "edge-cut: each node to a random part (hash); the baseline",
    "range": "edge-cut: contiguous blocks of node ids (CAGNET, Sancus)",
    "metis": "edge-cut: METIS k-way multilevel min-cut (DistDGL); supports balance=",
    "ldg": "edge-cut: one-pass streaming, linear deterministic greedy",
    "fennel": "edge-cut: one-pass streaming, Fennel's modularity-like objective",
    "volume": "edge-cut: hypergraph partitioning for minimal communication volume (Mt-KaHyPar km1)",
    "cost": "edge-cut: the candidate with the smallest predicted epoch under a fitted cost model (ROC); needs model=",
    "edge-random": "vertex-cut: each edge to a random part (PowerGraph's random)",
    "dbh": "vertex-cut: degree-based hashing (edge follows its lower-degree end)",
    "hdrf": "vertex-cut: streaming, high-degree (nodes) replicated first",
}
#: Balance keys and what they balance (METIS vertex-weight constraints; ``volume`` balances their combination,
#: see :func:`~dgnn_lab.partition.volume.combined_node_weights`).
BALANCE_KEYS = {"train": "training nodes per part", "degree": "edges (sum of degrees) per part"}
#: Keyword options each method accepts (beyond seed/hops/balance).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {}, "range": {}, "metis": {"ufactor": None},
    "ldg": {"order": "random"}, "fennel": {"order": "random", "gamma": 1.5, "nu": 1.1, "alpha": None},
    "volume": {"eps": 0.03, "start": "metis", "vcycles": 1, "preset": "deterministic"},
    "cost": {"model": None, "volume": None}, "edge-random": {}, "dbh": {}, "hdrf": {"lam": 1.0, "eps": 1.0},
}

Method = str | Callable[..., Any]


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def parse_balance(balance: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"train,degree"``, ``["train"]``, ``None`` or ``()`` -> a tuple of known balance keys."""
    if balance is None:
        return ()
    items = balance.split(",") if isinstance(balance, str) else list(balance)
    keys: list[str] = []
    for item in items:
        key = str(item).strip().lower()
        if not key:
            continue
        if key not in BALANCE_KEYS:
            raise ValueError(f"unknown balance key {item!r}; valid keys: {', '.join(BALANCE_KEYS)}")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def _check_partitioner(obj: Any) -> None:
    if not callable(obj) or isinstance(obj, type):
        raise ValueError(f"a partitioner is a function f(data, num_parts) -> assignment, got {obj!r}")


#: The data-partition axis: built-in method names plus ``register_partitioner("mine", f)`` for a function
#: ``f(data, num_parts) -> assignment`` (one part id per node), usable as ``partition(data, k, "mine")`` and
#: ``train(partition="mine")``.
PARTITIONER_REGISTRY = Registry("partitioner", _check_partitioner, what="partition method")
register_partitioner = PARTITIONER_REGISTRY.register


def partition_methods() -> list[str]:
    """Every method name ``partition`` accepts: the built-ins, then registered functions."""
    return [*METHODS, *MODEL_METHODS, *(n for n in PARTITIONER_REGISTRY.names() if n not in METHODS)]


def _check_method(method: Method) -> str | Callable:
    if callable(method):
        return method
    if isinstance(method, str) and method.strip().lower() in (*METHODS, *MODEL_METHODS):
        return method.strip().lower()
    if isinstance(method, str) and (method in PARTITIONER_REGISTRY or ":" in method):
        fn, _ = PARTITIONER_REGISTRY.resolve(method)
        return fn
    raise ValueError(f"unknown partition method {method!r}; valid methods: {', '.join(partition_methods())} "
                     "(or a function f(data, num_parts) -> assignment)")


def _check_options(method: str, options: dict) -> dict:
    allowed = METHOD_OPTIONS[method]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        names = ", ".join(allowed) or "none"
        raise ValueError(f"method {method!r} takes no option {', '.join(map(repr, unknown))}; allowed: {names}")
    if "ufactor" in options:
        _check_int("ufactor (METIS imbalance, in thousandths)", options["ufactor"], 1)
    for key in ("gamma", "nu", "alpha", "lam", "eps"):
        if options.get(key) is not None and (isinstance(options[key], bool)
                                             or not isinstance(options[key], (int, float))):
            raise ValueError(f"option {key} must be a number, got {options[key]!r}")
    if method == "volume" and "eps" in options and not (isinstance(options["eps"], (int, float))
                                                        and not isinstance(options["eps"], bool)
                                                        and 0 < options["eps"] < 1):
        raise ValueError(f"option eps (Mt-KaHyPar's allowed imbalance) must be a number in (0, 1), "
                         f"got {options['eps']!r}")
    if method == "volume" and "start" in options and options["start"] not in VOLUME_STARTS:
        raise ValueError(f"unknown start {options['start']!r} for method 'volume'; valid starts: "
                         f"{', '.join(VOLUME_STARTS)}")
    if method == "volume" and "vcycles" in options:
        _check_int("vcycles (Mt-KaHyPar V-cycles)", options["vcycles"], 0)
    if method == "volume" and "preset" in options and options["preset"] not in VOLUME_PRESETS:
        raise ValueError(f"unknown Mt-KaHyPar preset {options['preset']!r}; valid presets: "
                         f"{', '.join(VOLUME_PRESETS)}")
    if method == "cost" and "volume" in options:
        v = options["volume"]
        flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip().lower() in flags:
            v = flags[str(v).strip().lower()]
        if v is not None and not isinstance(v, bool):
            raise ValueError(f"option volume (include the volume candidate) must be true or false, got {v!r}")
        options = {**options, "volume": v}
    if "order" in options and options["order"] not in ORDERS:
        raise ValueError(f"unknown stream order {options['order']!r}; valid orders: {', '.join(ORDERS)}")
    return {**{k: v for k, v in allowed.items() if v is not None}, **options}


def _user_assignment(fn: Callable, data: Any, num_parts: int, num_nodes: int) -> Tensor:
    """Call a user partitioner and validate what it returns, naming the function in every error."""
    name = getattr(fn, "__name__", type(fn).__name__)
    out = fn(data, num_parts)
    try:
        out = torch.as_tensor(np.asarray(out) if not isinstance(out, Tensor) else out)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"partitioner {name} must return one part id per node, got {type(out).__name__}: "
                         f"{exc}") from None
    if out.dim() != 1 or out.numel() != num_nodes:
        raise ValueError(f"partitioner {name} returned an assignment of shape {tuple(out.shape)}; "
                         f"expected one part id per node, shape ({num_nodes},)")
    if out.dtype.is_floating_point or out.dtype.is_complex or out.dtype == torch.bool:
        raise ValueError(f"partitioner {name} returned dtype {out.dtype}; part ids must be integers")
    out = out.long()
    bad = (out < 0) | (out >= num_parts)
    if bool(bad.any()):
        raise ValueError(f"partitioner {name} returned part id {out[bad][0].item()} (node "
                         f"{bad.nonzero()[0].item()}); allowed part ids are 0..{num_parts - 1}")
    return out


def partition(
    data: Any,
    num_parts: int,
    method: Method = "metis",
    *,
    seed: int = 0,
    hops: int = 1,
    balance: str | Iterable[str] | None = (),
    **options: Any,
) -> PartitionPlan:
    """Partition ``data`` (a PyG ``Data``: ``edge_index``, ``num_nodes``, optional ``train_mask``).

    ``method``: one of :data:`METHODS` or ``f(data, num_parts) -> assignment``. ``hops``: how many halo rings
    the plan lists (a ``k``-layer GNN reads the ``k``-hop halo; ring 1 is always kept). ``balance``: METIS
    vertex-weight constraints, ``"train"`` and/or ``"degree"``; ``volume`` balances their sum as one node
    weight (the other methods balance node counts or edge counts by construction and reject it). ``options``:
    per method, see :data:`METHOD_OPTIONS` (``order=`` for the streaming ones, ``ufactor=`` for METIS,
    ``lam=``/``eps=`` for HDRF, ``eps=``/``start=``/``vcycles=``/``preset=`` for volume, ...).

    ``plan.seconds`` is the wall time of the partitioner plus building the plan (``plan.timings`` splits it).
    """
    with threads_for(int(data.edge_index.size(1))):
        return _partition(data, num_parts, method, seed=seed, hops=hops, balance=balance, **options)


def _partition(
    data: Any,
    num_parts: int,
    method: Method = "metis",
    *,
    seed: int = 0,
    hops: int = 1,
    balance: str | Iterable[str] | None = (),
    **options: Any,
) -> PartitionPlan:
    num_nodes = int(data.num_nodes)
    edge_index = data.edge_index
    if num_nodes < 1:
        raise ValueError("cannot partition an empty graph (num_nodes = 0)")
    num_parts = _check_int("num_parts", num_parts, 1, num_nodes)
    hops = _check_int("hops", hops, 0)
    seed = _check_int("seed", seed, 0)
    method = _check_method(method)
    balance = parse_balance(balance)
    if balance and method not in ("metis", "volume"):
        shown = method if isinstance(method, str) else getattr(method, "__name__", "custom")
        raise ValueError(f"balance={','.join(balance)} needs method='metis' or method='volume' (vertex weights); "
                         f"{shown!r} balances node or edge counts by construction")
    train_mask = getattr(data, "train_mask", None)
    if "train" in balance and train_mask is None:
        raise ValueError("balance='train' needs data.train_mask, which this graph does not have")

    if callable(method) and options:
        raise ValueError(f"options {', '.join(map(repr, options))} apply to built-in methods only")

    notes: list[str] = []
    t0 = time.perf_counter()
    if callable(method):
        name = getattr(method, "__name__", "custom")
        assignment = _user_assignment(method, data, num_parts, num_nodes)
        kind, opts = "edge-cut", {}
    else:
        name = method
        opts = _check_options(method, options)
        kind = "vertex-cut" if method in VERTEX_CUT_METHODS else "edge-cut"
        if method == "random":
            assignment = random_assignment(num_nodes, num_parts, seed)
        elif method == "range":
            assignment = range_assignment(num_nodes, num_parts)
        elif method == "metis":
            assignment = metis_assignment(edge_index, num_nodes, num_parts, seed=seed, balance=balance,
                                          train_mask=train_mask, notes=notes, **opts)
        elif method == "volume":
            weights = None
            if balance:
                in_degree = torch.bincount(edge_index[1], minlength=num_nodes).numpy()
                weights = combined_node_weights(balance, num_nodes, in_degree, train_mask)
                what = ("only their sum is balanced, not each key" if len(balance) > 1
                        else f"{balance[0]} is balanced, node counts are not constrained")
                notes.append(f"volume: Mt-KaHyPar has one weight constraint, so balance={','.join(balance)} "
                             f"became one node weight ({' + '.join(balance)}, each scaled to the same total): "
                             f"{what}")
            assignment = volume_assignment(edge_index, num_nodes, num_parts, seed=seed, node_weights=weights,
                                           notes=notes, **opts)
        elif method == "cost":
            from dgnn_lab.partition.cost import cost_assignment

            if opts.get("model") is None:
                raise ValueError("method 'cost' needs model= (a CostModel, or the path of one saved with "
                                 "CostModel.save; fit one with dgnn_lab.experiments.imbalance.calibrate)")
            assignment = cost_assignment(edge_index, num_nodes, num_parts, opts["model"], seed=seed,
                                         volume=opts.get("volume"), notes=notes)
            opts["model"] = str(opts["model"]) if not isinstance(opts["model"], str) else opts["model"]
        elif method in ("ldg", "fennel"):
            assignment = streaming_assignment(edge_index, num_nodes, num_parts, method, seed=seed, notes=notes,
                                              **opts)
        else:
            assignment = vertex_cut_assignment(edge_index, num_nodes, num_parts, method, seed=seed, **opts)
    t1 = time.perf_counter()
    if kind == "vertex-cut":
        plan = build_vertex_cut_plan(edge_index, num_nodes, assignment, num_parts, method=name, seed=seed)
        if hops > 1:
            notes.append(f"hops={hops} ignored: a vertex-cut plan synchronises each node's replicas every "
                         "layer instead of reading a multi-hop halo")
    else:
        plan = build_plan(edge_index, num_nodes, assignment, num_parts, hops=hops, method=name)
    t2 = time.perf_counter()
    plan.seed = seed
    plan.options = {**opts, **({"balance": list(balance)} if balance else {})}
    plan.notes = notes
    plan.timings = {"assign": t1 - t0, "build": t2 - t1}
    plan.seconds = t2 - t0
    return plan


def method_signature(method: str) -> str:
    """``"fennel(order='random', gamma=1.5, nu=1.1, alpha=None)"``: for help texts."""
    opts = METHOD_OPTIONS[method]
    return f"{method}({', '.join(f'{k}={v!r}' for k, v in opts.items())})"


__all__ = ["BALANCE_KEYS", "DESCRIPTIONS", "EDGE_CUT_METHODS", "METHODS", "METHOD_OPTIONS", "MODEL_METHODS",
           "PARTITIONER_REGISTRY", "method_signature", "parse_balance", "partition", "partition_methods",
           "register_partitioner"]
