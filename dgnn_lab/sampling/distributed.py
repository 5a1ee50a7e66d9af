"""Distributed neighbour sampling for mini-batch training: which seeds a worker trains, and whose topology a
sampled neighbourhood comes from.

Seed splits (:func:`split_seeds`), the two choices DistDGL and PyG's first distributed example made:

* ``local``: DistDGL's ``node_split(force_even=True)``. Every worker gets ``n // P`` or ``n // P + 1`` of the
  ``n`` training seeds, as many as possible owned by itself: a worker keeps its own seeds up to its share;
  the surplus of over-full workers tops up the others (so with a balanced partition *all* seeds are local).
  ``force_even=False`` keeps exactly the owned seeds, whatever their counts.
* ``chunk``: contiguous chunks of the training index, ignoring ownership: with a partition that follows the
  graph's structure, most of a worker's seeds and their neighbourhoods then live elsewhere.

Remote neighbourhoods (:class:`DistNeighborSampler`, node-wise GraphSAGE sampling hop by hop):

* ``owner``: a worker holds the in-edges of the nodes it owns only. For a frontier node owned by worker q, it
  sends q the node id (purpose ``sample_req``) and q samples that node's neighbours with its own generator
  and answers ``(position, neighbour)`` pairs (purpose ``sample_resp``). Two all-to-alls per hop (counts
  first: the communicator's ``exchange`` needs receive sizes in advance), so sampling is COLLECTIVE: every
  worker calls :meth:`~DistNeighborSampler.sample` once per step, possibly with no seeds, to serve the others.
* ``halo``: a worker holds a replicated copy of the topology it can ever need: the in-edges of its owned
  nodes, its seeds and every node within ``L - 1`` hops of them (:func:`halo_topology_nodes`; for a ``local``
  split this is the plan's halo rings ``1..L-1``). Sampling then needs no communication at all; the price is
  memory for the replicated edges.

Both modes use :func:`~dgnn_lab.sampling.neighbor.sample_one_hop`, so a node's sample follows the same rules
(without replacement: ``min(deg, fanout)`` distinct neighbours; ``-1``: all). Self-loops are left out of the
sampling topology: the models add each node's own term explicitly (GCN's self-loop, SAGE's root weight).
The output is the per-layer :class:`~dgnn_lab.sampling.blocks.Block` list of ``to_blocks`` (input layer first,
the seeds the last block's dst nodes) with global ids in ``n_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dgnn_lab.graph import CSR, k_hop_rings, to_csr
from dgnn_lab.registry import Registry
from dgnn_lab.sampling.blocks import Block, check_fanouts
from dgnn_lab.sampling.neighbor import UNSET, add_new_nodes, sample_one_hop

__all__ = ["REMOTE_SAMPLING", "SAMPLER_REGISTRY", "SEED_SPLITS", "DistNeighborSampler", "DistSample", "Topology",
           "halo_topology_nodes", "register_sampler", "split_seeds"]

SEED_SPLITS = ("local", "chunk")
REMOTE_SAMPLING = ("owner", "halo")


def split_seeds(train_idx: Tensor, assignment: Tensor, rank: int, world_size: int, how: str = "local", *,
                force_even: bool = True) -> Tensor:
    """The training seeds (global ids) worker ``rank`` trains on; the splits of all ranks partition
    ``train_idx``. See the module docstring for ``how`` (``local`` | ``chunk``) and ``force_even``.
    Deterministic: every worker can compute every worker's split."""
    if how not in SEED_SPLITS:
        raise ValueError(f"unknown seed split {how!r}; allowed: {', '.join(SEED_SPLITS)}")
    if not 0 <= int(rank) < int(world_size):
        raise ValueError(f"rank must be in [0, {world_size - 1}], got {rank}")
    train_idx = torch.as_tensor(train_idx).long().reshape(-1)
    if how == "chunk":
        return torch.tensor_split(train_idx, world_size)[rank].clone()
    assignment = torch.as_tensor(assignment).long()
    owner = assignment[train_idx]
    own = [train_idx[owner == r] for r in range(world_size)]
    if not force_even:
        return own[rank]
    n = train_idx.numel()
    target = [n // world_size + (1 if r < n % world_size else 0) for r in range(world_size)]
    keep = [own[r][:target[r]] for r in range(world_size)]
    pool = torch.cat([own[r][target[r]:] for r in range(world_size)])   # surplus, in rank order
    start = 0
    for r in range(world_size):
        need = target[r] - keep[r].numel()
        if r == rank:
            return torch.cat([keep[r], pool[start:start + need]])
        start += need
    raise AssertionError("unreachable")


@dataclass
class Topology:
    """The in-edges this worker holds, as a CSR over *global* ids (``indptr`` has ``num_nodes + 1`` entries;
    nodes whose edges live elsewhere have none), plus ``held``: which nodes' in-edges are here."""

    csr: CSR
    held: Tensor

    @classmethod
    def of(cls, edge_index: Tensor, num_nodes: int, nodes: Tensor) -> Topology:
        """The in-edges of ``nodes`` (self-loops dropped) out of a global ``edge_index``."""
        held = torch.zeros(num_nodes, dtype=torch.bool)
        held[torch.as_tensor(nodes).long()] = True
        src, dst = edge_index
        keep = held[dst] & (src != dst)
        return cls(to_csr(edge_index[:, keep], num_nodes), held)

    @property
    def num_edges(self) -> int:
        return self.csr.num_edges


def halo_topology_nodes(csr: CSR, base: Tensor, hops: int) -> Tensor:
    """``base`` plus every node within ``hops`` in-hops of it: whose in-edges a ``halo`` sampler of an
    ``hops + 1``-layer model starting from ``base`` (owned nodes and seeds) may read."""
    base = torch.unique(torch.as_tensor(base).long())
    rings = k_hop_rings(csr, base, hops) if hops > 0 else []
    return torch.cat([base, *rings])


@dataclass
class DistSample:
    """One sampled computation graph: ``n_id`` global ids (seeds first, then each hop's new nodes), ``blocks``
    input layer first, and what it cost: ``remote_nodes`` (frontier nodes sampled by their owner) and
    ``requests`` (request messages sent, one per owner asked per hop)."""

    n_id: Tensor
    blocks: list[Block]
    num_sampled_nodes: list[int]
    remote_nodes: int = 0
    requests: int = 0

    @property
    def batch_size(self) -> int:
        return self.num_sampled_nodes[0]


class DistNeighborSampler:
    """Node-wise sampling over a partitioned graph (see the module docstring).

    ``comm`` the communicator (owner mode talks through it; give a prefetch thread its own); ``topology`` the
    in-edges held here; ``assignment`` the owner of every node. Not thread-safe (scratch arrays, generator):
    one sampler per thread.
    """

    name = "neighbor"

    def __init__(self, comm, topology: Topology, assignment: Tensor, fanouts: Sequence[int], *,
                 mode: str = "owner", replace: bool = False, seed: int = 0, purpose: str = "sample",
                 **options) -> None:
        self.options = dict(options)  # a user sampler's own parameters become attributes
        for key, value in options.items():
            setattr(self, key, value)
        if mode not in REMOTE_SAMPLING:
            raise ValueError(f"unknown remote sampling mode {mode!r}; allowed: {', '.join(REMOTE_SAMPLING)}")
        self.comm = comm
        self.topology = topology
        self.assignment = torch.as_tensor(assignment).long()
        self.fanouts = check_fanouts("fanouts", list(fanouts))
        self.mode = mode
        self.replace = bool(replace)
        self.purpose = purpose
        self.generator = torch.Generator().manual_seed(int(seed))
        n = topology.csr.num_nodes
        if self.assignment.numel() != n:
            raise ValueError(f"assignment has {self.assignment.numel()} entries but the topology {n} nodes")
        self._assoc = torch.full((n,), -1, dtype=torch.long)
        self._first = torch.full((n,), UNSET, dtype=torch.long)

    # ------------------------------------------------------------------------------------------- hops
    def choose(self, nodes: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """**The extension point**: pick in-neighbours of ``nodes`` (global ids whose in-edges this worker
        holds) for one hop with ``fanout`` (-1: all). Returns ``(slots, pos)``: positions into
        ``self.topology.csr.indices`` (the chosen edges) and, per chosen edge, the index into ``nodes`` of its
        destination. The owner of a node always makes its choice, so one rule serves both remote modes.
        Default: GraphSAGE's uniform choice of ``min(deg, fanout)`` (``sample_one_hop``)."""
        return sample_one_hop(self.topology.csr, nodes, fanout, self.replace, self.generator)

    def _local_hop(self, nodes: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        held = self.topology.held[nodes]
        if not bool(held.all()):
            bad = nodes[~held][:5].tolist()
            raise ValueError(f"rank {self.comm.rank}: the {self.mode} topology here holds no in-edges of nodes "
                             f"{bad}: they are outside the replicated halo (a seed or hop outside the region "
                             "it was built for)")
        slots, pos = self.choose(nodes, fanout)
        return self.topology.csr.indices[slots], pos

    def _exchange_v(self, blocks: list[Tensor], purpose: str) -> list[Tensor]:
        """All-to-all of variable-length 2-D long blocks: counts first (1x1 per peer), then the rows."""
        comm, me, p = self.comm, self.comm.rank, self.comm.world_size
        dev = comm.device
        one = [0 if q == me else 1 for q in range(p)]
        counts = comm.exchange([torch.tensor([[blocks[q].shape[0]]], device=dev) for q in range(p)], one, purpose)
        rows = [0 if q == me else int(counts[q].item()) for q in range(p)]
        got = comm.exchange([b.to(dev) for b in blocks], rows, purpose)
        return [g.cpu() for g in got]

    def _owner_hop(self, nodes: Tensor, fanout: int) -> tuple[Tensor, Tensor, int, int]:
        """One hop where remote nodes are sampled by their owners. Returns ``(src, pos, remote, requests)``."""
        me, p = self.comm.rank, self.comm.world_size
        owner = self.assignment[nodes]
        remote = torch.nonzero(owner != me).reshape(-1)
        remote = remote[torch.argsort(owner[remote], stable=True)]
        counts = torch.bincount(owner[remote], minlength=p).tolist()
        ask = list(torch.split(nodes[remote].reshape(-1, 1), counts))
        ask[me] = nodes.new_zeros((0, 1))
        asked = self._exchange_v(ask, f"{self.purpose}_req")
        answers = []
        for q in range(p):                               # serve the others first, in rank order
            if q == me:
                answers.append(nodes.new_zeros((0, 2)))
                continue
            src, pos = self._local_hop(asked[q].reshape(-1), fanout)
            answers.append(torch.stack([pos, src], 1))
        got = self._exchange_v(answers, f"{self.purpose}_resp")
        local = torch.nonzero(owner == me).reshape(-1)
        src_l, pos_l = self._local_hop(nodes[local], fanout)
        srcs, poss = [src_l], [local[pos_l]]
        offsets = [0, *torch.tensor(counts).cumsum(0).tolist()]
        for q in range(p):
            if q != me and got[q].numel():
                srcs.append(got[q][:, 1])
                poss.append(remote[offsets[q] + got[q][:, 0]])
        return (torch.cat(srcs), torch.cat(poss), int(remote.numel()),
                sum(1 for q in range(p) if q != me and counts[q] > 0))

    # ------------------------------------------------------------------------------------------ sample
    def sample(self, seeds: Tensor) -> DistSample:
        """Sample the ``L``-hop computation graph of distinct ``seeds`` (global ids; may be empty). In
        ``owner`` mode COLLECTIVE: every worker calls it the same number of times."""
        seeds = torch.as_tensor(seeds).long().reshape(-1)
        n = seeds.numel()
        assoc, first = self._assoc, self._first
        assoc[seeds] = torch.arange(n)
        if not bool((assoc[seeds] == torch.arange(n)).all()):
            assoc[seeds] = -1
            raise ValueError("seeds must be distinct node ids")
        n_ids, rows, cols, num_nodes, num_edges = [seeds], [], [], [n], []
        frontier, lo, cur = seeds, 0, n
        remote_nodes = requests = 0
        distributed = self.mode == "owner" and self.comm.world_size > 1
        try:
            for fanout in self.fanouts:
                if distributed:
                    src, pos, r, q = self._owner_hop(frontier, fanout)
                    remote_nodes += r
                    requests += q
                else:
                    src, pos = self._local_hop(frontier, fanout)
                new = add_new_nodes(src, assoc, first, cur)  # in order of first appearance
                rows.append(assoc[src])
                cols.append(pos + lo)
                n_ids.append(new)
                num_nodes.append(new.numel())
                num_edges.append(src.numel())
                lo, cur, frontier = cur, cur + new.numel(), new
            n_id = torch.cat(n_ids)
        finally:
            for t in n_ids:
                assoc[t] = -1
        edge_index = torch.stack([torch.cat(rows), torch.cat(cols)])
        nodes_cum = torch.tensor([0, *num_nodes]).cumsum(0).tolist()[1:]
        edges_cum = torch.tensor([0, *num_edges]).cumsum(0).tolist()[1:]
        blocks = [Block(n_id[:nodes_cum[h]], nodes_cum[h - 1], edge_index[:, :edges_cum[h - 1]])
                  for h in range(len(self.fanouts), 0, -1)]
        return DistSample(n_id, blocks, num_nodes, remote_nodes, requests)


#: The batch-generation axis of distributed mini-batch training: ``register_sampler("mine", MySampler)``.
SAMPLER_REGISTRY = Registry("sampler", base=DistNeighborSampler, classes_only=True, hint="override choose()",
                            builtins=(DistNeighborSampler,))
register_sampler = SAMPLER_REGISTRY.register
