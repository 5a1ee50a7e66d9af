"""Execution models: how a worker turns its share of the graph into gradient steps (full-graph, mini-batch,
local SGD), all run by one worker loop."""
