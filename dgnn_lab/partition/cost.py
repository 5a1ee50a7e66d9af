"""A cost-model partitioner (ROC-style): predict each worker's epoch from its work, then balance the prediction.

Balancing node or edge counts assumes every unit costs the same. ROC (Jia et al., MLSys 2020) instead *learns*
what a part costs on the machine at hand and partitions to equalise that. Here a part's cost per epoch is::

    cost_p = a * edges_p + b * rows_p + c * halo_bytes_p + d

with ``edges_p`` the edges it aggregates (all layers), ``rows_p`` the rows it computes (all layers),
``halo_bytes_p`` the halo bytes it sends plus receives (forward and backward) and ``d`` what every worker
pays regardless (optimizer step, gradient all-reduce). The coefficients are fitted (non-negative least squares)
to measured runs: for each worker of each run, its median busy seconds per epoch (compute + communication;
waiting for others is not its own cost) against its counted work (the records' ``work`` and halo bytes).
A synchronous epoch lasts as long as its slowest worker, so the predicted epoch time is ``max_p cost_p`` plus
``overhead``: what the slowest worker still waits inside an epoch (each exchange begins at a barrier, so it
waits wherever another worker is slower at that moment), the median of that residual over the fitting runs.

:func:`cost_assignment` then tries candidate partitions (METIS weighted by each node's predicted compute
cost at several imbalance tolerances, METIS unweighted, cost-balanced contiguous ranges as ROC uses, and the
``volume`` partitioner weighted the same way when Mt-KaHyPar is installed), predicts each one's epoch from
its real plan (halo bytes included, which no vertex weight can express) and keeps the smallest. The model
remembers the run settings it was fitted on (model, widths, workers, threads): its coefficients mean nothing
for others. Calibrating is a handful of short real runs: :func:`dgnn_lab.experiments.imbalance.calibrate`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dgnn_lab import records as rec
from dgnn_lab.partition.plan import PartitionPlan, build_plan

#: The features of a part, in the coefficient order ``a, b, c, d``.
FEATURES = ("edges", "rows", "halo_bytes", "constant")


@dataclass
class CostModel:
    """Per-part epoch cost ``a * edges + b * rows + c * halo_bytes + d`` (seconds), fitted on this machine.

    ``widths`` / ``backward``: floats per halo row at each layer and whether its gradient travels back (the
    runs' ``exchange_widths`` / ``backward_layers``), so halo bytes can be predicted from a plan; ``layers``
    counts the edges and rows of every layer. ``settings`` names what the fit is valid for."""

    a: float
    b: float
    c: float
    d: float
    layers: int
    widths: list[int]
    backward: list[bool]
    settings: dict = field(default_factory=dict)
    #: seconds per epoch beyond the slowest worker's predicted busy time (see the module docstring)
    overhead: float = 0.0
    #: the fit's samples: one per worker per run, ``{"run", "rank", "features": [...], "seconds", "epoch_s"}``
    samples: list[dict] = field(default_factory=list)

    @property
    def coefficients(self) -> np.ndarray:
        return np.array([self.a, self.b, self.c, self.d], dtype=float)

    def part_features(self, plan: PartitionPlan) -> np.ndarray:
        """``P x 4`` matrix of each part's :data:`FEATURES` under this model's layers and widths, from the plan."""
        return plan_features(plan, self.layers, self.widths, self.backward)

    def predict_parts(self, plan: PartitionPlan) -> np.ndarray:
        """Predicted busy seconds per epoch of each part's worker."""
        return self.part_features(plan) @ self.coefficients

    def predict_epoch(self, plan: PartitionPlan) -> float:
        """Predicted seconds per synchronous epoch: the slowest part's cost plus the overhead."""
        return float(self.predict_parts(plan).max()) + self.overhead

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (numbers and names only: loading it runs no code)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        """Read a model written by :meth:`save`; ``ValueError`` naming the file if it is not one."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            return cls(a=float(d["a"]), b=float(d["b"]), c=float(d["c"]), d=float(d["d"]), layers=int(d["layers"]),
                       widths=[int(w) for w in d["widths"]], backward=[bool(b) for b in d["backward"]],
                       settings=dict(d.get("settings") or {}), overhead=float(d.get("overhead", 0.0)),
                       samples=list(d.get("samples") or []))
        except FileNotFoundError:
            raise ValueError(f"no cost model at {path} (fit one with dgnn_lab.experiments.imbalance.calibrate)") \
                from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a cost model written by CostModel.save: {e}") from None

    def __repr__(self) -> str:
        runs = len({s.get("run") for s in self.samples})
        return (f"CostModel(a={self.a:.3g} s/edge, b={self.b:.3g} s/row, c={self.c:.3g} s/byte, d={self.d:.3g} s, "
                f"overhead={self.overhead:.3g} s; fitted on {len(self.samples)} workers of {runs} runs)")


def plan_features(plan: PartitionPlan, layers: int, widths: Sequence[int], backward: Sequence[bool],
                  element_size: int = 4) -> np.ndarray:
    """``P x 4``: per part, edges and rows over ``layers`` layers, halo bytes sent + received per epoch
    (each layer's boundary rows x width x element size, twice when its gradient returns), and 1."""
    sizes = plan.boundary_sizes().numpy().astype(float)  # sender row, receiver column
    per_layer = sum(w * element_size * (2 if b else 1) for w, b in zip(widths, backward, strict=True))
    halo = (sizes.sum(axis=1) + sizes.sum(axis=0)) * per_layer
    edges = np.array([p.local_edge_ids.numel() for p in plan.parts], dtype=float) * layers
    rows = np.array([p.num_owned if plan.kind == "edge-cut" else p.num_owned + p.mirrors.numel()
                     for p in plan.parts], dtype=float) * layers
    return np.stack([edges, rows, halo, np.ones(plan.num_parts)], axis=1)


def run_samples(records: Iterable[dict]) -> list[dict]:
    """One sample per training worker of a run: its counted work per epoch, its median busy seconds
    (compute + communication) per epoch, the first epoch (warm-up) left out when there are more, and the
    run's median epoch time (:func:`dgnn_lab.records.s_per_epoch`)."""
    recs = rec.check_records(records)
    eps = rec.worker_epoch_records(recs)
    by_rank: dict[int, list[dict]] = {}
    for r in eps:
        by_rank.setdefault(int(r["rank"]), []).append(r)
    out = []
    run_epoch = rec.s_per_epoch(recs)  # the run's median epoch: its slowest worker's, epoch 0 left out
    for rank, mine in sorted(by_rank.items()):
        mine.sort(key=lambda r: r["epoch"])
        steady = mine[1:] if len(mine) > 1 else mine
        busy = [float(r.get("compute_s") or 0.0) + float(r.get("comm_s") or 0.0) for r in steady]
        work = steady[-1].get("work") or {}
        if "edges" not in work or "rows" not in work:
            raise ValueError(f"rank {rank}'s epoch records carry no work counts: a run recorded before work was "
                             f"counted, or an execution model that does not count it")
        halo = sum(rec.record_bytes(steady[-1], d, rec.HALO_PREFIX) for d in ("sent", "recv"))
        out.append({"rank": rank, "features": [float(sum(work["edges"])), float(sum(work["rows"])), float(halo), 1.0],
                    "seconds": float(np.median(busy)), "epoch_s": run_epoch})
    return out


def fit_cost_model(runs: Iterable[Any], *, layers: int, widths: Sequence[int], backward: Sequence[bool],
                   settings: dict | None = None) -> CostModel:
    """Fit ``a, b, c, d >= 0`` to the workers of ``runs`` (``RunResult`` objects or lists of records) by
    non-negative least squares on relative error (each sample weighted by 1 / its seconds, so a fast worker
    counts as much as a slow one)."""
    from scipy.optimize import nnls

    samples = [{"run": i, **s} for i, run in enumerate(runs) for s in run_samples(getattr(run, "records", run))]
    if len(samples) < 4:
        raise ValueError(f"fitting 4 coefficients needs at least 4 worker samples, got {len(samples)}")
    x = np.array([s["features"] for s in samples], dtype=float)
    y = np.array([s["seconds"] for s in samples], dtype=float)
    scale = x.max(axis=0)
    scale[scale == 0] = 1.0
    wgt = 1.0 / np.maximum(y, 1e-9)
    coef, _ = nnls((x / scale) * wgt[:, None], y * wgt)
    coef = coef / scale
    residual = []
    for i in sorted({s["run"] for s in samples}):
        mine = [s for s in samples if s["run"] == i]
        slowest = max(float(np.dot(s["features"], coef)) for s in mine)
        if mine[0]["epoch_s"] is not None:
            residual.append(mine[0]["epoch_s"] - slowest)
    return CostModel(a=float(coef[0]), b=float(coef[1]), c=float(coef[2]), d=float(coef[3]), layers=int(layers),
                     widths=[int(w) for w in widths], backward=[bool(b) for b in backward],
                     settings=dict(settings or {}), overhead=max(0.0, float(np.median(residual))) if residual
                     else 0.0, samples=samples)


def _node_cost(edge_index: Tensor, num_nodes: int, model: CostModel) -> np.ndarray:
    """Each node's predicted compute cost as an owner: its in-edges and its row, over every layer."""
    indeg = torch.bincount(edge_index[1], minlength=num_nodes).numpy().astype(float)
    return model.layers * (model.a * indeg + model.b)


def _integer_weights(cost: np.ndarray) -> np.ndarray:
    """Positive integer vertex weights proportional to ``cost`` (METIS and Mt-KaHyPar take integers)."""
    scaled = cost / max(float(cost.max()), 1e-30) * 10_000
    return np.maximum(np.rint(scaled), 1).astype(np.int64)


def range_by_cost(cost: np.ndarray, num_parts: int) -> Tensor:
    """Contiguous ranges of node ids with (nearly) equal summed cost: ROC's partition shape."""
    prefix = np.cumsum(cost)
    bounds = np.searchsorted(prefix, prefix[-1] * np.arange(1, num_parts) / num_parts, side="left")
    part = np.zeros(cost.size, dtype=np.int64)
    for b in bounds:
        part[b + 1:] += 1
    return torch.from_numpy(np.minimum(part, num_parts - 1))


#: Above this many nodes the ``volume`` candidate is left out unless asked for: Mt-KaHyPar's deterministic
#: preset takes minutes there (see ``benchmarks/bench_imbalance.py --scale``).
VOLUME_CANDIDATE_NODES = 200_000


def cost_candidates(edge_index: Tensor, num_nodes: int, num_parts: int, model: CostModel, *,
                    seed: int = 0, volume: bool | None = None, notes: list[str] | None = None) -> dict[str, Tensor]:
    """The assignments :func:`cost_assignment` chooses among, by name. ``volume``: include the volume
    partitioner's candidate (default: up to :data:`VOLUME_CANDIDATE_NODES` nodes)."""
    from dgnn_lab.partition.metis import _kway_ctypes, metis_assignment, symmetric_csr

    cost = _node_cost(edge_index, num_nodes, model)
    vw = _integer_weights(cost)[:, None]
    xadj, adjncy, _ = symmetric_csr(edge_index, num_nodes)
    out = {"metis": metis_assignment(edge_index, num_nodes, num_parts, seed=seed)}
    for ufactor in (10, 30, 100):
        part = _kway_ctypes(xadj, adjncy, num_parts, vw, {"seed": int(seed), "ufactor": ufactor})
        out[f"metis-cost(ufactor={ufactor})"] = torch.from_numpy(part).long()
    out["range-cost"] = range_by_cost(cost, num_parts)
    if volume is None:
        volume = num_nodes <= VOLUME_CANDIDATE_NODES
        if not volume and notes is not None:
            notes.append(f"cost: the volume candidate was left out ({num_nodes:,} nodes > "
                         f"{VOLUME_CANDIDATE_NODES:,}: Mt-KaHyPar takes minutes there); pass volume=True to include it")
    if not volume:
        return out
    try:
        from dgnn_lab.partition.volume import volume_assignment
    except ImportError:  # pragma: no cover - the volume partitioner is optional where Mt-KaHyPar is missing
        return out
    try:
        out["volume-cost"] = volume_assignment(edge_index, num_nodes, num_parts, seed=seed, node_weights=vw[:, 0])
    except ImportError:  # pragma: no cover - mtkahypar not installed
        pass
    return out


def cost_assignment(edge_index: Tensor, num_nodes: int, num_parts: int, model: CostModel | str | Path, *,
                    seed: int = 0, volume: bool | None = None, notes: list[str] | None = None) -> Tensor:
    """The candidate assignment (:func:`cost_candidates`, ``volume`` as there) whose plan has the smallest
    predicted epoch time; ``notes`` gets every candidate's prediction."""
    if not isinstance(model, CostModel):
        model = CostModel.load(model)
    if num_parts == 1:
        return torch.zeros(num_nodes, dtype=torch.long)
    scores = {}
    best = None
    for name, assignment in cost_candidates(edge_index, num_nodes, num_parts, model, seed=seed, volume=volume,
                                            notes=notes).items():
        plan = build_plan(edge_index, num_nodes, assignment, num_parts)
        scores[name] = model.predict_epoch(plan)
        if best is None or scores[name] < scores[best[0]]:
            best = (name, assignment)
    if notes is not None:
        shown = ", ".join(f"{n} {1e3 * s:.2f}" for n, s in scores.items())
        notes.append(f"cost: chose {best[0]} (predicted ms per epoch: {shown})")
    return best[1]


__all__ = ["FEATURES", "VOLUME_CANDIDATE_NODES", "CostModel", "cost_assignment", "cost_candidates", "fit_cost_model",
           "plan_features", "range_by_cost", "run_samples"]
