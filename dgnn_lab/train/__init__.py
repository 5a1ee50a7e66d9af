"""Execution models (full-graph, mini-batch) and communication protocols, built on ``dist`` and ``partition``."""
