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
#
# Three **checked exercises** (✎) ask you to predict or choose something and check it against this run's
# measurements: write your answer in the cell marked `answer_...`, run it, then run the check cell below it.

# %% id="nb05-01"
import math

import pandas as pd
import torch
from IPython.display import display

from dgnn_lab.course import check_answered, check_close, check_true
from dgnn_lab.settings import smoke_mode

SMOKE = smoke_mode()  # DGNN_LAB_SMOKE=1: the smallest configuration (tests run every notebook this way)
N = 2_000 if SMOKE else 20_000
# a power-law graph: a few hubs and a long tail, the degree skew real graphs have (and caches exploit)
base = {"dataset": "powerlaw", "dataset_args": {"num_nodes": N, "avg_degree": 10}, "workers": 2,
        "partition": "metis", "mode": "minibatch", "model": "sage", "hidden": 64, "fanouts": [10, 5],
        "batch_size": 128 if SMOKE else 256, "epochs": 2 if SMOKE else 6, "eval_every": 1, "timeout_s": 120}
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
degree = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
def with_neighbours(s):  # the first seed with at least 3 in-neighbours, so its tree has something to show
    return s[degree[s] >= 3][:1]

one = with_neighbours(seeds["local"])
batch = next(iter(NeighborLoader(data, base["fanouts"], batch_size=1, input_nodes=one, seed=0)))
placement_tree_figure(batch, plan, rank=0, title=f"a seed of the locality-aware split (node {int(one[0])})")

# %% id="nb05-04"
chunk = seeds["chunk"]
other = with_neighbours(chunk[plan.assignment[chunk] == 1])  # the naive split gives it to 0; worker 1 owns it
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
from dgnn_lab.records import format_bytes
from dgnn_lab.viz.minibatch import step_summary

first = dash.wait()
s = first.summary()
print(f"status {first.status}; test accuracy at best validation {s['test_acc_at_best_val']}")
print(f"bytes sent for training {format_bytes(s['train_bytes'])}; for evaluation {format_bytes(s['eval_bytes'])} "
      "(full-neighbourhood evaluation of every node, apart from what training costs)")

# %% [markdown] id="nb05-ex1-md"
# ### Exercise 1 · Steps per epoch
#
# Each worker trains on its seeds of the locality-aware split in batches of `base["batch_size"]` seeds, and the
# workers run the same number of steps (section 6 explains why they must). How many **steps per epoch** does
# each worker run, i.e. how many gradient all-reduces? Compute it from the split, not from the run.
#
# <details><summary>Hint</summary>
#
# `split_seeds(train_idx, plan.assignment, rank, 2, "local")` gives worker `rank`'s seeds (section 1 used it
# for worker 0). The last batch of an epoch may be smaller than the others; a worker with fewer batches than
# the other still joins every all-reduce.
# </details>

# %% id="nb05-ex1" exercise="answer"
answer_1 = None  # steps per epoch, per worker
### BEGIN SOLUTION
per_worker = [split_seeds(train_idx, plan.assignment, r, base["workers"], "local").numel() for r in range(base["workers"])]
answer_1 = max(math.ceil(n / base["batch_size"]) for n in per_worker)  # the last batch may be partial
### END SOLUTION

# %% id="nb05-ex1-check" exercise="check"
steps = step_summary(first.records).set_index("rank")["steps"] / s["epochs"]
check_close(answer_1, float(steps.max()), what="steps per epoch", unit="steps",
            why="a worker's seeds, split into batches of batch_size, the last one partial: ceil(seeds / batch_size) "
                "steps, and every worker runs as many as the one with the most")
per_rank = {int(r): int(n) for r, n in steps.items()}
check_true(steps.nunique() == 1, what="every worker ran as many steps", right=f"steps per epoch by worker {per_rank}",
           wrong=f"the workers ran different step counts: {per_rank}")

# %% id="nb05-07b"
step_summary(first.records).set_index("rank")[["steps", "sample_s", "fetch_s", "train_s", "wait_s",
                                                "remote_requests", "remote_rows_fetched"]]

# %% [markdown] id="nb05-08"
# ## 3 · Locality-aware vs naive seed split
#
# Sections 3 to 5 compare variants of the run above: the other seed split, caches of two policies and sizes,
# and pipelining. `minibatch_study` trains them all in **one** launch of the workers, one after the other in
# the same processes (each variant has its own setup, cache and counters, exactly as if launched alone):
# starting processes and importing PyTorch costs more than training this small graph. The run above's
# configuration (locality-aware split, no cache, no pipelining) is the shared baseline of every table; the
# study evaluates only after the first and the last epoch (`STUDY`), since evaluating every node each epoch
# costs more than this graph's training, and changes nothing it measures.
#
# First the split. Per epoch, summed over workers: feature rows and bytes fetched, bytes of remote sampling
# requests and responses, and the steps' loop time (slowest worker).

# %% id="nb05-09"
from dgnn_lab.experiments.studies import minibatch_study

STUDY = {**base, "eval_every": base["epochs"]}  # the same training, evaluated after the first and the last epoch
study = minibatch_study(STUDY, cache_sizes=(0.1, 0.25, 0.5) if SMOKE else (0.05, 0.1, 0.25, 0.5))
study.seed_split.set_index("seed_split")[["rows_fetched", "bytes_fetched", "sample_bytes", "loop_s", "test_acc"]]

# %% [markdown] id="nb05-ex2-md"
# ### Exercise 2 · How many seeds does the naive split send away?
#
# The naive split gives worker `r` the `r`-th contiguous chunk of the training index
# (`torch.tensor_split(train_idx, 2)[r]`), whoever owns those nodes. Over both workers, what **fraction of the
# training seeds** does a worker get that it does **not** own? Compute it exactly from the plan
# (`plan.assignment`: node -> owning worker); the check compares it with what the workers of the `chunk` run
# reported (`1 - seeds_local`).
#
# <details><summary>Hint</summary>
#
# For each worker `r`, count the nodes of its chunk whose owner is not `r`; add both counts and divide by the
# number of training seeds. About a half is the guess; the plan says exactly.
# </details>

# %% id="nb05-ex2" exercise="answer"
answer_2 = None  # the fraction of seeds that are remote under the naive split
### BEGIN SOLUTION
chunks = torch.tensor_split(train_idx, base["workers"])
answer_2 = sum(int((plan.assignment[c] != r).sum()) for r, c in enumerate(chunks)) / train_idx.numel()
### END SOLUTION

# %% id="nb05-ex2-check" exercise="check"
check_close(answer_2, 1 - study.seed_split.set_index("seed_split").loc["chunk", "seeds_local"], rel=1e-9,
            what="share of remote seeds under the naive split",
            why="the chunks cut the training index in order, ignoring ownership, so each worker's chunk holds "
                "whatever share of the other worker's nodes falls in it: count them with plan.assignment")

# %% [markdown] id="nb05-10"
# What to look for: with the naive split about half of a worker's seeds — and most of their neighbourhoods —
# live on the other worker: it fetches about twice the feature rows and moves several times the sampling bytes,
# for the same model. The accuracy barely depends on the split (every seed is still trained once per epoch, in
# a different order); the traffic does. The loop time need not follow the bytes here: between processes on one
# machine ("loopback") a few more megabytes cost next to nothing. One run per split says nothing about seconds:
# section 5 repeats the timed runs and says whether their difference holds. On a real network every fetched
# row and every sampling round trip costs; count bytes, not seconds, to compare the two splits on a laptop.
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

# %% [markdown] id="nb05-ex3-md"
# ### Exercise 3 · Size a cache to halve the fetched rows
#
# Before looking at the sweep below: choose the capacity of a **degree** cache, as a fraction of the remote
# candidate nodes, **at most a quarter**, that halves the feature rows fetched per epoch (`rows_fetched`) of the
# run without a cache. The check trains your cache for real (one more variant, in one launch; or it re-opens
# the sweep's run when the sweep trained that very capacity) and compares.
#
# <details><summary>Hint</summary>
#
# A power-law graph's sampler reaches hubs far more often than tail nodes, so the share of lookups a cache
# serves (its hit rate) is much larger than the share of candidates it holds. What share of the edges do the
# top 10 % of nodes by in-degree carry here? (`degree`, computed in section 1, holds every node's in-degree.)
# </details>

# %% id="nb05-ex3" exercise="answer"
answer_3 = None  # the degree cache's capacity, a fraction of the remote candidates (at most 0.25)
### BEGIN SOLUTION
top = degree.sort(descending=True).values
print(f"the top 10 % of nodes by in-degree carry {float(top[: len(top) // 10].sum() / top.sum()):.0%} of the edges")
answer_3 = 0.25  # hubs are sampled often: a quarter of the candidates serves well over half the lookups
### END SOLUTION

# %% id="nb05-ex3-check" exercise="check"
from dgnn_lab.experiments.studies import minibatch_metrics, run_variants

size = check_answered(answer_3, what="your cache's capacity")
check_true(isinstance(size, (int, float)) and 0 < size <= 0.25, what="the capacity", right=f"{size:g} of the candidates",
           wrong=f"give a fraction of the remote candidates in (0, 0.25], got {size!r}")
swept = study.results.get(f"degree {size:g}")  # the sweep's run of the same cache, if it has one
if swept is None:
    swept = run_variants(STUDY, {"yours": {"mode": "minibatch", "cache": "degree", "cache_size": size}})["yours"]
rows = minibatch_metrics(swept)["rows_fetched"]
none = float(study.caches.set_index("variant").loc["none", "rows_fetched"])
check_true(rows <= 0.5 * none, what=f"a degree cache of {size:g}",
           right=f"{rows:,.0f} rows fetched per epoch, {rows / none:.0%} of the {none:,.0f} without a cache",
           wrong=f"{rows:,.0f} rows fetched per epoch, {rows / none:.0%} of the {none:,.0f} without a cache (half "
                 "asked): the cache serves too few lookups; hold more of the hubs")

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

# %% [markdown] id="nb05-timing-md"
# **Seconds need repeats.** One run's `loop_s` (and so `speedup`) moves with whatever else the machine does. Below,
# the three timed variants (locality-aware split, naive split, pipelining on; no cache) run **3 times each**,
# interleaved, in one more launch of short runs (`TIMING`: a few epochs, no evaluation). The table gives each
# one's median loop time per epoch (slowest worker), its range over the repeats, and `too_wide_to_conclude` when
# that range overlaps another variant's or spans more than 25 % of its median: then the runs do not separate
# them, and no "faster" or "slower" should be read into the numbers.

# %% id="nb05-timing"
from dgnn_lab.experiments.compare import ReportTable, timing_summary
from dgnn_lab.experiments.studies import minibatch_metrics, run_variants

TIMING = {**base, "epochs": 2, "eval_every": 0, "cache": "none"}
timed_variants = {"local": {"seed_split": "local"}, "chunk": {"seed_split": "chunk"}, "pipeline on": {"pipeline": True}}
again = run_variants(TIMING, {f"{name} #{i}": {"mode": "minibatch", **over}
                              for i in (1, 2, 3) for name, over in timed_variants.items()})
loops = {name: [minibatch_metrics(again[f"{name} #{i}"])["loop_s"] for i in (1, 2, 3)] for name in timed_variants}
one = next(iter(again.values()))
timing = pd.DataFrame.from_dict(timing_summary(loops), orient="index").rename(columns=lambda c: c.replace(
    "s_per_epoch", "loop_s")).drop(columns="timed_repeats")
timing["speedup_vs_local"] = timing.loc["local", "loop_s"] / timing["loop_s"]
print(f"loop_s: median over 3 runs of each run's mean loop time per epoch (slowest worker); measured with "
      f"{one.world_size} processes x {one.num_threads} torch thread(s) each on {one.cores} cores")
ReportTable(timing.rename_axis("variant").reset_index())

# %% [markdown] id="nb05-15"
# What to look for: without pipelining the loop time is the sum of the stages (`overlap_s` about 0); with it,
# part of sampling and fetching runs under training (`overlap_s` > 0, summed over workers): in the timeline the
# *prepare* lane of step `i + 1` sits under the *train* lane of step `i`. Whether that makes
# the loop faster depends on the machine: on a 2-core laptop the prefetch threads compete with the training
# threads for the same cores, so only time spent *waiting* (on the other worker's answers, on the network) can
# really be hidden, and on a busy machine the extra thread can even slow a small run down (`speedup` < 1).
# Quote a speedup only from the repeated timing table, and only when it is not `too_wide_to_conclude`.
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
