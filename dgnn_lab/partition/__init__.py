"""Data partition: edge-cut and vertex-cut partitioners, the ``PartitionPlan`` and its statistics.

>>> plan = partition(data, 4, "metis", hops=2)          # or "random", "range", "ldg", "fennel", "hdrf", ...
>>> partition_stats(plan, data).summary()
"""

from dgnn_lab.partition.api import (
    BALANCE_KEYS,
    DESCRIPTIONS,
    EDGE_CUT_METHODS,
    METHOD_OPTIONS,
    METHODS,
    MODEL_METHODS,
    PARTITIONER_REGISTRY,
    parse_balance,
    partition,
    partition_methods,
    register_partitioner,
)
from dgnn_lab.partition.io import load_assignment, load_part, load_plan, read_book, save_plan
from dgnn_lab.partition.plan import PartitionPlan, PartPlan, build_plan
from dgnn_lab.partition.stats import (
    CAUSES,
    PartitionStats,
    edge_cut,
    halo_growth,
    imbalance_causes,
    partition_stats,
    plan_work,
    receptive_field_error,
)
from dgnn_lab.partition.vertex_cut import VERTEX_CUT_METHODS, build_vertex_cut_plan

__all__ = [
    "BALANCE_KEYS", "DESCRIPTIONS", "EDGE_CUT_METHODS", "METHODS", "METHOD_OPTIONS", "MODEL_METHODS",
    "VERTEX_CUT_METHODS",
    "PartPlan", "PartitionPlan", "PartitionStats", "build_plan", "build_vertex_cut_plan", "edge_cut",
    "PARTITIONER_REGISTRY", "halo_growth", "load_assignment", "load_part", "partition_methods", "read_book",
    "register_partitioner", "load_plan", "parse_balance", "partition", "partition_stats", "receptive_field_error",
    "save_plan", "CAUSES", "imbalance_causes", "plan_work",
]
