# %% [markdown] id="6e1078fe"
# # 01 · Data partition: who owns which node, and what it costs
#
# Before any distributed GNN step runs, the graph is cut into **parts**, one per worker. Everything later (how many
# rows move per layer, how long each worker computes, how much memory it holds) follows from this choice. The
# survey calls this family **GNN data partition**; here you will
#
# 1. see the two ways of cutting a graph: **edge-cut** (each node has one owner) and **vertex-cut** (each edge has one
#    owner, nodes are replicated);
# 2. compare METIS, random, range and streaming partitioners (LDG, Fennel) on Cora and on a synthetic SBM;
# 3. learn what **halo nodes** are, and why a 2-layer GNN needs the **2-hop** neighbourhood;
# 4. watch training nodes pile up on some workers when balance constraints are off;
# 5. measure what partitioning itself costs;
# 6. write your own partitioner and beat random (exercises with automatic checks).
#
# Every number below comes from `dgnn_lab.partition` (`partition`, `partition_stats`): the same code the CLI
# (`dgnn-lab partition ...`) and the later notebooks use.

# %% id="fcb28e6c"

import pandas as pd
import torch

from dgnn_lab import datasets
from dgnn_lab.partition import METHODS, partition, partition_stats, receptive_field_error
from dgnn_lab.settings import smoke_mode
from dgnn_lab.viz.graph import partition_graph_figure
from dgnn_lab.viz.partition import balance_figure, boundary_heatmap, halo_growth_figure, method_comparison_figure

SMOKE = smoke_mode()          # DGNN_LAB_SMOKE=1: the smallest sizes, so the tests run this notebook in seconds
PARTS = 4

have_cora = any(d.name == "cora" and d.available for d in datasets.list_datasets())
if have_cora:
    cora = datasets.load("cora")
else:
    print("Cora's files are not on disk (see datasets/README.md), so a csbm graph of Cora's size stands in for it.")
    cora = datasets.load("csbm", num_nodes=2708, avg_degree=3.9, num_classes=7, seed=0)
    # Cora's public split takes 20 training nodes per class; mimic a clustered split of 140 training nodes
    cora.train_mask = torch.zeros(cora.num_nodes, dtype=torch.bool)
    cora.train_mask[(cora.y == 0).nonzero().flatten()[:140]] = True
csbm = datasets.load("csbm", num_nodes=2_000 if SMOKE else 20_000, avg_degree=10.0, seed=0)
print(f"'cora': {cora.num_nodes:,} nodes, {cora.edge_index.size(1):,} directed edges, "
      f"{int(cora.train_mask.sum())} training nodes")
print(f"csbm:   {csbm.num_nodes:,} nodes, {csbm.edge_index.size(1):,} directed edges")

# %% [markdown] id="80db9e18"
# ## 1. Edge-cut: every node has one owner
#
# Zachary's karate club, cut in two by METIS. Each colour is a part (a worker). Red edges are **cut**: their ends live
# on different workers, so a message along them crosses the network. The ringed nodes are part 0's **halo**: nodes
# it does not own but must read, because they send messages into its owned nodes. Hover over a node to see its role.

# %% id="e9ec7ce7"
karate = datasets.load("karate")
plan = partition(karate, 2, "metis", hops=2)
partition_graph_figure(plan, karate, part=0)

# %% [markdown] id="77878e37"
# The `PartitionPlan` holds exactly what a worker needs (definitions in `dgnn_lab/partition/plan.py`):
#
# * `owned`: the nodes assigned to the part;
# * `halo_rings[L-1]`: non-owned nodes whose shortest path *into* the owned set has length `L`;
# * `boundary[q]`: owned nodes that are in part `q`'s 1-hop halo: **exactly the rows one synchronous layer sends to `q`**;
# * local ids: owned nodes first, then ring 1, ring 2, ...; local edges: every edge whose destination is owned.

# %% id="8c79edfa"
for part in plan.parts:
    print(part)
print("part 0 sends to part 1 each layer:", plan.boundary(0, 1).tolist())
print("part 1 receives them as its halo rows:", plan.parts[1].recv_from(0, plan).tolist())
print(partition_stats(plan, karate).summary())

# %% [markdown] id="1df49c07"
# ## 2. Vertex-cut: every edge has one owner
#
# Power-law graphs have hubs whose edges no edge-cut can keep together. A **vertex-cut** (PowerGraph) assigns
# *edges* to parts instead; a node then lives on every part that holds one of its edges: one copy is the
# **master**, the others are **mirrors**, and every layer the mirrors' partial sums go to the master and the result
# comes back. The price is the **replication factor** (copies per node), not the edge cut, which is zero.
# Below: HDRF, a streaming vertex-cut that replicates high-degree nodes first. Coloured edges belong to part 0,
# ringed nodes are its mirrors.

# %% id="c0bd64e9"
vplan = partition(karate, 2, "hdrf")
print(partition_stats(vplan, karate).summary())
partition_graph_figure(vplan, karate, part=0)

# %% [markdown] id="126f859c"
# ## 3. METIS vs random vs streaming
#
# | method | idea |
# |---|---|
# | `random` | edge-cut: each node to a random part (hash); the baseline |
# | `range` | edge-cut: contiguous blocks of node ids (CAGNET, Sancus) |
# | `metis` | edge-cut: METIS k-way multilevel min-cut (DistDGL); supports balance= |
# | `ldg` | edge-cut: one-pass streaming, linear deterministic greedy |
# | `fennel` | edge-cut: one-pass streaming, Fennel's modularity-like objective |
# | `edge-random` | vertex-cut: each edge to a random part (PowerGraph's random) |
# | `dbh` | vertex-cut: degree-based hashing (edge follows its lower-degree end) |
# | `hdrf` | vertex-cut: streaming, high-degree (nodes) replicated first |
#
# We partition both graphs with every method into 4 parts and compare the edge cut (fraction of undirected edges
# whose ends are on different parts), the communication volume (rows one synchronous layer moves), the
# replication factor and the balance (max/mean; 1.0 is perfect).

# %% id="a2818735"
rows, cora_stats = [], []
for name, g in [("cora", cora), ("csbm", csbm)]:
    for method in METHODS:
        st = partition_stats(partition(g, PARTS, method), g)
        if name == "cora":
            cora_stats.append(st)
        rows.append({"graph": name, "method": method, "kind": st.kind, "edge cut": st.edge_cut_fraction,
                     "comm volume": st.comm_volume, "replication": st.replication_factor,
                     "node balance": st.balance["nodes"], "edge balance": st.balance["edges"],
                     "ms": 1000 * st.seconds})
table = pd.DataFrame(rows)
table.style.format({"edge cut": "{:.1%}", "replication": "{:.2f}", "node balance": "{:.2f}",
                    "edge balance": "{:.2f}", "ms": "{:.1f}"})

# %% id="497509c9"
method_comparison_figure(cora_stats)

# %% [markdown] id="2ae364ff"
# What to notice:
#
# * **random** cuts about `1 - 1/P` of the edges (75 % for 4 parts): every neighbour is equally likely anywhere.
# * **range** is no better unless the node numbering has locality (on some real graphs it does).
# * **METIS** cuts several times fewer edges: it coarsens the graph, partitions the small version and refines.
# * **LDG / Fennel** see each node once, in a *stream order*, and never revise a decision; they beat random but
#   not METIS. The order matters: below, a BFS order (neighbours arrive together) and a highest-degree-first order
#   against a random one. On Cora they help a lot; on the SBM, whose structure has no locality to exploit, little.
# * The vertex-cut methods cut no edge; compare their **replication factor** with the edge-cut methods'
#   (for edge-cut it is `(owned + halo) / nodes`).

# %% id="503592d9"
orders = pd.DataFrame([{"graph": name, "method": m, "order": o,
                        "edge cut": partition_stats(partition(g, PARTS, m, order=o), g).edge_cut_fraction}
                       for name, g in [("cora", cora), ("csbm", csbm)] for m in ("ldg", "fennel")
                       for o in ("random", "natural", "bfs", "degree")])
orders.pivot(index=["graph", "method"], columns="order", values="edge cut").style.format("{:.1%}")

# %% [markdown] id="16056c62"
# ## 4. Halo nodes, and why a 2-layer GNN needs the 2-hop neighbourhood
#
# A GNN layer updates a node from its in-neighbours. After **two** layers, an owned node's output depends on its
# neighbours' layer-1 outputs, which depend on *their* neighbours: the **2-hop** neighbourhood. A common
# confusion among DistDGL users: its partitions store a 1-hop halo by default (`num_hops=1`), which is enough only
# when the workers exchange halo rows **before every layer** (what full-graph training does in notebook 03), not
# when a worker computes several layers on what it stores.
#
# `receptive_field_error(plan, data, layers)` runs `layers` rounds of message passing on each part's stored
# subgraph (owned + stored halo rings, no communication) and reports the largest error on owned nodes against the
# whole graph. It is zero exactly when the stored halo has at least as many hops as the GNN has layers:

# %% id="729d8119"
errors = pd.DataFrame([{"halo hops stored": h, **{f"{L}-layer error": receptive_field_error(
    partition(cora, PARTS, "metis", hops=h), cora, L) for L in (1, 2, 3)}} for h in (0, 1, 2, 3)])
errors.style.format({c: "{:.3g}" for c in errors.columns[1:]})

# %% [markdown] id="ba70b6ee"
# And the halo grows fast with depth: below, each part's `L`-hop halo on Cora for `L = 1..4`. Deep full-graph GNNs
# read most of the graph on every worker, which is why per-layer exchange (1-hop halo, more messages) usually wins
# over storing deep halos (more memory and redundant compute).

# %% id="84dbc37e"
metis_plan = partition(cora, PARTS, "metis", hops=2)
halo_growth_figure(metis_plan, cora, max_hops=4)

# %% id="5f9d4cc3"
boundary_heatmap(metis_plan)   # rows one synchronous layer sends from each part (row) to each other part (column)

# %% [markdown] id="77b7af06"
# ## 5. Training-node imbalance
#
# Cora's public split has only 140 training nodes. METIS balances **nodes**, not training nodes, and groups nodes by
# community, so training nodes can pile up on a few workers. Those workers do more work per step (loss and
# gradients come from training nodes, and mini-batches are drawn from them) while the others wait. DistDGL's answer,
# reproduced here: extra METIS **balance constraints** (a vertex-weight column per key: `"train"`, `"degree"`).

# %% id="7d94bbe4"
plain = partition_stats(partition(cora, PARTS, "metis"), cora)
balanced = partition_stats(partition(cora, PARTS, "metis", balance=("train", "degree")), cora)
print("training nodes per part, no constraint:  ", [r["train"] for r in plain.per_part],
      f"(max/mean {plain.balance['train']:.2f})")
print("training nodes per part, balance=train,degree:", [r["train"] for r in balanced.per_part],
      f"(max/mean {balanced.balance['train']:.2f})")
print(f"edge cut: {plain.edge_cut:,} -> {balanced.edge_cut:,} (the constraints cost some cut)")
balance_figure(plain)

# %% id="a6513c6a"
balance_figure(balanced)

# %% [markdown] id="37816be8"
# ## 6. What partitioning costs
#
# Partitioning is not free: METIS on a billion-edge graph takes hours and a lot of memory, which is why streaming
# and hash partitioners exist. Time per method as the csbm graph grows (`benchmarks/bench_partition.py` measures 1M
# nodes / 10M edges and peak memory):

# %% id="3f058c8e"
sizes = [2_000, 8_000] if SMOKE else [10_000, 50_000, 200_000]
cost = []
for n in sizes:
    g = datasets.load("csbm", num_nodes=n, avg_degree=10.0, num_features=4, seed=0)
    for method in METHODS:
        plan_ = partition(g, PARTS, method)
        cost.append({"nodes": n, "method": method, "seconds": plan_.seconds})
pd.DataFrame(cost).pivot(index="method", columns="nodes", values="seconds").style.format("{:.3f}")

# %% [markdown] id="6e740dfd"
# ## 7. Explore
#
# Change the dataset, the number of parts, the method, the halo depth and the METIS balance constraints; the
# picture, the balance bars, the communication matrix and the halo growth redraw. "show part" picks whose halo is
# ringed.

# %% id="f93777c3"
from dgnn_lab.widgets.partition_explorer import PartitionExplorer

explorer = PartitionExplorer(dataset="karate" if SMOKE else None)
explorer

# %% [markdown] id="7a9936e0"
# ## 8. Exercises (each cell checks your answer)
#
# **Exercise 1: a BFS-growing partitioner.** Any function `f(data, num_parts) -> assignment` (one part id per node)
# can be passed as `method=`. Grow each part by breadth-first search from an unassigned node until it holds about
# `N / P` nodes, then start the next part. A solution is filled in so the notebook runs: cover it and write your
# own. The check: every part within 10 % of `N / P`, and fewer cut edges than random.

# %% id="67143300"
from collections import deque

from dgnn_lab.graph import to_csr, to_undirected


def bfs_grow(data, num_parts):
    n = data.num_nodes
    csr = to_csr(to_undirected(data.edge_index, n), n)
    indptr, indices = csr.indptr.tolist(), csr.indices.tolist()
    assignment = [-1] * n
    target = -(-n // num_parts)                      # ceil(n / P)
    part, size, queue = 0, 0, deque()
    for start in range(n):
        if assignment[start] >= 0:
            continue
        queue.append(start)
        while queue:
            v = queue.popleft()
            if assignment[v] >= 0:
                continue
            if size == target and part < num_parts - 1:
                part, size = part + 1, 0
                queue.clear()                         # the next part grows from where this one stopped
            assignment[v] = part
            size += 1
            queue.extend(u for u in indices[indptr[v]:indptr[v + 1]] if assignment[u] < 0)
    return assignment


mine = partition_stats(partition(cora, PARTS, bfs_grow), cora)
rnd = partition_stats(partition(cora, PARTS, "random"), cora)
sizes_ok = all(abs(r["owned"] - cora.num_nodes / PARTS) <= 0.1 * cora.num_nodes / PARTS for r in mine.per_part)
assert sizes_ok, f"parts are unbalanced: {[r['owned'] for r in mine.per_part]}"
assert mine.edge_cut < rnd.edge_cut, f"bfs_grow cuts {mine.edge_cut}, random {rnd.edge_cut}"
print(f"well done: bfs_grow cuts {mine.edge_cut:,} edges, random {rnd.edge_cut:,}, METIS {plain.edge_cut:,}")

# %% [markdown] id="ex1-train-md"
# **Now train with it, for real.** `train(partition=bfs_grow)` runs your function once, here, saves the plan into
# the run directory, and each worker process reads only its own part. The halo bytes the workers measure follow
# the plan: fewer cut edges, fewer rows on the wire. (Two workers; the cell takes a few seconds.)

# %% id="ex1-train"
from dgnn_lab.train import train

graph = {"dataset": "cora"} if have_cora else {
    "dataset": "csbm", "dataset_args": {"num_nodes": 2708, "avg_degree": 3.9, "num_classes": 7, "seed": 0}}
runs = {name: train(**graph, workers=2, partition=method, epochs=3 if SMOKE else 30, eval_every=0)
        for name, method in (("bfs_grow", bfs_grow), ("random", "random"))}
halo = {name: r.summary()["halo_bytes"] for name, r in runs.items()}
assert runs["bfs_grow"].config["partition"] == "bfs_grow"
assert halo["bfs_grow"] < halo["random"], halo
print(", ".join(f"{name}: {b / 1e6:.2f} MB of halo rows" for name, b in halo.items()))

# %% [markdown] id="31e38ff9"
# **Exercise 2: communication from the plan.** Using only `metis_plan.parts[p].boundary` (a dict: receiving part ->
# global ids sent), compute how many rows part 0 sends per layer in total and how many rows cross the network per
# layer altogether.

# %% id="6cc8a0b0"
rows_from_0 = sum(rows.numel() for rows in metis_plan.parts[0].boundary.values())       # your answer
rows_total = sum(rows.numel() for p in metis_plan.parts for rows in p.boundary.values())  # your answer

assert rows_from_0 == int(metis_plan.boundary_sizes()[0].sum())
assert rows_total == partition_stats(metis_plan, cora).comm_volume
print(f"correct: part 0 sends {rows_from_0:,} rows per layer; {rows_total:,} rows cross the network per layer")

# %% [markdown] id="e3ae7b18"
# **Exercise 3: how deep a halo?** A 3-layer GNN is evaluated on each worker with no communication at all. What is
# the smallest `hops` for which the result is exact?

# %% id="0be94620"
answer = 3   # your answer

exact = [h for h in range(5) if receptive_field_error(partition(karate, 3, "metis", hops=h), karate, 3) < 1e-9]
assert answer == exact[0], f"not quite: try hops={answer} and hops={answer + 1} with receptive_field_error"
print(f"correct: a 3-layer GNN needs the {answer}-hop halo when nothing is exchanged")

# %% [markdown] id="1b3e2cf2"
# ## Takeaways
#
# * Edge-cut plans pay per **cut edge** (halo rows per layer); vertex-cut plans pay per **replica**.
# * METIS cuts several times less than random or streaming, at a partitioning cost that grows fast with the graph.
# * An `L`-layer GNN reads the `L`-hop halo: exchange per layer (ring 1) or store it all (ring `L`).
# * Balance what drives the work (training nodes, edges), not only node counts.
#
# From the command line: `dgnn-lab partition --dataset cora --parts 4 --method metis --hops 2 --balance train`.
# Next: notebook 02 and beyond use these plans to train.
