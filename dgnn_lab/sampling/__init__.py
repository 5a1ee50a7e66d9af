"""Batch generation: node-, layer- and subgraph-wise samplers and feature caches."""
