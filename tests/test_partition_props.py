"""Property-based checks of every partitioner on small random graphs (directed, loops, isolated nodes)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from dgnn_lab.partition import METHODS, VERTEX_CUT_METHODS, partition, receptive_field_error
from tests.test_partition import check_edge_cut_plan, check_vertex_cut_plan


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
        assert (receptive_field_error(plan, data, hops) < 1e-9) if hops else True


@PROPS
@given(data=graphs(), parts=st.integers(1, 4), balance=st.sampled_from([(), ("train",), ("degree",),
                                                                        ("train", "degree")]))
def test_metis_with_constraints_is_a_valid_partition(data, parts, balance):
    parts = min(parts, data.num_nodes)
    plan = partition(data, parts, "metis", balance=balance)
    check_edge_cut_plan(plan, data)
