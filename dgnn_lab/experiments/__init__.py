"""Orchestration on top of training: compare strategies (:mod:`~dgnn_lab.experiments.compare`), run several
variants in one launch and the mini-batch studies (:mod:`~dgnn_lab.experiments.studies`)."""
