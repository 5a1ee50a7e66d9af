# %% [markdown] id="nb05-00"
# # 05 · Distributed mini-batch training
#
# The survey's second execution model: instead of running every layer over the whole partitioned graph
# (notebook 03), each worker trains on **mini-batches**: it samples the computation graph of a few seed nodes
# (notebook 02), fetches the input features it lacks, and trains; gradients are all-reduced after every step.
# This is how DistDGL trains on graphs that do not fit one machine. One step on worker `p`:
#
# 1. **sample** the `L`-hop neighbourhood of its seeds (fanouts `10, 5`). Nodes it does not own have their
#    neighbours sampled by their owner (a request/response through the communicator) or from a replicated halo;
# 2. **fetch** the feature rows of the sampled input nodes: own rows locally, the rest from a **cache** or
#    from their owners (`fetch_req` / `fetch_resp` bytes);
# 3. **train**: forward, backward, all-reduce the gradients (every worker, every step).
#
# What you will see, all measured in real worker processes on this machine:
# 1. one seed's computation tree coloured by where its nodes live, for a locality-aware and a naive seed split;
# 2. a live run with the dashboard, including the per-step **stage timeline**;
# 3. locality-aware vs naive seed split: remote rows and bytes;
# 4. feature caches (PaGraph's degree cache, GNNLab's pre-sampling cache) at several sizes: hit rate and bytes;
# 5. pipelining: sampling and fetching of the next batch while the current one trains;
# 6. the classic hang when workers run different numbers of steps, shown with a short timeout, and the fix.

# %% id="nb05-01"
import pandas as pd
import torch
from IPython.display import display

from dgnn_lab.settings import smoke_mode

SMOKE = smoke_mode()  # DGNN_LAB_SMOKE=1: the smallest configuration (tests run every notebook this way)
N = 2_000 if SMOKE else 20_000
# a power-law graph: a few hubs and a long tail, the degree skew real graphs have (and caches exploit)
base = {"dataset": "powerlaw", "dataset_args": {"num_nodes": N, "avg_degree": 10}, "workers": 2,
        "partition": "metis", "mode": "minibatch", "model": "sage", "hidden": 64, "fanouts": [10, 5],
        "batch_size": 128 if SMOKE else 256, "epochs": 2 if SMOKE else 10, "eval_every": 1, "timeout_s": 120}
print("smoke mode: a small graph, few epochs" if SMOKE else "full configuration", f"({N:,} nodes)")

# %% [markdown] id="nb05-02"
# ## 1 · Where a seed's computation tree lives
#
# Worker 0 owns one METIS part. **Locality-aware** seed split (DistDGL's `node_split`): each worker trains on
# seeds it owns, counts balanced. **Naive** split: contiguous chunks of the training index, as PyG's first
# distributed example did; ownership is ignored, so about half of the seeds (with 2 workers) belong to the other
# worker. Below, one seed of each kind and its sampled tree, coloured for worker 0: **own** rows are free,
# **halo** rows (the 1-hop ring of the partition) and **remote** rows must be fetched (or cached), and with
# `remote_sampling="owner"` their neighbours must be asked of their owner too.

# %% id="nb05-03"
from dgnn_lab.datasets import load
from dgnn_lab.partition import partition
from dgnn_lab.sampling import NeighborLoader
from dgnn_lab.sampling.distributed import split_seeds
from dgnn_lab.viz.minibatch import placement_tree_figure

data = load(base["dataset"], **base["dataset_args"])
plan = partition(data, 2, "metis", seed=0, hops=1)
train_idx = torch.nonzero(data.train_mask).reshape(-1)
seeds = {how: split_seeds(train_idx, plan.assignment, 0, 2, how) for how in ("local", "chunk")}
display(pd.DataFrame([{"split": how, "seeds of worker 0": s.numel(),
                       "owned by worker 0": int((plan.assignment[s] == 0).sum())} for how, s in seeds.items()])
        .set_index("split"))
one = seeds["local"][:1]
batch = next(iter(NeighborLoader(data, base["fanouts"], batch_size=1, input_nodes=one, seed=0)))
placement_tree_figure(batch, plan, rank=0, title=f"a seed of the locality-aware split (node {int(one[0])})")

# %% id="nb05-04"
chunk = seeds["chunk"]
other = chunk[plan.assignment[chunk] == 1][:1]  # a seed the naive split gives worker 0 but worker 1 owns
batch = next(iter(NeighborLoader(data, base["fanouts"], batch_size=1, input_nodes=other, seed=0)))
placement_tree_figure(batch, plan, rank=0, title=f"a seed of the naive split (node {int(other[0])}, owned by worker 1)")

# %% [markdown] id="nb05-05"
# ## 2 · A live run
#
# `live_train` starts the workers and returns the dashboard at once. Besides the figures of notebook 03 it
# shows the **stage timeline**: for each worker two lanes, *prepare* (every step's *sample* and *fetch*) and
# *train* (*train*, then *wait*: waiting for the other worker at the gradient all-reduce), placed where they ran
# on that worker's clock. Without pipelining the lanes take turns.

# %% id="nb05-06"
from dgnn_lab.widgets.dashboard import live_train

dash = live_train(base, title=f"powerlaw · {base['workers']} workers · mini-batch, no cache")
dash

# %% id="nb05-07"
from dgnn_lab.viz.minibatch import step_summary

first = dash.wait()
s = first.summary()
print(f"status {first.status}; test accuracy at best validation {s['test_acc_at_best_val']}")
step_summary(first.records).set_index("rank")[["steps", "sample_s", "fetch_s", "train_s", "wait_s",
                                                "remote_requests", "remote_rows_fetched"]]

# %% [markdown] id="nb05-08"
# ## 3 · Locality-aware vs naive seed split
#
# Sections 3 to 5 compare variants of the run above: the other seed split, caches of two policies and sizes,
# and pipelining. `minibatch_study` trains them all in **one** launch of the workers, one after the other in
# the same processes (each variant has its own setup, cache and counters, exactly as if launched alone):
# starting processes and importing PyTorch costs more than training this small graph. The run above's
# configuration (locality-aware split, no cache, no pipelining) is the shared baseline of every table.
#
# First the split. Per epoch, summed over workers: feature rows and bytes fetched, bytes of remote sampling
# requests and responses, and the steps' loop time (slowest worker).

# %% id="nb05-09"
from dgnn_lab.experiments.studies import minibatch_study

study = minibatch_study(base, cache_sizes=(0.1, 0.5) if SMOKE else (0.05, 0.1, 0.25, 0.5))
study.seed_split.set_index("seed_split")[["seeds_local", "rows_fetched", "bytes_fetched", "sample_bytes",
                                          "loop_s", "test_acc"]]

# %% [markdown] id="nb05-10"
# What to look for: with the naive split about half of a worker's seeds — and most of their neighbourhoods —
# live on the other worker: it fetches about twice the feature rows and moves several times the sampling bytes,
# for the same model. The accuracy barely depends on the split (every seed is still trained once per epoch, in
# a different order); the traffic does. The loop time need not follow the bytes here: between processes on one
# machine ("loopback") a few more megabytes cost next to nothing, and in our runs the naive split was not
# slower. On a real network every fetched row and every sampling round trip costs; count bytes, not seconds,
# to compare the two splits on a laptop.
#
# ## 4 · Feature caches
#
# A static cache keeps the rows of some remote nodes on the worker, filled once before training (its bytes are
# counted apart, as `cache_fill`). Two policies from the literature:
# * **degree** (PaGraph): the highest in-degree remote nodes, the ones sampling reaches most often;
# * **presample** (GNNLab): run the sampler for an epoch first and keep the nodes it touched most.
#
# The capacity is a fraction of the remote nodes a worker could ever need. Hit rates and bytes are measured, not
# estimated: every run fetches through the same communicator and counts what it moved.

# %% id="nb05-11"
from dgnn_lab.viz.minibatch import cache_sweep_figure

display(study.caches.set_index("variant")[["hit_rate", "rows_fetched", "bytes_fetched", "bytes_saved",
                                           "cache_bytes", "test_acc"]])
cache_sweep_figure(study.caches)

# %% [markdown] id="nb05-12"
# What to look for: the hit rate exceeds the capacity, because sampling reaches hubs far more often than tail
# nodes: a cache of a tenth of the remote nodes removes several times that share of the bytes (`bytes_saved`
# is exactly the hit rate: every hit is a row not fetched). The test
# accuracy is the same in every row: a cache changes where rows come from, never what is computed (the tests
# check this exactly). Whether pre-sampling beats degree depends on how well in-degree predicts what the sampler
# touches: with a locality-aware split the seeds sit in the worker's own part, and pre-sampling sees exactly
# which remote nodes their neighbourhoods reach.
#
# ## 5 · Pipelining
#
# Sampling and fetching of batch `i + 1` run in a background thread (with its own process group, so its
# collectives never interleave with the main thread's) while batch `i` trains. The overlap is measured: the
# stage seconds add up to more than the loop's wall time by exactly the time hidden.

# %% id="nb05-13"
from dgnn_lab.viz.minibatch import stage_totals_figure

display(study.pipeline.set_index("pipeline")[["sample_s", "fetch_s", "train_s", "overlap_s", "loop_s", "speedup"]])
stage_totals_figure({"pipeline off": study.results["local"].records,
                     "pipeline on": study.results["pipeline on"].records})

# %% id="nb05-14"
from dgnn_lab.viz.minibatch import stage_timeline_figure

stage_timeline_figure(study.results["pipeline on"].records, world_size=base["workers"])

# %% [markdown] id="nb05-15"
# What to look for: without pipelining the loop time is the sum of the stages (`overlap_s` about 0); with it,
# part of sampling and fetching runs under training (`overlap_s` > 0, summed over workers): in the timeline the
# *prepare* lane of step `i + 1` sits under the *train* lane of step `i`. Whether that makes
# the loop faster depends on the machine: on a 2-core laptop the prefetch threads compete with the training
# threads for the same cores, so only time spent *waiting* (on the other worker's answers, on the network) can
# really be hidden, and on a busy machine the extra thread can even slow a small run down (`speedup` < 1).
# `benchmarks/bench_minibatch.py` measures it on a larger graph. With a core (or GPU) per stage the speedup
# approaches `(sample + fetch + train) / max(sample + fetch, train)`.
#
# ## 6 · Uneven step counts: the hang, and the fix
#
# Every step ends in a gradient all-reduce that **every** worker must join. If one worker has more batches than
# another, it calls the all-reduce while the other has finished its epoch and called something else: the
# collectives no longer match, and the faster worker waits forever (the classic DDP / DistDGL hang). Here one
# extra training node makes the split 1 seed uneven, and a batch size makes that 4 steps against 3. With
# `equal_steps=False` the run can only end by the communication timeout (5 s here, instead of minutes):

# %% id="nb05-16"
import textwrap

from dgnn_lab.dist import WorkerError
from dgnn_lab.train.api import train

n_train = int(data.train_mask.sum()) + 1                 # an odd number of seeds: one worker gets one more
uneven = {**base, "dataset_args": {**base["dataset_args"], "train_frac": n_train / N},
          "batch_size": n_train // 2 // 3, "epochs": 1, "eval_every": 0}
print("steps per worker:", [-(-(n_train // 2 + (r < n_train % 2)) // uneven["batch_size"]) for r in range(2)])
try:
    train({**uneven, "equal_steps": False, "timeout_s": 5})
except WorkerError as e:  # the worker's own explanation, from the end of its traceback
    lines = str(e).splitlines()
    print(textwrap.fill(next((x for x in lines if "equal_steps=False" in x), lines[-1]), 110))

# %% [markdown] id="nb05-17"
# The fix (the default, `equal_steps=True`): the workers agree on the largest step count with one all-reduce
# before training, and a worker whose seeds ran out takes **zero-weight steps**: it still samples and fetches
# (answering the others' requests), joins the all-reduce with a zero gradient and zero seeds, and skips the
# forward pass. Every seed is still counted exactly once per epoch.

# %% id="nb05-18"
fixed = train({**uneven, "equal_steps": True})
steps = pd.DataFrame([r for r in fixed.records if r["type"] == "step"])
print(f"status {fixed.status}")
steps.pivot_table(index="step", columns="rank", values="seeds")
