"""Property-based checks of every partitioner on small random graphs (directed, loops, isolated nodes)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from dgnn_lab.partition import METHODS, VERTEX_CUT_METHODS, partition, receptive_field_error
from tests.test_partition import brute_rings, check_edge_cut_plan, check_vertex_cut_plan


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 14))
    m = draw(st.integers(0, 3 * n))
    src = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    symmetric = draw(st.booleans())
    ei = torch.tensor([src, dst], dtype=torch.long).reshape(2, m)
    if symmetric:
        ei = torch.cat([ei, ei.flip(0)], 1)
    train = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=torch.bool)
    return Data(edge_index=ei, num_nodes=n, train_mask=train)


PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("method", METHODS)
@PROPS
@given(data=graphs(), parts=st.integers(1, 4), hops=st.integers(0, 3), seed=st.integers(0, 3))
def test_plan_definitions_hold(method, data, parts, hops, seed):
    parts = min(parts, data.num_nodes)
    plan = partition(data, parts, method, hops=hops, seed=seed)
    if method in VERTEX_CUT_METHODS:
        check_vertex_cut_plan(plan, data)
    else:
        check_edge_cut_plan(plan, data)
        assert plan.hops == hops
        # Without exchange, `hops` rounds of aggregation on what a part stores (owned + `hops` rings; none
        # for hops = 0) are exact; one round more misses exactly the walks that start in ring hops + 1, so it
        # is exact iff no part has a node at distance hops + 1 (brute force, networkx). For hops = 0 that is:
        # one round on the owned nodes alone is exact iff no edge crosses parts.
        if hops:
            assert receptive_field_error(plan, data, hops) < 1e-9
        beyond = any(brute_rings(data.edge_index, data.num_nodes, set(part.owned.tolist()), hops + 1)[hops]
                     for part in plan.parts)
        if hops == 0:
            src, dst = data.edge_index
            assert beyond == bool((plan.assignment[src] != plan.assignment[dst]).any())
        assert (receptive_field_error(plan, data, hops + 1) > 1e-9) == beyond


@PROPS
@given(data=graphs(), parts=st.integers(1, 4), balance=st.sampled_from([(), ("train",), ("degree",),
                                                                        ("train", "degree")]))
def test_metis_with_constraints_is_a_valid_partition(data, parts, balance):
    parts = min(parts, data.num_nodes)
    plan = partition(data, parts, "metis", balance=balance)
    check_edge_cut_plan(plan, data)
