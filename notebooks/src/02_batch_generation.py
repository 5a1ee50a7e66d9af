# %% [markdown] id="c00"
# # 02 · Batch generation: node-wise, layer-wise and subgraph sampling
#
# Full-graph training touches every node and edge each epoch. **Mini-batch** training instead picks a batch of
# *seed* nodes and builds just enough graph around them to compute their outputs. How that graph is built is the
# *batch generation* family of the survey (Shao et al., §4), with three kinds of samplers:
#
# | kind | idea | lab class | paper |
# |---|---|---|---|
# | node-wise | each node keeps `fanout` random in-neighbours, hop by hop | `NeighborLoader` | GraphSAGE |
# | layer-wise | each *layer* draws `s` nodes by importance, shared by all its outputs | `LayerWiseLoader` (`fastgcn`, `ladies`) | FastGCN, LADIES |
# | subgraph | run the whole GNN on a sampled subgraph | `ClusterGCNLoader`, `GraphSAINTRandomWalkSampler` | Cluster-GCN, GraphSAINT |
#
# Every sampler trades **cost** (how many nodes and edges a batch reads) against **estimator quality** (how far a
# layer's sampled aggregation is from the full-graph one). This notebook measures both, single-process; notebook 05
# distributes the same samplers over workers.

# %% id="c01"
import pandas as pd
import torch
from IPython.display import display

from dgnn_lab import datasets
from dgnn_lab.course import check_answered, check_close, check_true
from dgnn_lab.sampling import ClusterGCNLoader, GraphSAINTRandomWalkSampler, LayerWiseLoader, NeighborLoader, to_blocks
from dgnn_lab.sampling.experiments import compare_samplers, neighbourhood_growth, train_node_classifier
from dgnn_lab.settings import smoke_mode
from dgnn_lab.viz.sampling import (
    computation_tree,
    computation_tree_figure,
    full_vs_minibatch_figure,
    neighbourhood_growth_figure,
    sampler_comparison_figure,
)

SMOKE = smoke_mode()
torch.set_num_threads(1)   # sampling is many small memory-bound ops: one thread is fastest and steadiest here
# Cora, or (only when its files cannot be had) a contextual SBM; `choose` prints which, and why. Smoke mode
# (the tests) never downloads and its stand-in is small: 1,500 nodes instead of 10,000.
frag = datasets.choose("cora", {"dataset": "csbm", "dataset_args": {
    "num_nodes": 1_500 if SMOKE else 10_000, "avg_degree": 10, "num_features": 32}})
data = datasets.load(frag["dataset"], **frag["dataset_args"])
MB_BATCH = 64  # seeds per step in the full vs mini-batch section
print(data)

# %% [markdown] id="c02"
# ## Node-wise sampling with `NeighborLoader`
#
# The interface is PyG's: `num_neighbors` lists one fanout per layer (hop 1 first; `-1` = all neighbours),
# `input_nodes` picks the seeds (a mask or ids), and every batch is a subgraph `Data` whose **first `batch_size`
# nodes are the seeds**. `n_id` / `e_id` keep the global ids of the sampled nodes and edges, and
# `num_sampled_nodes` / `num_sampled_edges` say how many each hop added.

# %% id="c03"
loader = NeighborLoader(data, num_neighbors=[10, 5], batch_size=64, input_nodes=data.train_mask,
                        shuffle=True, seed=0)
batch = next(iter(loader))
print(batch)
print("seeds are the first batch_size nodes:", bool((batch.n_id[:batch.batch_size] ==
                                                     loader.input_nodes[batch.input_id]).all()))
print("nodes added per hop:", batch.num_sampled_nodes, " edges sampled per hop:", batch.num_sampled_edges)

# %% [markdown] id="c04"
# A GNN can run on the whole subgraph (`model(batch.x, batch.edge_index)[:batch.batch_size]`) or layer by layer
# on **blocks** (DGL's term): each block is a bipartite graph whose dst nodes are a prefix of its src nodes, so a
# layer shrinks the node set towards the seeds. Both give the same seed outputs; blocks skip the useless work.

# %% id="c05"
for i, b in enumerate(to_blocks(batch)):
    print(f"layer {i}: {b}")

# %% [markdown] id="nb02-ex1-md"
# ### Exercise 1 · The most nodes a batch can hold
#
# Without looking at any batch: `loader` draws batches of 64 seeds with `num_neighbors=[10, 5]`. What is the
# largest number of nodes one batch can hold, seeds included, whatever the graph? The check compares your
# bound with the lab's worst case (`neighbourhood_growth(...)["bound"]`, below) and measures every batch of an
# epoch against it.
#
# <details><summary>Hint</summary>
#
# Hop 1 keeps at most 10 in-neighbours of each of the 64 seeds; hop 2 at most 5 of each node hop 1 added. In
# the worst case no node is reached twice, so nothing is shared: add up the seeds and both hops.
# </details>

# %% id="nb02-ex1" exercise="answer"
answer_1 = None  # the most nodes one batch of 64 seeds with fanouts [10, 5] can hold, seeds included
### BEGIN SOLUTION
answer_1 = 64 * (1 + 10 + 10 * 5)   # seeds, hop 1, hop 2; overlap can only make a batch smaller
### END SOLUTION

# %% id="nb02-ex1-check" exercise="check"
bound = neighbourhood_growth(data, loader.input_nodes[:64], num_neighbors=[10, 5], repeats=1)["bound"].iloc[-1]
check_close(answer_1, bound, what="most nodes a batch of 64 seeds with fanouts [10, 5] can hold", unit="nodes",
            why="each seed adds at most 10 nodes at hop 1 and each of those at most 5 at hop 2: B (1 + 10 + 10 x 5)")
sizes = [b.num_nodes for b in loader]
check_true(max(sizes) <= answer_1, what="every batch of an epoch within your bound",
           right=f"{len(sizes)} batches, the largest {max(sizes):,} nodes ({max(sizes) / answer_1:.0%} of the bound: "
                 "neighbours shared by several seeds, and nodes with fewer neighbours than the fanout, keep it lower)",
           wrong=f"a batch held {max(sizes):,} nodes, more than {answer_1:,}")

# %% [markdown] id="c06"
# ### One seed's computation tree
#
# What the GNN actually computes for one seed: its sampled neighbours (hop 1), their sampled neighbours (hop 2).
# A node reached along two paths is computed twice in the tree (diamonds) but fetched once per batch.

# %% id="c07"
computation_tree_figure(batch, seed_index=0).show()

# %% [markdown] id="c08"
# ## Neighbourhood explosion
#
# Without sampling, an `L`-layer GNN reads the whole `L`-hop neighbourhood of its seeds, which soon covers most
# of the graph. Fanouts cap the growth at `B·∏fanouts` nodes, and in practice overlap keeps it below that.

# %% id="c09"
seeds = loader.input_nodes[:32]
growth = neighbourhood_growth(data, seeds, num_neighbors=[10, 5, 5], repeats=3)
display(growth)
neighbourhood_growth_figure(growth).show()

# %% [markdown] id="c10"
# ## The samplers side by side
#
# `compare_samplers` draws a few batches from each sampler and measures, per batch, the **output nodes** (whose
# loss the batch computes), the **input nodes** (whose features it reads) and the **relative error** of the first
# layer's aggregation at the outputs against the exact full-graph value that sampler estimates:
#
# * node-wise: the mean over sampled neighbours estimates the neighbour mean (unbiased);
# * FastGCN/LADIES: $\sum_u \hat A_{vu}\,\frac{c_u}{s\,q_u} h_u$ estimates $(\hat A h)_v$ (unbiased; LADIES'
#   layer-dependent $q$ wastes no draws, FastGCN's global $q$ mostly misses the batch);
# * Cluster-GCN: the aggregation inside the chosen clusters (biased: cut edges are simply lost; METIS clusters
#   lose few of them);
# * GraphSAINT: the aggregation inside the random-walk subgraph with `edge_norm` $=1/\alpha_{uv}$ (unbiased given
#   $v$ is sampled).
#
# Unbiasedness is checked by the lab's tests (`tests/test_sampling_estimators.py`); here we look at the spread.

# %% id="c11"
from dgnn_lab.partition import partition

num_clusters = 8 if SMOKE else 32
plan = partition(data, num_clusters, "metis")
table = compare_samplers(data, batch_size=64, num_neighbors=[10, 5], layer_size=256, clusters=plan,
                         clusters_per_batch=max(1, num_clusters // 8), walk_roots=100, walk_length=2,
                         num_batches=3 if SMOKE else 5)
display(table.round(3))
sampler_comparison_figure(table).show()

# %% [markdown] id="c12"
# ### Where does a computation tree live?
#
# Colour the same seed's tree by the METIS part that owns each node: in a distributed run with one part per
# worker, every node outside the seed's part is a remote feature fetch (notebook 05 measures them).

# %% id="c13"
seed_part = plan.assignment[batch.n_id[0]]
where = (plan.assignment != seed_part).long()          # 0: the seed's own part, 1: another part
computation_tree_figure(batch, seed_index=0, groups=where, group_names=["seed's part", "other parts"]).show()
tree = computation_tree(batch, seed_index=0)
print(f"{float(where[torch.tensor(tree.global_id.values)].float().mean()):.0%} of this tree's nodes lie outside "
      f"the seed's part ({num_clusters} METIS parts)")

# %% [markdown] id="c14"
# ## Full-batch vs mini-batch
#
# The same 2-layer GraphSAGE, trained single-process: one full-graph step per epoch, or one step per mini-batch of
# training seeds (`MB_BATCH = 64` per batch) with fanouts `[10, 5]`. Mini-batches take several cheaper steps per
# epoch, so they need fewer epochs; evaluation is full-graph for both. Times are wall-clock on this machine:
# compare the accuracy reached per second of training, not per epoch.

# %% [markdown] id="nb02-ex2-md"
# ### Exercise 2 · Steps per epoch
#
# Before the next cell trains: how many optimizer steps does one mini-batch epoch take? (The loader walks over
# all training nodes once per epoch, `MB_BATCH` seeds per step; it keeps the last, smaller batch.) The check
# compares your number with the `steps` the run counted in each epoch.
#
# <details><summary>Hint</summary>
#
# `int(data.train_mask.sum())` training nodes, cut into batches of `MB_BATCH`: round up, since the last batch
# is kept even when it is not full (`math.ceil`, or `-(-a // b)`).
# </details>

# %% id="nb02-ex2" exercise="answer"
answer_2 = None  # optimizer steps in one mini-batch epoch
### BEGIN SOLUTION
answer_2 = -(-int(data.train_mask.sum()) // MB_BATCH)   # ceil(training nodes / batch size)
### END SOLUTION

# %% id="c15"
history = pd.concat([
    train_node_classifier(data, mode="full", epochs=3 if SMOKE else 60, seed=0),
    train_node_classifier(data, mode="minibatch", num_neighbors=[10, 5], batch_size=MB_BATCH,
                          epochs=2 if SMOKE else 6, seed=0),
])
summary = history.groupby("mode").agg(steps=("steps", "sum"), train_s=("train_s", "sum"),
                                      final_test_acc=("test_acc", "last"), best_val_acc=("val_acc", "max"))
display(summary.round(3))
full_vs_minibatch_figure(history).show()

# %% id="nb02-ex2-check" exercise="check"
steps = history.loc[history["mode"] == "minibatch", "steps"]
check_close(answer_2, int(steps.iloc[0]), what="optimizer steps per mini-batch epoch", unit="steps",
            why=f"{int(data.train_mask.sum())} training nodes in batches of {MB_BATCH}, the last one partial: "
                "ceil(training nodes / batch size), the same every epoch")
check_true(bool((steps == steps.iloc[0]).all()), what="the same every epoch", right=f"{len(steps)} epochs alike",
           wrong=f"steps per epoch varied: {steps.tolist()}")

# %% [markdown] id="c16"
# ## Other loaders, same shape
#
# Layer-wise batches carry their weighted blocks (`batch.blocks`, input layer first); subgraph samplers return the
# subgraph itself, with GraphSAINT's `node_norm` (loss weights) and `edge_norm` (aggregation weights).

# %% id="c17"
lw = next(iter(LayerWiseLoader(data, num_samples=[128, 128], batch_size=32, method="ladies", seed=0)))
print("LADIES:", lw.batch_size, "seeds,", [str(b) for b in to_blocks(lw)])
cl = next(iter(ClusterGCNLoader(data, plan, batch_size=2, seed=0)))
print("Cluster-GCN:", cl.num_nodes, "nodes from clusters", cl.clusters.tolist())
saint = GraphSAINTRandomWalkSampler(data, batch_size=50, walk_length=2, num_steps=1, sample_coverage=5 if SMOKE else 50)
sg = next(iter(saint))
print("GraphSAINT:", sg.num_nodes, "nodes,", sg.edge_index.size(1), "edges, edge_norm range",
      f"{float(sg.edge_norm.min()):.2f}..{float(sg.edge_norm.max()):.2f} from {saint.num_presamples} pre-samples")


# %% [markdown] id="nb02-ex3-md"
# ### Exercise 3 · Check the fanout rule yourself
#
# Without replacement, hop 1 keeps exactly `min(deg(v), fanout)` in-neighbours of every seed `v`. Complete
# `sampled_per_seed(batch)` so it returns, for each of the batch's seeds, how many hop-1 edges were sampled into
# it. The check draws a batch of 16 seeds with fanouts `[10, 5]` and compares your counts with `min(deg, 10)`
# from the graph, seed by seed.
#
# <details><summary>Hint</summary>
#
# The first `batch.num_sampled_edges[0]` edges of `batch.edge_index` are hop 1, and `batch.edge_index[1]` holds
# their local destinations; the seeds are local ids `0 .. batch.batch_size - 1`. Count how often each seed appears
# as a destination: `torch.bincount(..., minlength=batch.batch_size)`.
# </details>

# %% id="nb02-ex3" exercise="answer"
def sampled_per_seed(batch):
    counts = None  # your code: a LongTensor of length batch.batch_size
    ### BEGIN SOLUTION
    hop1 = batch.edge_index[1, :batch.num_sampled_edges[0]]
    counts = torch.bincount(hop1, minlength=batch.batch_size)
    ### END SOLUTION
    return counts


# %% id="nb02-ex3-check" exercise="check"
from dgnn_lab.graph import to_csr

ex_batch = next(iter(NeighborLoader(data, num_neighbors=[10, 5], batch_size=16, seed=1)))
counts = check_answered(sampled_per_seed(ex_batch), what="sampled_per_seed(batch) returns None")
expected = to_csr(data.edge_index, data.num_nodes).degree()[ex_batch.n_id[:ex_batch.batch_size]].clamp(max=10)
counts = torch.as_tensor(counts).long()
check_true(counts.shape == expected.shape and torch.equal(counts, expected), what="hop-1 edges per seed",
           right=f"{expected.tolist()}: every seed kept min(deg, 10) neighbours",
           wrong=f"you counted {counts.tolist()}, the batch holds {expected.tolist()} = min(deg, 10) per seed; "
                 "count hop-1 edges only (the first num_sampled_edges[0]) by their destination")

# %% [markdown] id="c21"
# **Going further.** Try `replace=True` (every seed with neighbours gets exactly `fanout` draws), `[-1, -1]`
# (full neighbourhoods: mini-batch training becomes exact), and the Cluster-GCN row with `clusters` from a
# `"random"` partition instead of METIS: what happens to its error, and why?
