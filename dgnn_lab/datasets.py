"""Datasets: every loader returns a PyG ``Data`` with ``x``, ``y``, ``edge_index`` and train/val/test masks.

Synthetic graphs are generated in O(edges), so a lab can scale a graph up to millions of nodes in seconds,
and are deterministic for a given ``seed``. Planetoid graphs come through PyG's own loader, which downloads
their files into the data root on first use (``$DGNN_LAB_PLANETOID_URL`` overrides where from).
"""

from __future__ import annotations

import inspect
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data

from dgnn_lab import settings
from dgnn_lab.graph import to_undirected
from dgnn_lab.settings import data_root

__all__ = ["DatasetInfo", "UnknownDatasetError", "list_datasets", "load", "parse_dataset_args"]


class UnknownDatasetError(ValueError):
    """Raised for a dataset name the lab does not know; the message lists the valid names."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    nodes: int
    edges: int
    features: int
    classes: int
    kind: str  # "synthetic", "bundled" or "planetoid"
    available: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------- checks


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, float) and float(value).is_integer()
    ):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def _check_float(name: str, value, low: float, high: float | None = None, *, low_open: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    bad = value <= low if low_open else value < low
    if math.isnan(value) or bad or (high is not None and value > high):
        lo = "(" if low_open else "["
        allowed = f"in {lo}{low}, {high}]" if high is not None else f"{'>' if low_open else '>='} {low}"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def _split_masks(num_nodes: int, train_frac: float, val_frac: float, gen: torch.Generator):
    if train_frac + val_frac > 1:
        raise ValueError(f"train_frac + val_frac must be <= 1, got {train_frac} + {val_frac}")
    perm = torch.randperm(num_nodes, generator=gen)
    n_train = int(round(train_frac * num_nodes))
    n_val = int(round(val_frac * num_nodes))
    masks = []
    for lo, hi in ((0, n_train), (n_train, n_train + n_val), (n_train + n_val, num_nodes)):
        m = torch.zeros(num_nodes, dtype=torch.bool)
        m[perm[lo:hi]] = True
        masks.append(m)
    return masks


# ------------------------------------------------------------------------------------------ synthetic


def _balanced_labels(num_nodes: int, num_classes: int, gen: torch.Generator) -> Tensor:
    return (torch.arange(num_nodes) % num_classes)[torch.randperm(num_nodes, generator=gen)]


def _class_blocks(y: Tensor, num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Nodes sorted by class, plus each class's [start, end) in that order."""
    order = torch.argsort(y, stable=True)
    sizes = torch.bincount(y, minlength=num_classes)
    ends = torch.cumsum(sizes, 0)
    return order, ends - sizes, ends


def _features(y: Tensor, num_classes: int, num_features: int, signal: float, gen: torch.Generator) -> Tensor:
    """Gaussian features around one random unit-norm centroid per class: ``x = signal * mu[y] + N(0, I)``."""
    centroids = torch.randn(num_classes, num_features, generator=gen)
    centroids /= centroids.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = torch.randn(y.numel(), num_features, generator=gen)
    x += signal * centroids[y]
    return x


def _sample_endpoints(
    src: Tensor, y: Tensor, num_classes: int, homophily: float, weight: Tensor | None, gen: torch.Generator
) -> Tensor:
    """For each source, a destination in its own class with probability ``homophily``, else in another class.

    With ``weight`` the destination is drawn proportionally to it (degree-corrected SBM), else uniformly.
    Vectorised: a class is a contiguous block of the class-sorted node order, so "any node outside class c"
    is an offset into the order with c's block skipped.
    """
    order, starts, ends = _class_blocks(y, num_classes)
    c = y[src]
    same = torch.rand(src.numel(), generator=gen) < homophily
    u = torch.rand(src.numel(), generator=gen, dtype=torch.float64)
    if weight is None:
        sizes = (ends - starts)[c]
        n = y.numel()
        pos_same = starts[c] + (u * sizes).long().clamp_max(sizes - 1)
        r = (u * (n - sizes)).long().clamp_max(n - sizes - 1).clamp_min(0)
        pos_other = torch.where(r < starts[c], r, r + sizes)
    else:
        w = weight[order].double()
        cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(w, 0)])
        mass_lo, mass_hi = cum[starts[c]], cum[ends[c]]
        total = cum[-1]
        t_same = mass_lo + u * (mass_hi - mass_lo)
        r = u * (total - (mass_hi - mass_lo))
        t_other = torch.where(r < mass_lo, r, r + (mass_hi - mass_lo))
        t = torch.where(same, t_same, t_other)
        pos = (torch.searchsorted(cum, t, right=True) - 1).clamp(0, y.numel() - 1)
        return order[pos]
    if num_classes == 1:
        pos_other = pos_same
    return order[torch.where(same, pos_same, pos_other)]


def _sbm(
    num_nodes: int,
    num_classes: int,
    avg_degree: float,
    homophily: float,
    num_features: int,
    feature_signal: float,
    train_frac: float,
    val_frac: float,
    seed: int,
    weight_fn: Callable[[torch.Generator], Tensor] | None,
) -> Data:
    gen = torch.Generator().manual_seed(seed)
    y = _balanced_labels(num_nodes, num_classes, gen)
    weight = weight_fn(gen) if weight_fn is not None else None
    num_undirected = int(round(num_nodes * avg_degree / 2))
    if weight is None:
        src = torch.randint(0, num_nodes, (num_undirected,), generator=gen)
    else:
        src = torch.multinomial(weight, num_undirected, replacement=True, generator=gen)
    dst = _sample_endpoints(src, y, num_classes, homophily, weight, gen)
    edge_index = to_undirected(torch.stack([src, dst]), num_nodes)
    x = _features(y, num_classes, num_features, feature_signal, gen)
    train, val, test = _split_masks(num_nodes, train_frac, val_frac, gen)
    return Data(x=x, y=y, edge_index=edge_index, train_mask=train, val_mask=val, test_mask=test)


def _check_sbm(num_nodes, num_classes, avg_degree, homophily, num_features, feature_signal, train_frac, val_frac):
    num_nodes = _check_int("num_nodes", num_nodes, 1)
    num_classes = _check_int("num_classes", num_classes, 1, num_nodes)
    avg_degree = _check_float("avg_degree", avg_degree, 0.0, float(max(num_nodes - 1, 0)))
    homophily = _check_float("homophily", homophily, 0.0, 1.0)
    if num_classes == 1 and homophily < 1.0:
        raise ValueError(f"homophily must be 1.0 when num_classes is 1, got {homophily}")
    num_features = _check_int("num_features", num_features, 1)
    feature_signal = _check_float("feature_signal", feature_signal, 0.0)
    train_frac = _check_float("train_frac", train_frac, 0.0, 1.0)
    val_frac = _check_float("val_frac", val_frac, 0.0, 1.0)
    return num_nodes, num_classes, avg_degree, homophily, num_features, feature_signal, train_frac, val_frac


def csbm(
    num_nodes: int = 10_000,
    num_classes: int = 4,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    num_features: int = 32,
    feature_signal: float = 1.0,
    train_frac: float = 0.3,
    val_frac: float = 0.2,
    seed: int = 0,
) -> Data:
    """Contextual stochastic block model: balanced classes, Gaussian class-mean features.

    ``homophily`` is the expected fraction of edges inside a class; ``avg_degree`` the expected number of
    directed edges per node (both directions are stored). Self-loops and duplicate draws are dropped, so the
    realised degree is a hair under the target on small, dense graphs.
    """
    args = _check_sbm(num_nodes, num_classes, avg_degree, homophily, num_features, feature_signal, train_frac, val_frac)
    return _sbm(*args, seed=_check_int("seed", seed, 0), weight_fn=None)


def powerlaw(
    num_nodes: int = 10_000,
    num_classes: int = 4,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    exponent: float = 2.2,
    num_features: int = 32,
    feature_signal: float = 1.0,
    train_frac: float = 0.3,
    val_frac: float = 0.2,
    seed: int = 0,
) -> Data:
    """Degree-corrected SBM with Pareto node weights: a few hubs, a long tail, learnable communities.

    A node's expected degree is proportional to its weight, whose tail follows ``P(w > t) ~ t^(1-exponent)``,
    the skew that makes workload imbalance visible. ``exponent`` must exceed 2 so the mean degree is finite.
    """
    args = _check_sbm(num_nodes, num_classes, avg_degree, homophily, num_features, feature_signal, train_frac, val_frac)
    exponent = _check_float("exponent", exponent, 2.0, None, low_open=True)

    def weights(gen: torch.Generator) -> Tensor:
        u = torch.rand(args[0], generator=gen, dtype=torch.float64).clamp_min(1e-12)
        w = u.pow(-1.0 / (exponent - 1.0))
        return (w / w.sum()).float().clamp_min(1e-30)

    return _sbm(*args, seed=_check_int("seed", seed, 0), weight_fn=weights)


def karate(seed: int = 0) -> Data:
    """Zachary's karate club: 34 members, 78 friendships, labelled by the club each member joined.

    Features are one-hot node ids (the classic setup). The two leaders (0 and 33) and one follower of each
    are the training nodes; ``seed`` picks which 10 of the rest are validation.
    """
    import networkx as nx

    seed = _check_int("seed", seed, 0)
    g = nx.karate_club_graph()
    edges = torch.tensor(list(g.edges()), dtype=torch.long).t()
    edge_index = to_undirected(edges, 34)
    y = torch.tensor([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in range(34)])
    train = torch.zeros(34, dtype=torch.bool)
    train[[0, 1, 32, 33]] = True
    rest = (~train).nonzero().flatten()
    gen = torch.Generator().manual_seed(seed)
    rest = rest[torch.randperm(rest.numel(), generator=gen)]
    val = torch.zeros(34, dtype=torch.bool)
    val[rest[:10]] = True
    test = ~(train | val)
    return Data(x=torch.eye(34), y=y, edge_index=edge_index, train_mask=train, val_mask=val, test_mask=test)


# ------------------------------------------------------------------------------------------ planetoid

PLANETOID_FILES = settings.PLANETOID_FILES
_PLANETOID_NAMES = settings.PLANETOID_NAMES
planetoid_raw_dir = settings.planetoid_raw_dir
_planetoid_missing = settings.planetoid_missing
_PLANETOID_SOURCE = "https://github.com/kimiyoung/planetoid/tree/master/data"


def _lab_planetoid():
    """PyG's ``Planetoid`` with the download URL set per instance and a download that never leaves a
    half-written ``raw/``: the missing files arrive in a scratch folder beside it and move in only when every
    one of them has arrived (PyG's own ``download`` writes file by file, straight into ``raw/``)."""
    from torch_geometric.datasets import Planetoid
    from torch_geometric.io import fs

    class LabPlanetoid(Planetoid):
        def __init__(self, root: str, name: str, url: str) -> None:
            self.url = url  # read by download(), which PyG's __init__ calls when raw files are missing
            super().__init__(root, name)

        def download(self) -> None:
            raw = Path(self.raw_dir)
            missing = [f for f in self.raw_file_names if not (raw / f).is_file() or (raw / f).stat().st_size == 0]
            scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=raw.parent))
            try:
                for f in missing:
                    fs.cp(f"{self.url}/{f}", str(scratch))
                    if not (scratch / f).is_file():
                        raise OSError(f"{self.url}/{f} gave no file")
                for f in missing:
                    os.replace(scratch / f, raw / f)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    return LabPlanetoid


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _planetoid(name: str, root: str | os.PathLike | None) -> Data:
    """Read ``name`` from ``<root>/Planetoid/<Name>/raw``, downloading the missing files first (from
    ``$DGNN_LAB_PLANETOID_URL``, else PyG's ``Planetoid.url``); offline, one ``FileNotFoundError`` says which
    files to put where."""
    from torch_geometric.datasets import Planetoid

    pretty = _PLANETOID_NAMES[name]
    raw = planetoid_raw_dir(name, root)
    missing = _planetoid_missing(name, root)
    for f in missing:  # an empty file (an interrupted copy) would pass PyG's exists() check
        if (raw / f).is_file():
            (raw / f).unlink()
    url = settings.planetoid_url(Planetoid.url)
    try:
        ds = _lab_planetoid()(str(data_root(root) / "Planetoid"), pretty, url)
    except Exception as exc:  # offline, a 404 from a mirror, or a half-copied folder
        if not missing:
            raise
        for f in missing:  # downloaded but unreadable (a mirror's error page): not "on disk" next time
            (raw / f).unlink(missing_ok=True)
        for d in (raw, raw.parent):  # PyG created them before downloading; leave no empty folders behind
            try:
                d.rmdir()
            except OSError:
                break
        raise FileNotFoundError(
            f"dataset {name!r} is not on disk and could not be downloaded from {url}/ ({_one_line(exc)}); "
            f"put the Planetoid files {', '.join(missing)} into {raw}/ (from {_PLANETOID_SOURCE}), "
            f"or point the data root at a folder holding Planetoid/{pretty}/raw/ with root=..., --data-root DIR "
            f"or ${settings.DATA_ENV}, or set ${settings.PLANETOID_URL_ENV} to a mirror"
        ) from None
    data = ds[0]
    return Data(
        x=data.x, y=data.y, edge_index=data.edge_index,
        train_mask=data.train_mask, val_mask=data.val_mask, test_mask=data.test_mask,
    )


def cora(root: str | os.PathLike | None = None) -> Data:
    """Cora citation graph, public Planetoid split (140/500/1000)."""
    return _planetoid("cora", root)


def citeseer(root: str | os.PathLike | None = None) -> Data:
    """CiteSeer citation graph, public Planetoid split (120/500/1000)."""
    return _planetoid("citeseer", root)


def pubmed(root: str | os.PathLike | None = None) -> Data:
    """PubMed citation graph, public Planetoid split (60/500/1000)."""
    return _planetoid("pubmed", root)


# ------------------------------------------------------------------------------------------- registry

_LOADERS: dict[str, Callable[..., Data]] = {
    "karate": karate,
    "csbm": csbm,
    "powerlaw": powerlaw,
    "cora": cora,
    "citeseer": citeseer,
    "pubmed": pubmed,
}

# (description, nodes, directed edges, features, classes); synthetic sizes are at default parameters.
_INFO = {
    "karate": ("Zachary's karate club: two clubs, small enough to draw", 34, 156, 34, 2, "bundled"),
    "csbm": ("contextual SBM: tunable size, degree, homophily, feature signal", 10_000, 100_000, 32, 4,
             "synthetic"),
    "powerlaw": ("degree-corrected SBM with power-law degrees: hubs for imbalance lessons", 10_000, 100_000,
                 32, 4, "synthetic"),
    "cora": ("Cora citation graph (Planetoid public split)", 2_708, 10_556, 1_433, 7, "planetoid"),
    "citeseer": ("CiteSeer citation graph (Planetoid public split)", 3_327, 9_104, 3_703, 6, "planetoid"),
    "pubmed": ("PubMed citation graph (Planetoid public split)", 19_717, 88_648, 500, 3, "planetoid"),
}


def names() -> list[str]:
    return list(_LOADERS)


def _loader(name: str) -> Callable[..., Data]:
    if not isinstance(name, str) or name.lower() not in _LOADERS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; valid names: {', '.join(_LOADERS)}")
    return _LOADERS[name.lower()]


def list_datasets(root: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Every dataset with a one-line description and its size (synthetic ones at default parameters)."""
    out = []
    for name, (desc, n, e, f, c, kind) in _INFO.items():
        available = kind != "planetoid" or not _planetoid_missing(name, root)
        out.append(DatasetInfo(name, desc, n, e, f, c, kind, available))
    return out


def load(name: str, **params) -> Data:
    """Load a dataset by name; ``params`` go to its generator or loader (see :func:`list_datasets`).

    Planetoid names take ``root=``; synthetic ones take their generator's keywords (``num_nodes``, ``seed``...).
    """
    fn = _loader(name)
    valid = inspect.signature(fn).parameters
    unknown = [k for k in params if k not in valid]
    if unknown:
        allowed = ", ".join(valid) or "none"
        raise ValueError(f"dataset {name!r} takes no parameter {', '.join(map(repr, unknown))}; allowed: {allowed}")
    data = fn(**params)
    data.name = name.lower()
    return data


def parse_dataset_args(name: str, items: Iterable[str]) -> dict:
    """Turn ``["num_nodes=5000", "homophily=0.6"]`` into typed keyword arguments for :func:`load`."""
    params = inspect.signature(_loader(name)).parameters
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"dataset argument {item!r} is not KEY=VALUE")
        if key not in params:
            raise ValueError(f"dataset {name!r} takes no parameter {key!r}; allowed: {', '.join(params) or 'none'}")
        default = params[key].default
        try:
            if isinstance(default, bool):
                out[key] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                out[key] = int(float(raw)) if float(raw).is_integer() else float(raw)
            elif isinstance(default, float):
                out[key] = float(raw)
            else:
                out[key] = raw
        except ValueError:
            raise ValueError(f"{key} must be a number, got {raw!r}") from None
    return out


def choose(name: str, stand_in: dict, *, root: str | os.PathLike | None = None) -> dict:
    """The dataset a notebook uses: ``name`` (a Planetoid set, downloaded into the data root when missing), or
    ``stand_in`` only when ``name`` cannot be had, saying so. Never silent: it prints one line either way.

    Returns a config fragment ``{"dataset": ..., "dataset_args": {...}}`` for ``train({**fragment, ...})`` and
    ``load(fragment["dataset"], **fragment["dataset_args"])``. In smoke mode (the tests) nothing is downloaded:
    the stand-in is used unless the files are already on disk.
    """
    from dgnn_lab.settings import smoke_mode

    real = {"dataset": name, "dataset_args": {} if root is None else {"root": str(root)}}
    if not any(i.name == name and i.available for i in list_datasets(root)):
        if smoke_mode():
            reason = "smoke mode does not download"
        else:
            try:
                load(name, root=root)
            except (OSError, RuntimeError, ValueError) as exc:  # offline: the loader says what to put where
                reason = str(exc).splitlines()[0].rstrip(".")
            else:
                reason = None
        if reason is not None:
            args = dict(stand_in.get("dataset_args", {}))
            print(f"NOTE: using {stand_in['dataset']} ({', '.join(f'{k}={v}' for k, v in args.items())}) instead "
                  f"of {name}: {reason}. Numbers quoted from the reference run are {name}'s; yours will differ.")
            return {"dataset": stand_in["dataset"], "dataset_args": args}
    print(f"dataset: {name} ({planetoid_raw_dir(name, root).parent})")
    return real
