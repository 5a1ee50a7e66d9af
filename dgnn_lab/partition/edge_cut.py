"""The two baselines every paper compares against: random (hash) and range (contiguous id blocks).

Both ignore the edges entirely, which is exactly why they are worth measuring: random spreads every node's
neighbours over all parts (a cut fraction near ``1 - 1/P``), range keeps whatever locality the node numbering
happens to have (CAGNET and Sancus split the adjacency matrix this way).
"""

from __future__ import annotations

import torch
from torch import Tensor


def random_assignment(num_nodes: int, num_parts: int, seed: int = 0) -> Tensor:
    """Each node to a uniformly random part, as hashing node ids would (seeded, so reproducible)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_parts, (num_nodes,), generator=gen)


def range_assignment(num_nodes: int, num_parts: int) -> Tensor:
    """Contiguous blocks of node ids, sizes differing by at most one: node ``v`` goes to ``v * P // N``."""
    return torch.arange(num_nodes) * num_parts // max(num_nodes, 1)
