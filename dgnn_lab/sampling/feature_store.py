"""Distributed feature store: each worker holds the feature rows of the nodes it owns and fetches the rest.

In DistDGL-style mini-batch training the graph's features are partitioned like its nodes. A sampled batch
reads features of its input nodes, some owned by other workers; :meth:`DistFeatureStore.fetch` gets them:

1. rows this worker owns are read locally;
2. remote rows held by the :class:`~dgnn_lab.sampling.cache.FeatureCache` (if any) are read from it;
3. every other remote row is requested from its owner: an all-to-all of request *counts*, one of the ids
   (purpose ``f"{purpose}_req"``), and one of the rows (``f"{purpose}_resp"``), all through the instrumented
   communicator so every byte is counted per peer. With a ``codec`` (fp16, int8, ...) the rows travel
   encoded (``codec.wire_bytes`` each) and are decoded on arrival.

``fetch`` is collective: the owner has to answer, so every worker calls it once per step, even with nothing
to ask (an empty id list). Duplicate ids are fetched once. Counts come first because the communicator's
``exchange`` needs the receive sizes in advance (a fixed-size 1x1 block per peer).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgnn_lab.sampling.cache import FeatureCache

__all__ = ["STAT_KEYS", "DistFeatureStore"]

#: what :meth:`DistFeatureStore.take_stats` reports (plus ``remote_bytes_fetched`` and ``rows_served``)
STAT_KEYS = ("remote_requests", "remote_rows_fetched", "cache_hits", "cache_lookups", "local_rows")


class DistFeatureStore:
    """This worker's share of the node features, and the protocol to read anyone's.

    ``x_owned[i]`` is the feature row of global node ``owned_ids[i]``; ``assignment[v]`` the worker owning
    ``v`` (every worker passes the same assignment, and owns exactly the nodes assigned to it).
    """

    def __init__(self, comm, x_owned: Tensor, owned_ids: Tensor, assignment: Tensor,
                 cache: FeatureCache | None = None, purpose: str = "fetch", codec=None) -> None:
        assignment = torch.as_tensor(assignment).long().reshape(-1)
        owned_ids = torch.as_tensor(owned_ids).long().reshape(-1)
        if x_owned.dim() != 2 or x_owned.shape[0] != owned_ids.numel():
            raise ValueError(f"x_owned must be 2-D with one row per owned id; got shape {tuple(x_owned.shape)} "
                             f"for {owned_ids.numel()} owned ids")
        if owned_ids.numel() and bool((assignment[owned_ids] != comm.rank).any()):
            raise ValueError(f"owned_ids include nodes that assignment gives to other workers than rank {comm.rank}")
        n_assigned = int((assignment == comm.rank).sum())
        if n_assigned != owned_ids.numel():
            raise ValueError(f"rank {comm.rank} owns {n_assigned} nodes by assignment but owned_ids lists "
                             f"{owned_ids.numel()}; it could not answer requests for the others")
        if cache is not None and not isinstance(cache, FeatureCache):
            raise ValueError(f"cache must be a FeatureCache or None, got {type(cache).__name__}")
        self.comm = comm
        self.x_owned = x_owned
        self.owned_ids = owned_ids
        self.assignment = assignment
        self.cache = cache
        self.purpose = purpose
        #: wire format of the answered rows (a :class:`~dgnn_lab.protocols.codecs.Codec`; None: as stored)
        self.codec = codec
        self.num_nodes = int(assignment.numel())
        self.g2l = torch.full((self.num_nodes,), -1, dtype=torch.long)
        self.g2l[owned_ids] = torch.arange(owned_ids.numel())
        self._stats = self._zero()

    @staticmethod
    def _zero() -> dict:
        return {"remote_requests": 0, "remote_rows_fetched": 0, "cache_hits": 0, "cache_lookups": 0,
                "local_rows": 0, "remote_bytes_fetched": 0, "rows_served": 0}

    @property
    def dim(self) -> int:
        return int(self.x_owned.shape[1])

    def take_stats(self) -> dict:
        """Return and reset the counters since the last call: ``remote_requests`` (request messages sent, one
        per owner asked per fetch), ``remote_rows_fetched`` (rows received), ``remote_bytes_fetched`` (their
        bytes), ``cache_hits`` / ``cache_lookups`` (distinct remote ids found in / looked up in the cache),
        ``local_rows`` (distinct ids owned here) and ``rows_served`` (rows sent to other workers)."""
        out, self._stats = self._stats, self._zero()
        return out

    def fetch(self, ids: Tensor) -> Tensor:
        """Feature rows of global node ``ids`` (1-D), in that order. COLLECTIVE: every worker calls it once
        per step, possibly with no ids, so that owners can answer."""
        ids = torch.as_tensor(ids).long().reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_nodes):
            raise ValueError(f"fetch: node ids must be in [0, {self.num_nodes}), got min {int(ids.min())}, "
                             f"max {int(ids.max())}")
        comm, me, p = self.comm, self.comm.rank, self.comm.world_size
        uniq, inverse = torch.unique(ids, return_inverse=True)
        rows = torch.empty((uniq.numel(), self.dim), dtype=self.x_owned.dtype, device=self.x_owned.device)
        owner = self.assignment[uniq]
        local = owner == me
        rows[local] = self.x_owned[self.g2l[uniq[local]]]
        st = self._stats
        st["local_rows"] += int(local.sum())
        remote_pos = torch.nonzero(~local).reshape(-1)
        if self.cache is not None and remote_pos.numel():
            hit, cached = self.cache.lookup(uniq[remote_pos])
            rows[remote_pos[hit]] = cached.to(rows.dtype)
            st["cache_lookups"] += int(remote_pos.numel())
            st["cache_hits"] += int(hit.sum())
            remote_pos = remote_pos[~hit]
        # group the misses by owner (stable: ascending id within each owner)
        miss_owner = owner[remote_pos]
        order = torch.argsort(miss_owner, stable=True)
        remote_pos, miss_owner = remote_pos[order], miss_owner[order]
        counts = torch.bincount(miss_owner, minlength=p) if p > 1 else torch.zeros(1, dtype=torch.long)
        if p == 1:
            return rows[inverse]
        dev = comm.device
        req, resp = f"{self.purpose}_req", f"{self.purpose}_resp"
        one = [1 if q != me else 0 for q in range(p)]
        their = comm.exchange([counts[q].reshape(1, 1).to(dev) for q in range(p)], one, req)
        asked = [int(their[q].item()) if q != me else 0 for q in range(p)]
        miss_ids = uniq[remote_pos]
        send_ids = list(torch.split(miss_ids.reshape(-1, 1), counts.tolist()))
        send_ids[me] = miss_ids.new_zeros((0, 1))
        req_ids = comm.exchange([t.to(dev) for t in send_ids], asked, req)
        answers = []
        for q in range(p):
            want = req_ids[q].reshape(-1).cpu() if q != me else miss_ids[:0]
            loc = self.g2l[want]
            if bool((loc < 0).any()):
                raise ValueError(f"rank {q} asked rank {me} for nodes it does not own: "
                                 f"{want[loc < 0][:5].tolist()}; assignments differ between workers")
            answers.append(self.x_owned[loc].to(dev))
        codec = self.codec
        if codec is not None:
            answers = [codec.encode(a) for a in answers]
        got = comm.exchange(answers, counts.tolist(), resp)
        if codec is not None:
            got = [codec.decode(g, self.dim) for g in got]
        if remote_pos.numel():
            rows[remote_pos] = torch.cat([got[q] for q in range(p) if q != me]).to(rows.device, rows.dtype)
        n_fetched = int(remote_pos.numel())
        st["remote_requests"] += int(sum(1 for q in range(p) if q != me and counts[q] > 0))
        st["remote_rows_fetched"] += n_fetched
        st["remote_bytes_fetched"] += (codec.wire_bytes(n_fetched, self.dim) if codec is not None
                                       else n_fetched * self.dim * self.x_owned.element_size())
        st["rows_served"] += int(sum(asked))
        return rows[inverse]
