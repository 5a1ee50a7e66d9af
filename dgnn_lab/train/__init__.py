"""Execution models (full-graph, mini-batch) and communication protocols, built on ``dist`` and ``partition``.

Full-graph, synchronous, partition-parallel training: :func:`train` / :func:`start` launch workers running
:func:`dgnn_lab.train.full_graph.worker_main`; each holds its owned nodes plus the 1-hop halo
(:class:`LocalGraph`), exchanges boundary rows per layer (:class:`HaloExchange`) and trains exactly the model
one process would (:mod:`dgnn_lab.train.reference` is that one process, in plain PyG).
"""

from dgnn_lab.train.api import ENTRY, make_config, start, train
from dgnn_lab.train.config import MODELS, MODES, TrainConfig
from dgnn_lab.train.halo import HaloExchange, halo_exchange
from dgnn_lab.train.local_graph import LocalGraph, global_in_degree
from dgnn_lab.train.models import DistGNN, plan_halo_bytes

__all__ = ["ENTRY", "MODELS", "MODES", "DistGNN", "HaloExchange", "LocalGraph", "TrainConfig", "global_in_degree",
           "halo_exchange", "make_config", "plan_halo_bytes", "start", "train"]
