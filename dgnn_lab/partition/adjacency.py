"""The symmetric adjacency (CSR) that METIS and the streaming partitioners read, built with as few sorts as possible.

Partitioners reason about connectivity, so they take every link in both directions, without self-loops or
duplicates. Most lab graphs are stored that way already; for them one sort of the edge keys and one of the
reversed keys prove it and give the CSR directly (about 1 s at 10M edges here, against 4-5 s for the general
symmetrise + dedupe + CSR route).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dgnn_lab.graph import is_undirected, to_undirected


def _csr_from_sorted_keys(keys: Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    counts = torch.bincount(keys // num_nodes, minlength=num_nodes)
    indptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr.numpy(), (keys % num_nodes).numpy()


def symmetric_adjacency(edge_index: Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(indptr, indices, was_directed)``: sorted neighbour lists of the symmetrised simple graph.

    ``was_directed`` is True when some edge lacked its reverse (so symmetrising changed the graph).
    """
    src, dst = edge_index[0], edge_index[1]
    if src.numel() and bool((src != dst).all()):
        fwd = src * num_nodes + dst
        if not bool((fwd[1:] > fwd[:-1]).all()):  # PyG and to_undirected store edges sorted: no sort then
            fwd = torch.sort(fwd).values
        if bool((fwd[1:] != fwd[:-1]).all()):
            rev = torch.sort(dst * num_nodes + src).values
            if torch.equal(fwd, rev):
                indptr, indices = _csr_from_sorted_keys(fwd, num_nodes)
                return indptr, indices, False
    directed = not is_undirected(edge_index, num_nodes)
    sym = to_undirected(edge_index, num_nodes)  # sorted by (src, dst), no self-loops or duplicates
    indptr, indices = _csr_from_sorted_keys(sym[0] * num_nodes + sym[1], num_nodes)
    return indptr, indices, directed
