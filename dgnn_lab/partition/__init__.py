"""Data partition: edge-cut and vertex-cut partitioners, the ``PartitionPlan`` and its statistics."""

from dgnn_lab.partition.plan import PartitionPlan, PartPlan, build_plan

__all__ = ["PartPlan", "PartitionPlan", "build_plan"]
