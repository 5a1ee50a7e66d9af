# %% [markdown] id="nb03-00"
# # 03 · Full-graph training on several workers
#
# Several real processes train **one** GNN over a partitioned graph: the survey's execution model *full-graph*
# with the *synchronous* communication protocol. Each worker owns part of the nodes and, before every layer,
# fetches the rows of its **halo** (the neighbours it reads but does not own) from their owners. Weight
# gradients are all-reduced, so every worker ends each epoch with the same model — exactly the model a single
# process would train.
#
# What you will see:
# 1. one layer's halo exchange on a tiny graph, step by step: which rows go where, and why they are exactly the
#    **boundary sets** of notebook 01;
# 2. real training with 2 and 4 worker processes, **live**: loss, time per worker (compute / communication /
#    waiting), the bytes each worker sent to each other worker, and a timeline of phases;
# 3. METIS vs random partitions: bytes and time;
# 4. 1 to 4 workers: what happens to communication and waiting — and what a 2-core laptop can and cannot show.
#
# Every number below is measured: bytes are counted by the communicator, times by each worker's clock.

# %% id="nb03-01"
import pandas as pd
import torch

from dgnn_lab.datasets import list_datasets, load
from dgnn_lab.partition.local_graph import LocalGraph
from dgnn_lab.settings import smoke_mode

SMOKE = smoke_mode()  # DGNN_LAB_SMOKE=1: the smallest configuration (tests run every notebook this way)
print("smoke mode: tiny graphs, few epochs" if SMOKE else "full configuration")

# %% [markdown] id="nb03-02"
# ## 1 · One layer's halo exchange, step by step
#
# Zachary's karate club cut in two by METIS: the same plan as notebook 01 (`partition` builds it with
# `build_plan`, whose docstring is the contract). Each worker needs its **owned** nodes, its **halo** (ring 1:
# neighbours owned by someone else; ringed below for worker 0) and its **boundary sets**:
# `plan.boundary(p, q)` = the owned nodes of `p` that `q` reads, i.e. exactly the rows `p` sends to `q`
# before every layer. Red edges are the cut edges those rows travel along.

# %% id="nb03-03"
from dgnn_lab.partition import partition
from dgnn_lab.viz.graph import partition_graph_figure

data = load("karate")
plan = partition(data, 2, "metis")
partition_graph_figure(plan, data, part=0, hops=1)

# %% id="nb03-04"
pd.DataFrame([
    {"worker": p, "owned": part.num_owned, "halo (ring 1)": part.halo(1).tolist(),
     "boundary: rows sent to the other worker": plan.boundary(p, 1 - p).tolist()}
    for p, part in enumerate(plan.parts)
]).set_index("worker")

# %% [markdown] id="nb03-05"
# Each worker stores its rows in **local ids**: owned nodes first, then the halo, grouped by the worker
# they come from, in the order they arrive. So a message needs no ids at all: the sender picks rows by local id
# (`send_index`), the receiver writes them into a contiguous slot (`recv_slots`). Both sides derive the order
# from the same boundary set, sorted by global id.

# %% id="nb03-06"
graphs = [LocalGraph.from_plan(plan, p, data.edge_index) for p in range(2)]
rows = []
for p in range(2):
    q = 1 - p
    sent = plan.boundary(p, q)
    slot = graphs[q].recv_slots[p]
    for k, g in enumerate(sent.tolist()):
        rows.append({"from": p, "to": q, "global id": g, "sender's local row": int(graphs[p].send_index[q][k]),
                     "receiver's local row": slot.start + k})
pd.DataFrame(rows).set_index(["from", "to"])

# %% [markdown] id="nb03-07"
# Now run the layer by hand: features `H` (4 numbers per node), every worker holding only its owned rows.
# Step 1: each worker copies the rows in `send_index[q]` into a message for `q`. Step 2: the receiver appends
# the messages after its owned rows. Step 3: it aggregates over its **local edges** (all edges into nodes it
# owns). The result must equal aggregating over the whole graph — with no approximation — because every
# neighbour an owned node reads is either owned or in the halo that just arrived.

# %% id="nb03-08"
torch.manual_seed(0)
H = torch.randn(data.num_nodes, 4)
owned_rows = [H[g.owned] for g in graphs]                     # what each worker holds before the layer

messages = {(p, q): owned_rows[p][graphs[p].send_index[q]] for p in range(2) for q in range(2) if p != q}
for (p, q), m in messages.items():
    print(f"worker {p} -> worker {q}: {m.shape[0]} rows x {m.shape[1]} floats = {m.numel() * 4} bytes")

def aggregate(x, edge_index, n_out):                          # sum over in-neighbours (one GNN layer, no weights)
    return torch.zeros(n_out, x.shape[1]).index_add_(0, edge_index[1], x[edge_index[0]])

full = aggregate(H, data.edge_index, data.num_nodes)          # the single-process answer
for q, g in enumerate(graphs):
    local_x = torch.cat([owned_rows[q], messages[(1 - q, q)]])  # owned rows, then the halo as it arrived
    out = aggregate(local_x, g.edge_index, g.num_owned)
    print(f"worker {q}: largest difference from the whole-graph layer = {(out - full[g.owned]).abs().max():.1e}")

# %% [markdown] id="nb03-09"
# Rows x width x 4 bytes (float32) is exactly what the real communicator counts per layer and per
# direction (the width is the layer's input size, not 4): in the backward pass the same boundary rows travel back as gradients (each halo row's gradient returns to its owner
# and is added there). With `P` workers the boundary sets form a `P x P` matrix; it is the plan's
# `boundary_sizes()`, sender row, receiver column — the same layout as the dashboard's bytes heatmap below.

# %% id="nb03-10"
plan4 = partition(data, 4, "metis")
pd.DataFrame(plan4.boundary_sizes().numpy(), index=[f"from {p}" for p in range(4)],
             columns=[f"to {q}" for q in range(4)])

# %% [markdown] id="nb03-11"
# ## 2 · Real training, live
#
# `live_train(config)` starts the worker processes and returns a dashboard at once (the cell finishes, the
# **Stop** button keeps working). One background thread draws at most 10 frames a second from the workers'
# telemetry. The first run is Cora (the GCN paper's setting) on 2 workers, when the Planetoid files are on this
# machine; otherwise the contextual SBM stands in, and the cell says so.

# %% id="nb03-12"
from dgnn_lab.widgets.dashboard import live_train

have_cora = any(d.name == "cora" and d.available for d in list_datasets())
if have_cora:
    cora = {"dataset": "cora", "workers": 2, "partition": "metis", "model": "gcn", "hidden": 16,
            "dropout": 0.5, "epochs": 10 if SMOKE else 200}
else:
    print("Cora's files are not on this machine (see `dgnn-lab datasets`); using the contextual SBM instead.")
    cora = {"dataset": "csbm", "dataset_args": {"num_nodes": 1_000 if SMOKE else 10_000}, "workers": 2,
            "partition": "metis", "model": "gcn", "epochs": 10 if SMOKE else 100}
dash = live_train(cora, title=f"{cora['dataset']} · {cora['workers']} workers")
dash

# %% [markdown] id="nb03-13"
# The cell above returned immediately; the next one waits for the run to end (run it whenever you like) and
# gives the `RunResult`: tidy tables and the same summary the CLI prints with `--json`.

# %% id="nb03-14"
first = dash.wait()
s = first.summary()
print(f"status {first.status}; test accuracy at best validation {s['test_acc_at_best_val']}; "
      f"halo bytes {s['halo_bytes']:,}")
pd.DataFrame(s["workers"]).set_index("rank")[["compute_s", "comm_s", "wait_s"]]

# %% [markdown] id="nb03-15"
# Now 4 workers on a synthetic graph with strong communities (a contextual SBM). On a 2-core laptop 4
# workers are **oversubscribed**: only two can run at any moment, and the dashboard says so. METIS
# puts each community on (mostly) one worker, so only the few edges between communities cost bytes; the next
# section shows how many more a random partition moves. Accuracies are evaluated every 5 epochs here.

# %% id="nb03-16"
csbm = {"dataset": "csbm", "dataset_args": {"num_nodes": 2_000 if SMOKE else 20_000, "homophily": 0.95},
        "workers": 4, "partition": "metis", "model": "gcn", "hidden": 32, "dropout": 0.0,
        "epochs": 5 if SMOKE else 60, "eval_every": 5}
dash4 = live_train(csbm, title="csbm · 4 workers · METIS")
dash4

# %% id="nb03-17"
metis4 = dash4.wait()
metis4.bytes_matrix()

# %% [markdown] id="nb03-18"
# ## 3 · METIS vs random partitions: bytes and time
#
# Same graph, same model, same 4 workers; only the partition changes. A random partition cuts most edges, so
# almost every neighbour lives on another worker: the halo — and with it the bytes of every layer, forward and
# backward — grows. (`train` is the blocking twin of `live_train`.)

# %% id="nb03-19"
from IPython.display import display

from dgnn_lab import records
from dgnn_lab.train.api import train
from dgnn_lab.viz.training import comparison_figure

random4 = train({**csbm, "partition": "random"})

def row(name, result):  # one table row; every number from dgnn_lab.records, as in the CLI and the comparator
    t = records.phase_totals(result.records)
    return {"run": name, "threads / worker": result.num_threads,
            "halo bytes / epoch": records.bytes_per_epoch(result.records, "halo"),
            "seconds / epoch (median)": records.s_per_epoch(result.records),
            "comm s (all workers)": t["comm"].sum(), "wait s (all workers)": t["wait"].sum()}

display(pd.DataFrame([row("METIS", metis4), row("random", random4)]).set_index("run"))
comparison_figure({"METIS": metis4.records, "random": random4.records}, cores=metis4.cores,
                  title="METIS vs random, 4 workers")

# %% [markdown] id="nb03-20"
# ## 4 · One to four workers
#
# Same graph, METIS, 1 to 4 workers (the 4-worker run is the live one above; smoke mode runs only 1 and 4). With one worker nothing
# moves between workers; every added worker adds boundary sets to exchange, and a synchronous layer waits
# for the slowest worker.
#
# **Be honest about the hardware**: this machine has the number of cores printed below. Once there are more
# workers than cores, workers take turns on the CPU, so *waiting* also measures CPU contention, not only the
# algorithm, and more workers cannot make an epoch faster. On a machine with a core (or GPU) per worker,
# computing time per worker would shrink with `P` while communication grows: the trade-off of full-graph
# training.

# %% id="nb03-21"
runs = {}
for p in (1,) if SMOKE else (1, 2, 3):  # smoke mode (tests): just 1 vs 4, to stay quick
    runs[f"{p} worker{'s' if p > 1 else ''}"] = train({**csbm, "workers": p})
runs["4 workers"] = metis4
cores = metis4.cores
print(f"{cores} cores on this machine")
display(pd.DataFrame([row(name, r) for name, r in runs.items()]).set_index("run"))
comparison_figure({name: r.records for name, r in runs.items()}, cores=cores, title="1 to 4 workers, METIS")

# %% [markdown] id="nb03-22"
# What to look for (every number above was measured in this run; yours will differ):
# * **bytes** are zero for one worker and grow with `P`: more cut edges, more boundary rows. They are counted
#   at the communicator and equal what the plan's boundary sets predict, to the byte. Not always monotone:
#   a graph with 4 communities splits cleanly into 4 parts but not into 3, so 3 workers can move more than 4.
# * **bytes are not time**: METIS moves several times fewer bytes than random, yet at this size the epochs
#   may take about as long. Small messages cost latency and synchronisation, not bandwidth (loopback moves
#   about 1 GB/s here for large messages), so bytes only dominate on bigger graphs or slower networks.
# * **waiting** grows when workers outnumber cores: then it measures the laptop (workers taking turns on a
#   core) as much as the algorithm. With one worker per core (or per GPU), compute per worker would shrink
#   with `P` while communication grows: the trade-off of full-graph training.
#
# Relaxing the synchronisation (stale halos, compressed messages) is how later notebooks buy back that time.
