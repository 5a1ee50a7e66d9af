"""Execution models (full-graph, mini-batch) and communication protocols, built on ``dist`` and ``partition``.

Full-graph, synchronous, partition-parallel training: :func:`train` / :func:`start` launch workers running
:func:`dgnn_lab.train.full_graph.worker_main`; each holds its owned nodes plus the 1-hop halo
(:class:`LocalGraph`), exchanges boundary rows per layer (:class:`HaloExchange`) and trains exactly the model
one process would (:mod:`dgnn_lab.train.reference` is that one process, in plain PyG).

Mini-batch (``mode="minibatch"``): :mod:`dgnn_lab.train.minibatch` samples per worker
(:mod:`dgnn_lab.sampling.distributed`), fetches remote features (:mod:`dgnn_lab.sampling.feature_store`) and
all-reduces gradients, optionally prefetching the next batch in a thread (:mod:`dgnn_lab.train.pipeline`).
"""

from dgnn_lab.train.api import ENTRY, make_config, start, train
from dgnn_lab.train.config import MODELS, MODES, TrainConfig
from dgnn_lab.train.halo import HaloExchange, halo_exchange
from dgnn_lab.train.local_graph import LocalGraph, global_in_degree
from dgnn_lab.train.minibatch import BlockGNN, MinibatchWorker
from dgnn_lab.train.models import DistGNN, plan_halo_bytes
from dgnn_lab.train.pipeline import Prefetcher

__all__ = ["ENTRY", "MODELS", "MODES", "BlockGNN", "DistGNN", "HaloExchange", "LocalGraph", "MinibatchWorker",
           "Prefetcher", "TrainConfig", "global_in_degree", "halo_exchange", "make_config", "plan_halo_bytes", "start",
           "train"]
