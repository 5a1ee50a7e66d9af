"""A user's strategies defined in ``__main__``, as in a notebook cell: one per axis, each trained for real.

Run as ``python tests/scripts/user_axes.py AXIS OUT_DIR [CORA_ROOT]``; it trains on Cora with 2-3 workers using
the user's strategy for ``AXIS`` and writes ``OUT_DIR/out.json`` (the run directory and what the test
checks). Everything here lives in ``__main__``: spawned workers cannot import it, so it must reach them by
value over the launch channel.
"""

import json
import os
import sys
from pathlib import Path

import torch

from dgnn_lab.protocols.codecs import Codec, register_codec
from dgnn_lab.protocols.gradient import ParameterServer
from dgnn_lab.protocols.halo import BoundedStaleHalo, register_strategy
from dgnn_lab.sampling.cache import CachePolicy
from dgnn_lab.sampling.distributed import DistNeighborSampler
from dgnn_lab.train import train

CALLS = None  # the partitioner appends one line per call to this file


def by_parity(data, num_parts):
    """A user partitioner: node v to part v mod k (writes one line per call)."""
    with open(CALLS, "a") as f:
        f.write(f"{os.getpid()}\n")
    return torch.arange(data.num_nodes) % num_parts


class FirstNeighbours(DistNeighborSampler):
    """A user sampler with a parameter of its own: at most ``keep`` in-neighbours a hop, the first ones."""

    keep = 1

    def choose(self, nodes, fanout):
        csr = self.topology.csr
        start, deg = csr.indptr[nodes], csr.indptr[nodes + 1] - csr.indptr[nodes]
        k = deg.clamp(max=self.keep)
        pos = torch.repeat_interleave(torch.arange(nodes.numel()), k)
        first = torch.repeat_interleave(torch.cumsum(k, 0) - k, k)
        slots = torch.repeat_interleave(start, k) + (torch.arange(int(k.sum())) - first)
        return slots, pos


class LowestIds(CachePolicy):
    """A user cache policy: keep the remote nodes with the lowest ids."""

    name = "lowest-ids"

    def score(self, *, candidate_ids, degree, presample_counts, num_nodes):
        return -torch.arange(num_nodes, dtype=torch.float64)


class EveryK(BoundedStaleHalo):
    """A user staleness rule: refresh each boundary block every k-th epoch, whatever it did."""

    k = 3

    def should_send(self, layer, peer, age, change):
        return age >= self.k


class LooseServer(ParameterServer):
    """A user gradient-synchronisation rule: a worker may run ``slack`` rounds ahead, whatever the config's
    staleness says."""

    slack = 2

    def required_version(self, clock):
        return clock + 1 - self.slack


class BF16(Codec):
    """A user codec: bfloat16 rows, 2 bytes a value."""

    name = "bf16"

    def encode(self, x):
        return x.to(torch.bfloat16)

    def decode(self, wire, width):
        return wire.to(torch.float32)

    def row_bytes(self, width):
        return 2 * width


def main() -> None:
    global CALLS
    axis, out = sys.argv[1], Path(sys.argv[2])
    root = sys.argv[3] if len(sys.argv) > 3 else None
    common = {"dataset": "cora", "dataset_args": {"root": root} if root else {}, "workers": 2, "epochs": 6,
              "eval_every": 3, "run_dir": str(out / "run"), "timeout_s": 120}
    CALLS = str(out / "calls.txt")
    if axis == "partition":
        kw = {"partition": by_parity}
    elif axis == "sampler":
        kw = {"mode": "minibatch", "model": "sage", "sampler": FirstNeighbours, "batch_size": 64}
    elif axis == "cache":
        kw = {"mode": "minibatch", "model": "sage", "cache": LowestIds, "cache_size": 0.3, "batch_size": 64,
              "seed_split": "chunk"}
    elif axis == "halo":
        register_strategy("every-k", EveryK)
        kw = {"halo": {"name": "every-k", "k": 2}, "staleness": 4, "dropout": 0.0}
    elif axis == "grad_sync":
        kw = {"grad_sync": LooseServer, "staleness": 0, "straggler": [1, 3.0], "workers": 3}
    elif axis == "codec":
        register_codec("bf16", BF16)
        kw = {"codec": "bf16"}
    else:
        raise SystemExit(f"unknown axis {axis!r}")
    result = train(**{**common, **kw})
    (out / "out.json").write_text(json.dumps({"pid": os.getpid(), "run_dir": str(result.run_dir),
                                              "status": result.status, "summary": result.summary()}))


if __name__ == "__main__":
    main()
