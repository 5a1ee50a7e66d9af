# %% [markdown] id="c00"
# # 04 · Synchronous vs asynchronous: staleness, PipeGCN, parameter servers, stragglers
#
# In notebook 03 every layer of every epoch waited for **fresh** halo rows, and every epoch ended with an
# all-reduce of the gradients: each worker waits for the slowest one twice per layer and once per step. That is
# exact, and it is what makes synchronous training slow on a real cluster. The survey's *communication protocol*
# family relaxes it in two places:
#
# | what gets old | technique | what it buys | what it costs |
# |---|---|---|---|
# | **halo rows** (embeddings of other workers' nodes) | PipeGCN: use last epoch's rows | the exchange can overlap compute | the layer aggregates stale neighbours |
# | | bounded staleness (Sancus-like): skip re-sending rows that barely changed | fewer bytes | rows up to `S` epochs old |
# | **weights** (gradients computed on old weights) | parameter server with staleness bound `s` | no barrier between workers | gradients applied late |
#
# Every run below is real worker processes, measured by the communicator (bytes) and the workers' clocks
# (time). `compare(...)` runs several configurations one after another and **caches** each one in
# `runs/compare/<name>-<hash>/`: running a cell again re-opens finished runs instantly instead of training them
# again.

# %% id="c01"
import pandas as pd

from dgnn_lab.datasets import list_datasets
from dgnn_lab.experiments.compare import PRESETS, compare
from dgnn_lab.settings import smoke_mode
from dgnn_lab.viz import comparison as vc

SMOKE = smoke_mode()  # DGNN_LAB_SMOKE=1: the smallest configuration (tests run every notebook this way)
have_cora = any(d.name == "cora" and d.available for d in list_datasets())
if SMOKE:
    BASE = {"dataset": "karate", "workers": 2, "partition": "metis", "epochs": 4}
elif have_cora:
    BASE = {"dataset": "cora", "workers": 2, "partition": "metis", "epochs": 200}
else:
    print("Cora's files are not on this machine (see `dgnn-lab datasets`); using the contextual SBM instead.")
    BASE = {"dataset": "csbm", "dataset_args": {"num_nodes": 10_000}, "workers": 2, "partition": "metis",
            "epochs": 100}
COLS = ["name", "cached", "test_acc_at_best_val", "halo_bytes_per_epoch", "training_bytes_per_epoch",
        "s_per_epoch", "wait_share"]
print(BASE)
pd.DataFrame({"overrides on BASE": {k: str(v) for k, v in PRESETS.items()}})

# %% [markdown] id="c02"
# ## 1 · Staleness, in one picture
#
# Call the boundary rows worker `p` sends at epoch `t` for layer `l` **$h^{(l)}_t$**. Synchronous training
# aggregates $h^{(l)}_t$ at epoch `t`: the layer cannot start before they arrive. A protocol with staleness `S`
# aggregates $h^{(l)}_{t-S}$ instead: rows that arrived `S` epochs ago, so this epoch's transfer has `S`
# epochs to complete behind computation. The model keeps moving, so $h_{t-S} \ne h_t$: the error is the
# distance the embeddings travelled in `S` epochs, which is large early in training (big steps) and small
# near convergence. Two consequences to look for below:
#
# * staleness costs little accuracy when the learning rate is moderate and `S` small (PipeGCN's argument);
# * **epoch 0 is always synchronous** (there is nothing old to use yet), and the records say how old the rows
#   each layer aggregated really were: `staleness_hist` counts halo rows by age in epochs.

# %% [markdown] id="c03"
# ## 2 · PipeGCN: last epoch's halo
#
# `stale` is PipeGCN with `S = 1`: layer `l` at epoch `t` aggregates the boundary rows of epoch `t - 1` (and
# applies the boundary gradients returned in epoch `t - 1`). `stale-smooth` adds PipeGCN's moving average
# (`m <- g m + (1 - g) new`, `g = smoothing = 0.5`), which damps the error of the stale rows.
#
# **Time.** PipeGCN's transfers here are non-blocking: posted as soon as rows (or gradients) are ready and
# waited for one epoch later, when they are used, so they run while the worker computes. On this machine the
# transfer is a loopback copy between processes that share 2 cores with the computation, so there is little
# to hide and the overlap competes for the same cores: look at `s_per_epoch` and `wait_share`, but expect
# the accuracy column to be the interesting one.

# %% id="c04"
stale = compare(["sync", "stale"] if SMOKE else ["sync", "stale", "stale-smooth"], BASE)
stale.table[COLS + ["staleness_mean"]]

# %% id="c05"
vc.accuracy_vs_time_figure(stale.records(), cores=stale.results["sync"].cores,
                           title="PipeGCN vs synchronous: test accuracy per epoch")

# %% id="c06"
vc.staleness_figure(stale.records(), field="staleness_hist", title="Halo rows aggregated, by age",
                   xaxis_title="age of the rows (epochs)")

# %% [markdown] id="c07"
# ## 3 · Bounded staleness: skip what barely changed
#
# `bounded` (Sancus-like) keeps a copy of every boundary block on the receiver. Before each layer the sender
# compares the block with what it last sent: if the relative change is below `skip_threshold` (5 %) and the
# receiver's copy is at most `S = 4` epochs old, it sends a one-byte flag instead of the rows. So bytes drop,
# and the aggregated rows are between 0 and `S` epochs old. The table's `skipped_blocks` counts the skipped
# (layer, peer) blocks over all workers and epochs.
#
# **A trap worth seeing**: the rows a layer exchanges are computed from its *dropped-out* input, and dropout
# draws a new mask every epoch, so with `dropout=0.5` every block changes by far more than 5 % from one epoch to
# the next and nothing is ever skipped. The same rule without dropout (on both sides of the comparison, so the
# models match) does skip.

# %% id="c08"
runs = ["sync", ("bounded, dropout 0", {**PRESETS["bounded"], "dropout": 0.0})]
if not SMOKE:
    runs += ["bounded", ("sync, dropout 0", {"dropout": 0.0})]
bounded = compare(runs, BASE)  # "sync" is re-opened from the cache, not trained again
bounded.table[COLS + [c for c in ("staleness_mean", "staleness_max", "skipped_blocks") if c in bounded.table]]

# %% id="c09"
vc.accuracy_vs_bytes_figure(bounded.records(), bytes="halo", title="Accuracy against halo bytes moved")

# %% [markdown] id="c10"
# ## 4 · The parameter server: stale weights instead of a barrier
#
# With `sync="ps"` an extra process holds the weights and the optimiser. Each worker pushes its gradient and
# pulls weights **without waiting for the other workers**, as long as its weights are at most `s` rounds
# behind (stale synchronous parallel). `s = 0` is synchronous training again; `ps` uses `s = 2`. Each
# gradient's staleness (rounds between the weights it was computed on and the round that applies it) is in
# the records as `grad_staleness`. (The workers still exchange halo rows with each other in every layer, so
# they cannot drift far apart: watch how large the staleness really gets.)
#
# One more process means 3 processes here: on a 2-core machine that is **oversubscribed**, so part of any
# waiting is processes taking turns on a core, not the protocol.

# %% id="c11"
ps = compare(["sync", "ps"] if SMOKE else ["sync", ("ps s=0", {"sync": "ps", "staleness": 0}), "ps"], BASE)
ps.table[COLS + [c for c in ps.table.columns if "grad_staleness" in c]]

# %% id="c12"
vc.staleness_figure({k: v for k, v in ps.records().items() if k != "sync"}, field="grad_staleness_hist",
                    title="Gradient staleness at the parameter server", xaxis_title="rounds late")

# %% [markdown] id="c13"
# ## 5 · Stragglers: waiting or staleness
#
# Now worker 1 is made twice as slow (`straggler=[1, 2.0]`: after its own compute it sleeps as long again,
# inside its compute phase, like a slower CPU would). Synchronous training turns that delay into **waiting**
# for everyone else. The parameter server with `s = 2` is meant to let the fast worker run ahead and pay in
# **staleness** instead. Does it, when the workers also exchange halo rows in every layer? Compare the
# `wait_share` and `grad_staleness` columns, and the waiting bars per run below.

# %% id="c14"
strag = compare(["sync", "sync-straggler", "ps", "ps-straggler"], BASE)
cols = COLS + [c for c in ("straggler_s", "grad_staleness_mean", "grad_staleness_max") if c in strag.table]
strag.table[cols]

# %% id="c15"
from dgnn_lab.viz.training import comparison_figure

comparison_figure(strag.records(), cores=strag.results["sync"].cores,
                  title="Where the time goes with and without a straggler")

# %% [markdown] id="c16"
# ## 6 · Your own staleness rule, in one cell
#
# A halo strategy is a small class; a *staleness rule* is one method. Subclass `BoundedStaleHalo` and override
# `should_send(layer, peer, age, change)`: `age` is how many epochs old the receiver's copy would be if you skip,
# `change` the relative change of the block since it was last sent. Register it under a name and it becomes a
# configuration like the presets (its code travels to the worker processes over the launch channel, never
# through a file, so a notebook cell is enough). Change the rule and run again: the comparator notices the new
# code and trains it afresh. The same goes for every other axis: a partitioner, a sampler, a cache policy, a
# gradient-synchronisation rule, a codec (see the README's "Every axis is pluggable").

# %% id="c17"
from dgnn_lab.protocols.halo import BoundedStaleHalo, list_strategies, register_strategy


class EveryThird(BoundedStaleHalo):
    # refresh every boundary block every third epoch, whatever it did in between
    def should_send(self, layer, peer, age, change):
        return age >= 3


register_strategy("every-third", EveryThird)
print("registered strategies:", ", ".join(list_strategies()))

# %% [markdown] id="c18"
# The comparator: tick configurations, press **Run**; each trains live (the dashboard of notebook 03), then
# the comparison figures and the table appear. Configurations already run above load from the cache. The cell
# below also starts the ticked ones itself, so the notebook runs top to bottom; **Stop** interrupts the running
# configuration and skips the rest.

# %% id="c19"
from dgnn_lab.widgets.comparator import StrategyComparator

mine = {"sync": "sync", "stale": "stale", "bounded": "bounded", "bns-0.1": "bns-0.1",
        "every-third": {"mode": "full-stale", "staleness": 3, "halo": "every-third"}}
comparator = StrategyComparator(BASE, choices=mine, selected=["sync", "stale", "every-third"],
                                title="Your rule against the built-in ones")
comparator.run()
comparator

# %% id="c20"
result = comparator.wait()
result.table[COLS + [c for c in ("staleness_mean", "staleness_max", "skipped_blocks") if c in result.table]]

# %% [markdown] id="c21"
# ## What to look for
#
# What we measured with the full configuration (Cora, 2 workers, METIS, GCN with 16 hidden units, dropout
# 0.5, 200 epochs, one seed; yours will differ a little):
#
# | run | test acc. at best val. | halo bytes / epoch | what else |
# |---|---|---|---|
# | sync | 0.804 | 52,992 | |
# | stale (PipeGCN, S = 1) | 0.804 | 52,992 | rows' mean age 0.995 epochs (epoch 0 is fresh) |
# | stale-smooth | 0.808 | 52,992 | |
# | bounded, dropout 0.5 | 0.804 | 52,996 | **0 blocks skipped** (4 bytes of flags more) |
# | sync, dropout 0 | 0.800 | 52,992 | |
# | bounded, dropout 0 | 0.800 | 34,060 (64 %) | 569 blocks skipped, rows 1.73 epochs old on average, at most 4 (= S) |
# | every-third (your rule) | 0.800 | 35,376 (67 %) | 532 blocks skipped, rows at most 2 epochs old |
# | ps s = 0 | 0.804 | 52,992 | gradient staleness 0 |
# | ps (s = 2) | 0.813 | 52,992 | gradient staleness 0.50 on average, at most 1 |
#
# * **One epoch of staleness cost nothing measurable on Cora**: PipeGCN with and without smoothing ends where
#   synchronous training does (with one seed, a point either way is noise). Staleness leaves the bytes
#   unchanged; it changes *when* they must arrive.
# * **Skipping needs rows that settle.** With dropout the exchanged rows change completely every epoch and the
#   5 % rule never fires; without dropout it skips a third of the halo bytes at no accuracy cost here. A
#   hand-written rule (refresh every third epoch) does about the same, in one cell.
# * **The parameter server is not free in bytes**: each worker pushes a whole gradient and pulls whole weights,
#   422,128 training bytes an epoch against 237,496 for the all-reduce (which at 2 workers sends each worker's
#   gradient once). `s = 0` reproduced the synchronous accuracy (0.804); with `s = 2` no gradient was ever more
#   than 1 round late, because the halo exchange keeps the workers in step every layer.
# * **Stragglers**: with worker 1 twice as slow, its compute time doubled (112.9 s against worker 0's 56.8 s
#   over 200 epochs) and worker 0 **waited** 80.2 s instead of 9.5 s: the share of epoch time spent waiting
#   rose from 13 % to 34 %. With the parameter server the fast worker waited just as much (34 %, from 21 %),
#   and the gradient staleness did not grow: in full-graph training the per-layer halo exchange (and the
#   evaluation every epoch) couples the workers, so an asynchronous optimiser alone cannot let the fast one
#   run ahead. That needs training that does not exchange halos, like the local SGD of notebook 06.
#
# **About time.** These runs were measured while other jobs kept this 2-core machine busy: the same
# synchronous configuration took 0.32 s and 0.54 s per epoch in two runs, so we read no speed-up or slow-down
# into `s_per_epoch` differences smaller than that. The waiting *shares* above compare workers within one run,
# which is fairer. With the parameter server there are 3 processes on 2 cores (oversubscribed): part of any
# waiting is then processes taking turns on a core, not the protocol.
