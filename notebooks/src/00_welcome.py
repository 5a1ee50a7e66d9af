# %% [markdown] id="c00"
# # Welcome to dgnn_lab
#
# A lab for **distributed graph neural network training**: you partition a graph, start several real worker
# processes that talk through `torch.distributed` (gloo on CPU, NCCL on GPUs), and *measure* what happens:
# bytes moved between workers, time spent computing, communicating and waiting, and accuracy.
#
# The notebooks follow the taxonomy of Shao et al., *Distributed Graph Neural Network Training: A Survey*
# (ACM Computing Surveys, 2024). Every technique family answers one or more of three problems:
#
# | challenge | what we measure |
# |---|---|
# | **communication volume** | bytes per worker pair and purpose, counted at the communicator |
# | **accuracy loss** | test accuracy against single-process training on the same data and seed |
# | **workload imbalance** | work (edges aggregated, counted), CPU and wall time per worker (max / mean) |

# %% [markdown] id="c01"
# ## The map
#
# | technique family (survey section) | notebook | what you will do |
# |---|---|---|
# | **Data partition** | `01_data_partition` | edge-cut vs vertex-cut, METIS vs random vs streaming, halo nodes, balance |
# | **Batch generation** | `02_batch_generation` | node-, layer- and subgraph-wise sampling; full-batch vs mini-batch |
# | **Execution model: full-graph** | `03_full_graph_training` | real partition-parallel training with a live dashboard |
# | **Communication protocol: sync vs async** | `04_sync_vs_async` | staleness, PipeGCN, parameter server, stragglers |
# | **Execution model: mini-batch** | `05_minibatch_training` | sample / fetch / train pipelines, feature caching |
# | **Communication protocol: less traffic** | `06_communication` | boundary sampling, quantisation, communication-free training |
# | **Workload imbalance** | `07_workload_imbalance` | work counted exactly, causes apart; degree weights, the volume partitioner, vertex-cut training, a fitted cost model |
#
# Everything a notebook does is a call into the `dgnn_lab` package, so the same experiment runs from the terminal (`dgnn-lab ...`) or a script.

# %% [markdown] id="c02"
# ## Is this machine ready?
#
# `dgnn-lab doctor` (or the cell below) checks Python, PyTorch and its distributed backends, the graph
# libraries, the widget front-ends JupyterLab needs, and that a loopback port is free for the workers to meet on.
# `warn` marks something optional (NCCL needs GPUs; without them the lab uses gloo on the CPU).

# %% id="c03"
from dgnn_lab.doctor import healthy, run_checks

checks = run_checks()
print("ready" if healthy(checks) else "something required is missing: see the 'fix' column")
checks  # a table whose long cells wrap (nothing cut off)

# %% [markdown] id="c04"
# ## The datasets
#
# Small real graphs (Cora, CiteSeer) when their files are on disk, and synthetic graphs generated on the fly at
# any size: a *contextual stochastic block model* (`csbm`), where you choose how many edges stay inside a class
# (homophily) and how strongly features reveal the class, and a `powerlaw` graph whose hubs make workers unequal.

# %% id="c05"
import pandas as pd

from dgnn_lab import datasets

pd.DataFrame([d.as_dict() for d in datasets.list_datasets()]).set_index("name")

# %% [markdown] id="c06"
# ## A first look at a graph
#
# Zachary's karate club: 34 members of a club that split in two. Colour is the club each member joined; hover
# over a node for its degree. A GNN predicts such labels from a node's neighbourhood, and in distributed training
# that neighbourhood is split across workers: the subject of the next notebooks.

# %% id="c07"
from dgnn_lab.viz.overview import small_graph_figure

karate = datasets.load("karate")
small_graph_figure(karate, title="Karate club: colour = the club each member joined")

# %% [markdown] id="c08"
# ## Seeds and smoke mode
#
# Every generator, partitioner and training run takes a `seed`, and the same seed gives the same numbers, so a
# lab's results can be checked. Change the seed and you get another graph from the same distribution:

# %% id="c09"
import torch

from dgnn_lab.settings import smoke_mode

n = 500 if smoke_mode() else 5000
a = datasets.load("csbm", num_nodes=n, homophily=0.7, seed=1)
b = datasets.load("csbm", num_nodes=n, homophily=0.7, seed=1)
c = datasets.load("csbm", num_nodes=n, homophily=0.7, seed=2)


def same_edges(u, v):
    return u.edge_index.shape == v.edge_index.shape and torch.equal(u.edge_index, v.edge_index)


homophily = (a.y[a.edge_index[0]] == a.y[a.edge_index[1]]).float().mean().item()
print(f"seed 1 twice -> identical graph: {same_edges(a, b)}; seed 2 -> identical: {same_edges(a, c)}")
print(f"asked for homophily 0.7, got {homophily:.3f} over {a.edge_index.size(1):,} directed edges")

# %% [markdown] id="c10"
# **Smoke mode.** With the environment variable `DGNN_LAB_SMOKE=1`, every notebook runs its smallest
# configuration (tiny graphs, a few epochs). The test suite runs every notebook that way to check that it works
# end to end; you normally leave it off. It is currently:

# %% id="c11"
print("smoke mode is", "ON (smallest configurations)" if smoke_mode() else "off (full-size lab)")

# %% [markdown] id="c12"
# Next: **`01_data_partition.ipynb`**: how a graph is split across workers, and what each split costs.
