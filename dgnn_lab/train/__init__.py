"""The front door of training: :func:`train` / :func:`start` and the :class:`TrainConfig` they take.

What runs lives elsewhere, one package per axis of the survey's taxonomy:

* :mod:`dgnn_lab.execution`: the worker loop and the execution models (full-graph, mini-batch, local SGD);
* :mod:`dgnn_lab.protocols`: halo protocols, gradient synchronisation, codecs, stragglers;
* :mod:`dgnn_lab.partition`, :mod:`dgnn_lab.sampling`: partitioners, samplers and cache policies;
* :mod:`dgnn_lab.experiments`: orchestration (compare strategies, variants in one launch, studies).
"""

from dgnn_lab.execution.models import DistGNN, plan_halo_bytes
from dgnn_lab.partition.local_graph import LocalGraph, global_in_degree
from dgnn_lab.protocols.exchange import HaloExchange, halo_exchange
from dgnn_lab.train.api import make_config, start, train
from dgnn_lab.train.config import MODELS, MODES, TrainConfig

__all__ = ["MODELS", "MODES", "DistGNN", "HaloExchange", "LocalGraph", "TrainConfig", "global_in_degree",
           "halo_exchange", "make_config", "plan_halo_bytes", "start", "train"]
