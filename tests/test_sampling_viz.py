"""Batch-generation figures: the computation tree is exact, every figure builds from the library's tables."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from torch_geometric.data import Data

from dgnn_lab.graph import to_undirected
from dgnn_lab.sampling import NeighborLoader
from dgnn_lab.sampling.experiments import neighbourhood_growth
from dgnn_lab.viz.sampling import (
    computation_tree,
    computation_tree_figure,
    full_vs_minibatch_figure,
    neighbourhood_growth_figure,
    sampler_comparison_figure,
)


def dense_graph(n: int = 60) -> Data:
    g = torch.Generator().manual_seed(0)
    ei = to_undirected(torch.randint(0, n, (2, 20 * n), generator=g), n)     # every degree well above 5
    return Data(x=torch.randn(n, 3, generator=g), y=torch.zeros(n, dtype=torch.long), edge_index=ei, num_nodes=n)


def test_computation_tree_has_prod_fanouts_leaves_and_real_parents():
    data = dense_graph()
    batch = next(iter(NeighborLoader(data, [4, 3], batch_size=5, seed=0)))
    tree = computation_tree(batch, seed_index=2)
    assert tree["depth"].value_counts().sort_index().tolist() == [1, 4, 12]
    assert tree["global_id"].iloc[0] == int(batch.n_id[2])
    edges = set(map(tuple, data.edge_index.T.tolist()))
    for _, r in tree.iloc[1:].iterrows():                  # each tree edge child -> parent is a graph edge
        assert (r["global_id"], tree["global_id"].iloc[r["parent"]]) in edges
    fig = computation_tree_figure(batch, 2)
    assert sum(len(t.x) for t in fig.data[1:]) == 17
    grouped = computation_tree_figure(batch, 0, groups=torch.arange(60) % 3, group_names=["own", "halo", "remote"])
    assert {t.name for t in grouped.data[1:]} <= {"own", "halo", "remote"}
    with pytest.raises(ValueError, match=r"seed_index must be in \[0, 4\]"):
        computation_tree(batch, seed_index=5)


def test_tables_become_figures():
    data = dense_graph()
    growth = neighbourhood_growth(data, torch.arange(4), [3, 2], repeats=2)
    assert growth["full"].tolist()[0] == 4 and (growth["sampled"] <= growth["full"]).all()
    assert growth["bound"].tolist() == [4, 16, 40]
    assert isinstance(neighbourhood_growth_figure(growth), go.Figure)
    table = pd.DataFrame({"sampler": ["a", "b"], "outputs": [1, 2], "inputs": [3, 4], "edges": [5, 6],
                          "rel_error": [0.1, 0.2], "inputs_per_output": [3, 2]})
    assert len(sampler_comparison_figure(table).data) == 2
    hist = pd.DataFrame({"mode": ["full", "full", "minibatch"], "epoch": [1, 2, 1], "steps": [1, 1, 3],
                         "train_s": [0.1, 0.1, 0.2], "test_acc": [0.5, 0.6, 0.7]})
    fig = full_vs_minibatch_figure(hist)
    assert [t.name for t in fig.data] == ["full", "minibatch"]
    assert list(fig.data[0].x) == pytest.approx([0.1, 0.2])
