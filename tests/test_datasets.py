"""Datasets: generator statistics, determinism, Planetoid shapes, and every bad-input path."""

from __future__ import annotations

import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab.graph import is_undirected


def _homophily(data) -> float:
    s, d = data.edge_index
    return (data.y[s] == data.y[d]).float().mean().item()


@pytest.mark.parametrize("homophily", [0.1, 0.5, 0.9])
def test_csbm_statistics_match_request(homophily):
    data = datasets.load("csbm", num_nodes=20_000, avg_degree=12, homophily=homophily, num_classes=5, seed=3)
    assert data.num_nodes == 20_000
    assert data.edge_index.size(1) / data.num_nodes == pytest.approx(12, rel=0.02)
    assert _homophily(data) == pytest.approx(homophily, abs=0.02)
    assert is_undirected(data.edge_index, data.num_nodes)
    assert not (data.edge_index[0] == data.edge_index[1]).any()
    assert torch.bincount(data.y).tolist() == [4000] * 5


def test_csbm_features_and_split():
    data = datasets.load("csbm", num_nodes=1000, num_features=7, train_frac=0.5, val_frac=0.25)
    assert data.x.shape == (1000, 7)
    assert (data.train_mask.sum(), data.val_mask.sum(), data.test_mask.sum()) == (500, 250, 250)
    assert not (data.train_mask & data.val_mask).any() and not (data.val_mask & data.test_mask).any()
    assert (data.train_mask | data.val_mask | data.test_mask).all()
    # The feature signal is real: class means are separated far more than noise alone would allow.
    means = torch.stack([data.x[data.y == c].mean(0) for c in range(4)])
    assert torch.cdist(means, means).max() > 0.5


@pytest.mark.parametrize("name", ["csbm", "powerlaw", "karate"])
def test_deterministic_by_seed(name):
    params = {} if name == "karate" else {"num_nodes": 3000}
    a, b = datasets.load(name, seed=1, **params), datasets.load(name, seed=1, **params)
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(a[key], b[key]), key
    if name != "karate":
        c = datasets.load(name, seed=2, **params)
        assert not torch.equal(a.edge_index, c.edge_index)


def test_powerlaw_is_skewed_and_homophilous():
    data = datasets.load("powerlaw", num_nodes=20_000, avg_degree=10, homophily=0.8, exponent=2.2)
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes).float()
    csbm_deg = torch.bincount(datasets.load("csbm", num_nodes=20_000).edge_index[1]).float()
    # Hubs: the top degree dwarfs the mean, far beyond what the SBM's binomial degrees produce.
    assert deg.max() / deg.mean() > 10 * (csbm_deg.max() / csbm_deg.mean())
    assert deg.mean() == pytest.approx(10, rel=0.2)  # duplicate draws between hubs are dropped
    assert _homophily(data) == pytest.approx(0.8, abs=0.05)
    assert is_undirected(data.edge_index, data.num_nodes)


def test_karate():
    data = datasets.load("karate")
    assert data.num_nodes == 34 and data.edge_index.size(1) == 156
    assert data.y[0] == 0 and data.y[33] == 1 and int(data.y.sum()) == 17
    assert data.train_mask.sum() == 4


def test_csbm_scales_in_linear_memory():
    # O(edges) generation: 200k nodes would exhaust memory with an O(n^2) block model.
    data = datasets.load("csbm", num_nodes=200_000, avg_degree=4)
    assert data.edge_index.size(1) == pytest.approx(800_000, rel=0.01)


def test_list_datasets_describes_everything():
    infos = {i.name: i for i in datasets.list_datasets()}
    assert set(infos) == {"karate", "csbm", "powerlaw", "cora", "citeseer", "pubmed"}
    for info in infos.values():
        assert info.description and info.nodes > 0 and info.edges > 0
    assert infos["karate"].available and infos["csbm"].available


def test_planetoid_shapes(planetoid_root):
    cora = datasets.load("cora", root=planetoid_root)
    assert cora.x.shape == (2708, 1433) and cora.edge_index.shape == (2, 10556)
    assert (int(cora.train_mask.sum()), int(cora.val_mask.sum()), int(cora.test_mask.sum())) == (140, 500, 1000)
    assert int(cora.y.max()) + 1 == 7
    citeseer = datasets.load("citeseer", root=planetoid_root)
    assert citeseer.x.shape == (3327, 3703) and citeseer.edge_index.shape == (2, 9104)
    assert int(citeseer.train_mask.sum()) == 120
    assert {i.name for i in datasets.list_datasets(planetoid_root) if i.available} >= {"cora", "citeseer"}


def test_planetoid_root_from_environment(planetoid_root, monkeypatch):
    monkeypatch.setenv("DGNN_LAB_DATA", str(planetoid_root))
    assert datasets.load("cora").num_nodes == 2708


def test_missing_planetoid_says_where_to_put_files(tmp_path, monkeypatch):
    # Offline with no files: PyG's download fails; the error names the folder and the files.
    from torch_geometric.datasets import Planetoid

    def no_network(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(Planetoid, "download", no_network)
    with pytest.raises(FileNotFoundError) as err:
        datasets.load("cora", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "Planetoid" / "Cora" / "raw") in msg and "ind.cora.graph" in msg
    assert "DGNN_LAB_DATA" in msg


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'corra'.*karate, csbm, powerlaw, cora"):
        datasets.load("corra")


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"homophily": 1.5}, r"homophily must be in \[0.0, 1.0\], got 1.5"),
        ({"homophily": -0.1}, r"homophily must be in \[0.0, 1.0\]"),
        ({"num_nodes": 0}, r"num_nodes must be >= 1, got 0"),
        ({"num_nodes": 2.5}, r"num_nodes must be an integer, got 2.5"),
        ({"num_classes": 0}, r"num_classes must be in \[1, "),
        ({"avg_degree": -1}, r"avg_degree must be in \[0.0, "),
        ({"num_features": 0}, r"num_features must be >= 1"),
        ({"feature_signal": -1}, r"feature_signal must be >= 0.0"),
        ({"train_frac": 0.8, "val_frac": 0.5}, r"train_frac \+ val_frac must be <= 1"),
        ({"seed": -1}, r"seed must be >= 0"),
        ({"num_nodez": 10}, r"takes no parameter 'num_nodez'; allowed: num_nodes"),
    ],
)
def test_bad_csbm_parameters(params, pattern):
    with pytest.raises(ValueError, match=pattern):
        datasets.load("csbm", **params)


def test_bad_powerlaw_exponent():
    with pytest.raises(ValueError, match=r"exponent must be > 2.0, got 1.5"):
        datasets.load("powerlaw", exponent=1.5)


def test_parse_dataset_args_types_and_errors():
    assert datasets.parse_dataset_args("csbm", ["num_nodes=500", "homophily=0.25"]) == {
        "num_nodes": 500, "homophily": 0.25}
    with pytest.raises(ValueError, match="is not KEY=VALUE"):
        datasets.parse_dataset_args("csbm", ["num_nodes"])
    with pytest.raises(ValueError, match="num_nodes must be a number, got 'many'"):
        datasets.parse_dataset_args("csbm", ["num_nodes=many"])
    with pytest.raises(ValueError, match="takes no parameter 'bogus'"):
        datasets.parse_dataset_args("karate", ["bogus=1"])
