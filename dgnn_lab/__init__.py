"""dgnn_lab: a notebook-first lab for distributed graph neural network training.

The package mirrors the four technique families of distributed GNN training (Shao et al., ACM CSUR 2024):
``partition`` (data partition), ``sampling`` (batch generation), ``train`` (execution models and
communication protocols), with ``dist`` as the process/communication runtime underneath.
"""

__version__ = "0.1.0"
