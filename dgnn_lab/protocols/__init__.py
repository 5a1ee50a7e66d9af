"""Communication protocols: what crosses the wire between workers, when, and in what format.

* :mod:`~dgnn_lab.protocols.exchange`: the exact halo exchange of one full-graph layer (the mechanism);
* :mod:`~dgnn_lab.protocols.halo`: halo protocols (sync, PipeGCN, Sancus, BNS): which rows travel, how old;
* :mod:`~dgnn_lab.protocols.gradient`: gradient synchronisation (all-reduce, parameter server, averaging);
* :mod:`~dgnn_lab.protocols.codecs`: wire formats of rows and gradients (fp32, fp16, int8);
* :mod:`~dgnn_lab.protocols.straggler`: a simulated slow worker.
"""
