"""The telemetry record schema, and every statistic of a run derived from it.

Workers, the runtime and the launcher emit *records*: plain JSON dicts. Every record has ``type`` (one of
:data:`RECORD_TYPES`, or a tool's own, e.g. ``variant_done``), ``rank`` (the emitting worker; ``None`` for the
launcher) and ``time`` (wall clock, ``time.time()`` seconds; ``WorkerContext.emit`` adds rank and time).
Records are made JSON-able once, in the worker (``dgnn_lab.dist.telemetry.jsonable``): dict keys become
strings (peers ``"0"``, layers ``"1"``, ages ``"2"``), tuples become lists, tensors and numpy numbers become
numbers, so a live callback and :meth:`dgnn_lab.dist.RunResult.load` see the same dicts. A record may carry
a tag of the tool that ran several configurations in one launch: ``case`` (``dist.testing.TaggedContext``,
benchmarks) or ``variant`` (``experiments.studies.run_variants``).

Units: seconds (``*_s``, measured on the worker's own monotonic clock), bytes (``*bytes*``, wire sizes
counted at the communicator), rows (``*rows*``: feature or embedding rows), fractions in [0, 1] (``*_acc``).

``ready``: the runtime (``dist.context.init_worker``), once per worker after the rendezvous.
    pid, host, backend (``gloo``/``nccl``), device (``"cpu"``, ``"cuda:0"``), num_threads (torch threads),
    world_size, local_rank, cores (CPU cores this process may use), oversubscribed (bool: local workers x
    threads > cores), init_s (rendezvous seconds), rendezvous (the address joined).

``start``: the worker loop (``execution.loop``), once per worker before epoch 0; it also gets the ``ready``
    facts (pid, host, backend, device, num_threads, world_size, local_rank, cores, oversubscribed). Always:
    model, execution (the execution model's name), setup_s (reading its part of the plan, model, state).
    Full-graph (``execution.full_graph``): num_owned, num_halo (rows), num_local_edges,
    num_train, partition (method), model, exchange_widths (floats per row, per layer), backward_layers (bool
    per layer: its gradient travels back). Local SGD (``execution.local_sgd``): num_owned, num_halo,
    num_local_edges (of the cut graph), cut_edges_dropped, num_train, partition, model, local_sgd_period,
    sync (the gradient synchronisation's name: averaging or ps). Mini-batch (``execution.minibatch``):
    num_owned, num_halo (remote candidate nodes),
    num_local_edges, num_train (this worker's seeds), seeds_local (of them, owned by this worker),
    steps_per_epoch, partition, model, cache_policy (its name), cache_rows, cache_nbytes (bytes),
    cache_fill_rows. Parameter server
    (``protocols.param_server``): role ``"server"``, num_params, staleness_bound.

``epoch``: the training entry, once per worker per epoch, built by :func:`epoch_record`.
    epoch (int, from 0), epoch_s (this worker's wall time of the epoch), compute_s / comm_s / wait_s (the
    communicator's phases), bytes_sent / bytes_recv ``{peer: {purpose: bytes}}`` (string peers; purposes
    such as ``halo_fwd/L0``, ``halo_bwd/L1``, ``grad_allreduce``, ``model_avg``, ``ps_push``, ``ps_pull``,
    ``ps_control``, ``fetch_req``, ``fetch_resp``, ``sample_req``, ``sample_resp``, ``metrics``, ``eval`` and
    ``eval_*``), events ``[[phase, t0, t1], ...]`` (seconds since the epoch's start; phase ``compute``,
    ``comm`` or ``wait``), loss (the global mean training loss; local SGD: this worker's own, with
    ``global_loss`` at averaging epochs), train_acc / val_acc / test_acc (global; None when the epoch was not
    evaluated), peak_mem_bytes (CUDA max allocated, else the process's peak RSS), cpu_s (the process's CPU
    seconds in the epoch, all its threads: beside epoch_s it tells work from waiting for a core), work (the
    epoch's training work counted exactly, :data:`WORK_KEYS`: ``rows`` and ``edges`` per layer (rows whose
    aggregate the worker computed, graph edges it aggregated; mini-batch: summed over steps), halo_rows_sent /
    halo_rows_recv (forward rows through the communicator: :data:`FORWARD_ROW_PREFIXES`), mini-batch
    sampled_nodes / sampled_edges; evaluation work is not counted).
    Halo protocols (full-graph): fwd_rows ``{layer: rows}`` (halo rows this worker sent in the forward),
    staleness_hist ``{age in epochs: rows}`` (age of the halo rows its layers aggregated, all layers),
    staleness (their mean age; None without halo rows), skipped_blocks (bounded staleness: blocks not resent).
    A straggler: straggler_s (injected delay). Gradients through a parameter server (worker side):
    grad_staleness (rounds late), grad_staleness_hist ``{rounds: gradients}``, ps_version. Local SGD:
    global_loss, averaged (bool), weights_checksum.
    Mini-batch: steps, the epoch's sums of the step fields (sample_s, fetch_s, train_s, queue_s,
    remote_requests, remote_rows_fetched, cache_hits, cache_lookups, sample_requests, sample_remote_nodes),
    loop_s (wall time of the step loop), overlap_s (stage seconds hidden by pipelining: sample + fetch +
    train - loop_s) and, pipelined, prefetch_comm_s / prefetch_wait_s (the prefetch communicator's phases;
    its bytes are already in bytes_sent / bytes_recv).
    A parameter server's records (role ``"server"``, one per round of gradients it applied): epoch (the
    round), epoch_s (since the previous round), loss None, version, server_staleness_hist ``{age:
    gradients}``, pending (workers waiting for a newer version); compute_s, comm_s, wait_s, the bytes and
    events only on the last of the rounds applied at once.

``step``: the mini-batch worker, once per step. epoch, step, sample_s, fetch_s, train_s (wait_s is its
    tail), wait_s, queue_s (waiting for the prefetcher), remote_requests, remote_rows_fetched, cache_hits,
    cache_lookups, seeds, input_nodes (nodes whose features the step read), sample_t0 / fetch_t0 /
    train_t0 / wait_t0 (stage starts, seconds since the worker's clock origin). Under a parameter server the
    epoch record adds grad_staleness (the last step's), grad_staleness_hist (every step's) and ps_version.

``done``: the entry's, or the runtime's once the entry returned, with the dict it returned (epochs_run; a
    parameter server: role, rounds, staleness_total).

``error``: the runtime, for a worker's exception: traceback, exception (``"Type: message"``), peer_failure
    (bool: a broken or timed-out collective, probably the consequence of another rank's failure).

``stopped``: a worker that ended early on request: an entry honouring ``should_stop()`` (epoch), or a
    torchrun worker that was signalled (signal).

``run``: the launcher (rank None), first with status ``running``, last with the final status (``done``,
    ``failed``, ``interrupted``): world_size, cores, backend, num_threads, oversubscribed, entry, config,
    run_dir, and on the last one elapsed_s and error (``{rank, exitcode, traceback}`` or None).

Every function below takes a plain list (or iterable) of such records, live or re-read from a run's JSONL,
and derives one statistic; :func:`summary` is the summary of ``RunResult.summary()`` and ``dgnn-lab train
--json``.

Training traffic apart from evaluation traffic: every sent byte is exactly one of two *traffics*
(:func:`traffic_of`, the one rule): ``eval``, the evaluation's halo exchanges, fetches and counts (purposes
``eval`` and ``eval_*``), and ``train``, everything else (the loss/stop ``metrics`` included). So
``train_bytes + eval_bytes == total_bytes`` exactly (:func:`split_bytes`, :func:`summary`); figures and reports
show training traffic by default and evaluation traffic apart (runs evaluate at different rates, and evaluation
can move more bytes than training).

Only the standard library and numpy are imported here (pandas inside the functions that return DataFrames), so
workers and figures can import this module freely.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported on use: worker processes never pay for it
    import pandas as pd

__all__ = [
    "ACCURACIES", "BYTES_KINDS", "EPOCH_SCALARS", "EVAL_PREFIX", "HALO_PREFIX", "MINIBATCH_SUMS", "NOT_TRAINING",
    "PHASES", "RECORD_TYPES", "TRAFFIC", "TRAFFIC_LABELS",
    "age_histogram", "best_val", "bytes_by_epoch", "bytes_by_purpose", "bytes_frame", "bytes_matrix",
    "bytes_per_epoch", "bytes_table", "cache_hit_rate", "check_bytes_kind", "check_records", "check_traffic",
    "FORWARD_ROW_PREFIXES", "WORK_KEYS", "cores_of", "counts_as", "cpu_imbalance", "epoch_curves", "epoch_work",
    "epoch_numbers", "epoch_record", "epoch_records", "epoch_seconds", "epoch_table", "field_counts", "field_total",
    "format_bytes", "forward_rows_per_layer", "grad_staleness", "halo_bytes", "halo_staleness", "imbalance",
    "last_value", "local_seed_share", "median", "minibatch_metrics", "oversubscribed", "per_epoch_means",
    "phase_totals", "purpose_group", "record_bytes", "records_by_epoch", "s_per_epoch", "server_epoch_records",
    "server_ranks", "split_bytes", "staleness_summary", "summary", "test_acc_at_best_val", "threads_of",
    "total_bytes", "traffic_of", "training_bytes", "wait_share", "work_imbalance", "work_totals",
    "worker_epoch_records", "worker_totals",
    "world_size_of",
]

Record = Mapping[str, Any]

RECORD_TYPES = ("ready", "start", "epoch", "step", "done", "error", "stopped", "run")
PHASES = ("compute", "comm", "wait")
ACCURACIES = ("train_acc", "val_acc", "test_acc")
#: The scalar columns of :func:`epoch_table`, first and in this order.
EPOCH_SCALARS = ("epoch_s", "compute_s", "comm_s", "wait_s", "loss", "train_acc", "val_acc", "test_acc",
                 "peak_mem_bytes")
#: Per-worker sums :func:`worker_totals` reports when the epoch records carry them (mini-batch training).
MINIBATCH_SUMS = ("sample_s", "fetch_s", "train_s", "overlap_s", "remote_rows_fetched", "remote_requests")
#: Which sent bytes count: ``total`` (everything), ``training`` (all but evaluation and the loss/stop metrics:
#: what training itself needs, for comparing protocols) or ``halo`` (halo rows and their gradients).
BYTES_KINDS = ("total", "training", "halo")
HALO_PREFIX = "halo_"
#: Purposes of evaluation traffic start with this: ``eval`` (counts all-reduced, full-graph halo exchanges of
#: an evaluation) and ``eval_*`` (mini-batch evaluation's ``eval_fetch_*``, ``eval_sample_*``).
EVAL_PREFIX = "eval"
_METRICS = "metrics"
NOT_TRAINING = (EVAL_PREFIX, _METRICS)
#: The traffics a byte can be asked for by: ``train`` (training: every purpose but evaluation's), ``eval``
#: (evaluation: purposes starting with :data:`EVAL_PREFIX`) or ``all`` (both). See :func:`traffic_of`.
TRAFFIC = ("train", "eval", "all")
#: How reports and figures name each traffic.
TRAFFIC_LABELS = {"train": "training", "eval": "evaluation", "all": "training + evaluation"}
#: The keys of an epoch record's ``work`` (per-layer lists for rows and edges, integers for the rest).
WORK_KEYS = ("rows", "edges", "halo_rows_sent", "halo_rows_recv", "sampled_nodes", "sampled_edges")
#: Purposes whose rows are the forward pass's halo: edge-cut halo rows, vertex-cut broadcasts and partial-sum
#: reductions, mini-batch remote feature rows.
FORWARD_ROW_PREFIXES = ("halo_fwd/", "halo_reduce/", "fetch_resp")
_STAT_KEYS = ("compute_s", "comm_s", "wait_s", "bytes_sent", "bytes_recv", "events")
_NOT_COLUMNS = ("type", "time", "bytes_sent", "bytes_recv", "events")


# ----------------------------------------------------------------------------------------- the schema

def epoch_record(epoch: int, epoch_s: float, stats: Mapping | None, **fields: Any) -> dict:
    """The ``epoch`` record of one worker's epoch: ``type``, ``epoch``, ``epoch_s``, the communicator's
    ``stats`` (``Communicator.take_epoch_stats()``: compute_s, comm_s, wait_s, bytes_sent, bytes_recv,
    events; the keys it has), then ``fields`` (loss, accuracies, peak_mem_bytes, protocol fields, ...).

    ``stats["forks"]``, a list of ``{"comm_s", "wait_s"}`` of forked (prefetch) communicators, adds their
    sums as ``prefetch_comm_s`` / ``prefetch_wait_s`` (their bytes are expected in the stats' own). Peers
    become strings, as in every record. ``fields`` may not repeat what ``stats`` provides (``ValueError``):
    one source per key."""
    stats = dict(stats or {})
    clash = sorted({"type", "epoch", "epoch_s", "prefetch_comm_s", "prefetch_wait_s", *_STAT_KEYS} & set(fields))
    if clash:
        raise ValueError(f"epoch_record: {', '.join(clash)} come from epoch, epoch_s and stats, not from fields")
    rec: dict = {"type": "epoch", "epoch": int(epoch), "epoch_s": float(epoch_s)}
    for k in PHASES:
        if f"{k}_s" in stats:
            rec[f"{k}_s"] = float(stats[f"{k}_s"])
    rec.update(fields)
    for k in ("bytes_sent", "bytes_recv"):
        if k in stats:
            rec[k] = {str(q): {str(p): int(n) for p, n in per.items()} for q, per in stats[k].items()}
    if "events" in stats:
        rec["events"] = [[str(ph), float(t0), float(t1)] for ph, t0, t1 in stats["events"]]
    forks = stats.get("forks")
    if forks:
        rec["prefetch_comm_s"] = sum(float(f.get("comm_s") or 0.0) for f in forks)
        rec["prefetch_wait_s"] = sum(float(f.get("wait_s") or 0.0) for f in forks)
    return rec


def epoch_work(work: Mapping | None, rows: Mapping[str, Any]) -> dict:
    """An epoch record's ``work``: the execution model's counts plus, unless it gave them, the forward halo
    rows sent and received, from the communicator's ``{purpose: [sent, received]}`` row counts."""
    out = {k: (list(v) if isinstance(v, (list, tuple)) else int(v)) for k, v in (work or {}).items()}
    fwd = [v for p, v in rows.items() if p.startswith(FORWARD_ROW_PREFIXES)]
    out.setdefault("halo_rows_sent", sum(int(v[0]) for v in fwd))
    out.setdefault("halo_rows_recv", sum(int(v[1]) for v in fwd))
    return out


def check_records(records: Iterable[Record]) -> list[Record]:
    """``records`` as a list; ``ValueError`` for an item that is not a record (a dict with a ``type``)."""
    out = list(records)
    for i, r in enumerate(out):
        if not isinstance(r, Mapping) or "type" not in r:
            raise ValueError(f"record {i} is not a telemetry record (a dict with a 'type' key): {r!r:.80}")
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _num(v: Any) -> float:
    """A record's number, 0.0 where it is missing (None or NaN)."""
    return float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else 0.0


def _order(r: Record) -> tuple:
    e, p = r.get("epoch"), r.get("rank")
    return (e is None, e if e is not None else 0, p is None, p if p is not None else 0)


def epoch_records(records: Iterable[Record]) -> list[Record]:
    """The ``epoch`` records, sorted by epoch, then rank (stable)."""
    return sorted((r for r in check_records(records) if r["type"] == "epoch"), key=_order)


def server_ranks(records: Iterable[Record], workers: int | None = None) -> set[int]:
    """Ranks that are parameter servers: those with a ``role: "server"`` record, and, when the number of
    training ``workers`` is given (``config["workers"]``), every rank from there on."""
    recs = check_records(records)
    ranks = {int(r["rank"]) for r in recs if isinstance(r.get("rank"), int)}
    out = {int(r["rank"]) for r in recs if r.get("role") == "server" and isinstance(r.get("rank"), int)}
    if isinstance(workers, int):
        out |= {p for p in ranks if p >= workers}
    return out


def worker_epoch_records(records: Iterable[Record], workers: int | None = None) -> list[Record]:
    """The epoch records of the training workers (not of a parameter server; see :func:`server_ranks`)."""
    recs = check_records(records)
    servers = server_ranks(recs, workers)
    return [r for r in epoch_records(recs) if r.get("rank") not in servers]


def server_epoch_records(records: Iterable[Record], workers: int | None = None) -> list[Record]:
    """The epoch records of parameter servers (one per applied round)."""
    recs = check_records(records)
    servers = server_ranks(recs, workers)
    return [r for r in epoch_records(recs) if r.get("rank") in servers]


def epoch_numbers(records: Iterable[Record]) -> list[int]:
    """The epochs the training workers reported, sorted (a server's rounds alone do not make an epoch)."""
    return sorted({int(r["epoch"]) for r in worker_epoch_records(records) if r.get("epoch") is not None})


def records_by_epoch(records: Iterable[Record]) -> dict[int, list[Record]]:
    """Every epoch record (a server's too) by epoch number, for each of :func:`epoch_numbers`, in order."""
    recs = check_records(records)
    out: dict[int, list[Record]] = {e: [] for e in epoch_numbers(recs)}
    for r in epoch_records(recs):
        if r.get("epoch") is not None and int(r["epoch"]) in out:
            out[int(r["epoch"])].append(r)
    return out


def _steady(items: list) -> list:
    """``items`` without the first when there are more than two: epoch 0 pays one-off costs (warm-up)."""
    return items[1:] if len(items) > 2 else items


# ------------------------------------------------------------------------------------------ the run

def world_size_of(records: Iterable[Record], world_size: int | None = None) -> int:
    """Number of processes: ``world_size`` if given, else from ``run``/``start`` records, else the highest rank
    seen (as a sender, or as a peer in ``bytes_sent``/``bytes_recv``: the first record of a live run can name
    peers whose own records have not arrived yet) + 1."""
    if world_size is not None:
        if int(world_size) < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        return int(world_size)
    best = 0
    for r in check_records(records):
        if "world_size" in r and r["world_size"]:
            best = max(best, int(r["world_size"]))
        if r.get("rank") is not None:
            best = max(best, int(r["rank"]) + 1)
        for key in ("bytes_sent", "bytes_recv"):
            if isinstance(r.get(key), dict) and r[key]:
                best = max(best, max(int(q) for q in r[key]) + 1)
    return max(best, 1)


def cores_of(records: Iterable[Record]) -> int | None:
    """CPU cores the launcher saw, from its ``run`` record (None while the run has not reported it)."""
    for r in check_records(records):
        if r["type"] == "run" and r.get("cores"):
            return int(r["cores"])
    return None


def threads_of(records: Iterable[Record]) -> int | None:
    """Torch threads per worker, from the launcher's ``run`` record or the workers' ``start`` records."""
    found = None
    for r in check_records(records):
        if r["type"] in ("run", "start") and r.get("num_threads"):
            found = max(found or 0, int(r["num_threads"]))
    return found


def oversubscribed(world_size: int, cores: int | None, threads: int | None) -> bool | None:
    """More busy threads than cores (``world_size * threads > cores``); None when cores or threads are unknown."""
    if cores is None or threads is None:
        return None
    return world_size * threads > cores


# ------------------------------------------------------------------------------------------ bytes

def format_bytes(n: float | None) -> str:
    """Bytes in decimal units, as network speeds are quoted (1 kB = 1000 B): ``1234567 -> '1.23 MB'``,
    ``999 -> '999 B'``, three significant digits; None -> ``'n/a'``. The one byte format of every report."""
    if n is None:
        return "n/a"
    n = float(n)
    for unit in ("B", "kB", "MB"):
        text = f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        if abs(float(text.split()[0])) < 1000:  # 999.9 kB rounds up to '1 MB', not to '1e+03 kB'
            return text
        n /= 1000
    return f"{n:.3g} GB"


def check_bytes_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`BYTES_KINDS`, else ``ValueError``."""
    if kind not in BYTES_KINDS:
        raise ValueError(f"bytes must be one of {', '.join(BYTES_KINDS)}, got {kind!r}")
    return kind


def traffic_of(purpose: str) -> str:
    """``"eval"`` for a purpose of evaluation traffic (starting with :data:`EVAL_PREFIX`: ``eval``,
    ``eval_fetch_resp``, ...), else ``"train"``: the one rule that splits a run's bytes (:func:`split_bytes`)."""
    return "eval" if purpose.startswith(EVAL_PREFIX) else "train"


def check_traffic(traffic: str) -> str:
    """``traffic`` if it is one of :data:`TRAFFIC`, else ``ValueError``."""
    if traffic not in TRAFFIC:
        raise ValueError(f"traffic must be one of {', '.join(TRAFFIC)}, got {traffic!r}")
    return traffic


def counts_as(purpose: str, kind: str) -> bool:
    """Whether bytes sent for ``purpose`` count as ``kind`` (see :data:`BYTES_KINDS`). ``training`` is the
    ``train`` traffic (:func:`traffic_of`) without the loss/stop ``metrics``."""
    if check_bytes_kind(kind) == "halo":
        return purpose.startswith(HALO_PREFIX)
    if kind == "training":
        return traffic_of(purpose) == "train" and not purpose.startswith(_METRICS)
    return True


def _keep(purpose: str, kind: str, purpose_prefix: str | None, traffic: str = "all") -> bool:
    return (counts_as(purpose, kind) and (purpose_prefix is None or purpose.startswith(purpose_prefix))
            and (traffic == "all" or traffic_of(purpose) == traffic))


def record_bytes(record: Record, direction: str = "sent", purpose_prefix: str | None = None,
                 kind: str = "total", *, traffic: str = "all") -> int:
    """Bytes one record sent (``direction="sent"``) or received (``"recv"``), all peers, the purposes that
    start with ``purpose_prefix``, count as ``kind`` and are of ``traffic`` (:data:`TRAFFIC`)."""
    check_traffic(traffic)
    d = record.get(f"bytes_{direction}")
    if not isinstance(d, dict):
        return 0
    return int(sum(int(n) for per in d.values() if isinstance(per, dict)
                   for purpose, n in per.items() if _keep(purpose, kind, purpose_prefix, traffic)))


def bytes_matrix(records: Iterable[Record], world_size: int | None = None,
                 purpose_prefix: str | None = None, *, traffic: str = "all") -> np.ndarray:
    """``P x P`` int64 matrix of bytes sent over all epoch records: row = sender, column = receiver.

    Counted from each sender's ``bytes_sent``; only purposes starting with ``purpose_prefix`` when given
    (e.g. ``"halo_"``, ``"halo_fwd"``, ``"grad_allreduce"``) and of ``traffic`` (``train``, ``eval``;
    ``all`` by default). ``P`` is :func:`world_size_of`. :func:`bytes_frame` is its labelled table."""
    check_traffic(traffic)
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    m = np.zeros((size, size), dtype=np.int64)
    for r in epoch_records(recs):
        p = int(r["rank"])
        for peer, by_purpose in (r.get("bytes_sent") or {}).items():
            q = int(peer)
            if not (0 <= p < size and 0 <= q < size):
                raise ValueError(f"bytes from worker {p} to {q} outside a world of {size} workers")
            for purpose, n in by_purpose.items():
                if (purpose_prefix is None or purpose.startswith(purpose_prefix)) and (
                        traffic == "all" or traffic_of(purpose) == traffic):
                    m[p, q] += int(n)
    return m


def bytes_frame(records: Iterable[Record], world_size: int | None = None, traffic: str = "train",
                purpose_prefix: str | None = None) -> pd.DataFrame:
    """:func:`bytes_matrix` as a labelled table: index ``sender`` (rank), columns ``receiver`` (rank), bytes
    sent over the run; ``traffic="train"`` (training traffic, the default), ``"eval"`` or ``"all"``."""
    import pandas as pd

    m = bytes_matrix(records, world_size, purpose_prefix, traffic=traffic)
    ranks = range(len(m))
    return pd.DataFrame(m, index=pd.Index(ranks, name="sender"), columns=pd.Index(ranks, name="receiver"))


def total_bytes(records: Iterable[Record], purpose_prefix: str | None = None, *, traffic: str = "all") -> int:
    """Bytes sent by every process over all epoch records (purposes starting with ``purpose_prefix``, of
    ``traffic``: ``all`` by default, ``train`` or ``eval``)."""
    return sum(record_bytes(r, "sent", purpose_prefix, traffic=traffic) for r in epoch_records(records))


def split_bytes(records: Iterable[Record]) -> dict[str, int]:
    """The run's sent bytes (every process, every epoch record) by traffic: ``{"train": ..., "eval": ...}``
    (:func:`traffic_of`); the two sum to :func:`total_bytes` exactly. :func:`summary`, the CLI report, the
    dashboard and ``RunResult.split_bytes()`` all take the split from here."""
    out = {"train": 0, "eval": 0}
    for r in epoch_records(records):
        for per in (r.get("bytes_sent") or {}).values():
            if isinstance(per, dict):
                for purpose, n in per.items():
                    out[traffic_of(purpose)] += int(n)
    return out


def halo_bytes(records: Iterable[Record]) -> int:
    """Halo bytes sent: forward rows and their returned gradients (purposes ``halo_*``)."""
    return total_bytes(records, HALO_PREFIX)


def training_bytes(records: Iterable[Record]) -> int:
    """Bytes training itself sends, for comparing protocols: the ``train`` traffic of :func:`split_bytes`
    without the loss/stop ``metrics`` (kind ``training``; their all-reduce happens at sync points, which
    protocols place differently)."""
    return sum(record_bytes(r, "sent", kind="training") for r in epoch_records(records))


def bytes_by_epoch(records: Iterable[Record], kind: str = "total") -> list[int]:
    """Bytes of ``kind`` sent per epoch (of :func:`epoch_numbers`) by every process together."""
    check_bytes_kind(kind)
    return [sum(record_bytes(r, "sent", kind=kind) for r in recs) for recs in records_by_epoch(records).values()]


def bytes_per_epoch(records: Iterable[Record], kind: str = "total") -> float:
    """Bytes of ``kind`` sent by every process over the run, per epoch (0.0 for a run without epochs)."""
    recs = check_records(records)
    total = sum(record_bytes(r, "sent", kind=check_bytes_kind(kind)) for r in epoch_records(recs))
    return total / max(len(epoch_numbers(recs)), 1)


def purpose_group(purpose: str) -> str:
    """The group a purpose is shown in: halo forward, halo backward, halo, gradient all-reduce, evaluation
    (every purpose of the ``eval`` traffic: :func:`traffic_of`), metrics, or the purpose itself."""
    if traffic_of(purpose) == "eval":
        return "evaluation"
    if purpose.startswith("halo_fwd"):
        return "halo forward"
    if purpose.startswith("halo_bwd"):
        return "halo backward"
    if purpose.startswith("halo"):
        return "halo"
    return {"grad_allreduce": "gradient all-reduce", "metrics": "metrics"}.get(purpose, purpose)


def bytes_by_purpose(records: Iterable[Record], *, group: bool = True) -> dict[str, int]:
    """Total bytes sent by every process, by :func:`purpose_group` (``group=False``: by purpose)."""
    out: dict[str, int] = {}
    for r in epoch_records(records):
        for by_purpose in (r.get("bytes_sent") or {}).values():
            for purpose, n in by_purpose.items():
                g = purpose_group(purpose) if group else purpose
                out[g] = out.get(g, 0) + int(n)
    return out


# ------------------------------------------------------------------------------------------ time

def _column(recs: list[Record], key: str) -> np.ndarray:
    """``key`` of every record, 0.0 where missing, in the records' order (numpy sums it like pandas would)."""
    return np.array([_num(r.get(key)) for r in recs], dtype=float)


def field_total(records: Iterable[Record], key: str) -> float | None:
    """``key`` summed over every epoch record (missing = 0); None when no record carries a number there."""
    eps = epoch_records(records)
    if not any(_is_number(r.get(key)) for r in eps):
        return None
    return float(_column(eps, key).sum())


def phase_totals(records: Iterable[Record], world_size: int | None = None) -> dict[str, np.ndarray]:
    """Seconds per process summed over its epoch records: ``compute``, ``comm``, ``wait``, ``epoch``,
    ``untimed``, and ``epochs`` (its epoch records). ``untimed`` is ``epoch - (compute + comm + wait)``
    (clipped at 0): time inside the epoch that no phase covered."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    mine: list[list[Record]] = [[] for _ in range(size)]
    for r in epoch_records(recs):
        p = int(r["rank"])
        if p >= size:
            raise ValueError(f"epoch record from rank {p}, but world_size is {size}")
        mine[p].append(r)
    out = {k: np.array([_column(d, f"{k}_s").sum() for d in mine], dtype=float) for k in (*PHASES, "epoch")}
    out["untimed"] = np.clip(out["epoch"] - out["compute"] - out["comm"] - out["wait"], 0.0, None)
    out["epochs"] = np.array([len(d) for d in mine], dtype=np.int64)
    return out


def worker_totals(records: Iterable[Record], world_size: int | None = None) -> list[dict]:
    """Per process (rank 0 .. P-1): ``rank``, ``role: "server"`` for a parameter server, compute_s, comm_s,
    wait_s, epoch_s, cpu_s (None without CPU times), bytes_sent, bytes_recv summed over its epochs, its sent
    bytes split (:func:`split_bytes`) into train_bytes + eval_bytes (== bytes_sent), ``work`` (its
    :func:`work_totals` per epoch: edges, rows, halo rows, ... aggregated in one epoch on average), and the
    :data:`MINIBATCH_SUMS` it recorded."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    t = phase_totals(recs, size)
    servers = server_ranks(recs)
    mine: dict[int, list[Record]] = {}
    for r in epoch_records(recs):
        mine.setdefault(int(r["rank"]), []).append(r)
    work = work_totals(recs, size)
    out = []
    for rank in range(size):
        d = mine.get(rank, [])
        split = split_bytes(d)
        n = max(work[rank]["epochs"], 1)
        cpu = [float(r["cpu_s"]) for r in d if _is_number(r.get("cpu_s"))]
        w = {"rank": rank, **({"role": "server"} if rank in servers else {}),
             **{f"{k}_s": float(t[k][rank]) for k in PHASES}, "epoch_s": float(t["epoch"][rank]),
             "cpu_s": sum(cpu) if cpu else None,
             "work": {k: v / n for k, v in work[rank].items() if k in WORK_KEYS},
             "bytes_sent": sum(record_bytes(r, "sent") for r in d),
             "bytes_recv": sum(record_bytes(r, "recv") for r in d),
             "train_bytes": split["train"], "eval_bytes": split["eval"]}
        for k in MINIBATCH_SUMS:  # mini-batch epoch records carry stage times and fetch counts
            if any(_is_number(r.get(k)) for r in d):
                w[k] = float(_column(d, k).sum()) if k.endswith("_s") else sum(int(_num(r.get(k))) for r in d)
        out.append(w)
    return out


def _work_value(v: Any) -> float:
    return float(sum(_num(x) for x in v)) if isinstance(v, (list, tuple)) else _num(v)


def work_totals(records: Iterable[Record], world_size: int | None = None) -> list[dict]:
    """Per process (rank 0 .. P-1), its work summed over epochs: every :data:`WORK_KEYS` entry its records
    carry (per-layer lists summed over layers), plus ``epochs``. Counts, not times: machine-independent."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    out = [{"rank": p, "epochs": 0} for p in range(size)]
    for r in epoch_records(recs):
        p = int(r["rank"])
        if p >= size:
            raise ValueError(f"epoch record from rank {p}, but world_size is {size}")
        out[p]["epochs"] += 1
        for k, v in (r.get("work") or {}).items():
            if k in WORK_KEYS:
                out[p][k] = out[p].get(k, 0) + int(_work_value(v))
    return out


def _ratio(values: list[float]) -> float | None:
    arr = np.array(values, dtype=float)
    return float(arr.max() / arr.mean()) if len(arr) and arr.mean() > 0 else None


def work_imbalance(records: Iterable[Record], world_size: int | None = None, key: str = "edges") -> float | None:
    """Max over mean, over the training workers, of the edges they aggregated (``key``: any
    :data:`WORK_KEYS` entry): the imbalance of the work itself, whatever the machine. With an edge-cut plan
    and full-graph training it equals the plan's edge balance (:func:`dgnn_lab.partition.plan_work`);
    None when the records carry no such count."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    servers = server_ranks(recs)
    tot = [w for w in work_totals(recs, size) if w["rank"] not in servers]
    if not tot or any(key not in w for w in tot):
        return None
    return _ratio([w[key] for w in tot])


def cpu_imbalance(records: Iterable[Record], world_size: int | None = None) -> float | None:
    """Max over mean CPU seconds (``cpu_s``) of the training workers; None when the records carry none."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    servers = server_ranks(recs)
    cpu = [0.0] * size
    seen = False
    for r in epoch_records(recs):
        if _is_number(r.get("cpu_s")) and int(r["rank"]) < size:
            cpu[int(r["rank"])] += float(r["cpu_s"])
            seen = True
    return _ratio([c for p, c in enumerate(cpu) if p not in servers]) if seen else None


def imbalance(records: Iterable[Record], world_size: int | None = None) -> float | None:
    """Max over mean compute seconds of the training workers (a parameter server left out); None without
    compute time."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    t, servers = phase_totals(recs, size), server_ranks(recs)
    compute = np.array([t["compute"][p] for p in range(size) if p not in servers], dtype=float)
    return float(compute.max() / compute.mean()) if len(compute) and compute.mean() > 0 else None


def epoch_seconds(records: Iterable[Record]) -> list[float | None]:
    """Per epoch, the slowest process's ``epoch_s`` (what a synchronous epoch costs); None if untimed."""
    out = []
    for recs in records_by_epoch(records).values():
        secs = [float(r["epoch_s"]) for r in recs if _is_number(r.get("epoch_s"))]
        out.append(max(secs) if secs else None)
    return out


def median(values: Iterable[float | None]) -> float | None:
    """The (upper) median of the values that are not None: ``sorted(v)[len(v) // 2]``; None for none."""
    vals = sorted(float(v) for v in values if v is not None)
    return vals[len(vals) // 2] if vals else None


def s_per_epoch(records: Iterable[Record]) -> float | None:
    """Median of the per-epoch slowest-worker times, leaving out the first epoch when a run has more than
    two (it pays one-off costs)."""
    return median(_steady([s for s in epoch_seconds(records) if s is not None]))


def wait_share(records: Iterable[Record], workers: int | None = None) -> float | None:
    """The training workers' waiting over their epoch time (a parameter server, which mostly waits by design,
    is left out: see :func:`server_ranks`); None without epoch time."""
    eps = worker_epoch_records(records, workers)
    epoch_total, wait_total = float(_column(eps, "epoch_s").sum()), float(_column(eps, "wait_s").sum())
    return wait_total / epoch_total if epoch_total > 0 else None


def per_epoch_means(records: Iterable[Record], world_size: int | None = None) -> dict:
    """What an epoch costs, the first left out when there are more than two: ``compute`` / ``comm`` /
    ``wait`` seconds per epoch averaged over the processes, ``bytes`` ``{purpose group: bytes sent per epoch
    by all}``, ``skipped_epochs`` (0 or 1) and ``epochs`` (the epochs averaged over)."""
    recs = check_records(records)
    size = world_size_of(recs, world_size)
    epochs = epoch_numbers(recs)
    kept_epochs = set(_steady(epochs))
    kept = [r for r in epoch_records(recs) if r.get("epoch") is not None and int(r["epoch"]) in kept_epochs]
    n = max(len(kept_epochs), 1)
    out: dict[str, Any] = {k: sum(_num(r.get(f"{k}_s")) for r in kept) / n / size for k in PHASES}
    groups: dict[str, float] = {}
    for r in kept:
        for by_purpose in (r.get("bytes_sent") or {}).values():
            for purpose, b in by_purpose.items():
                g = purpose_group(purpose)
                groups[g] = groups.get(g, 0.0) + int(b) / n
    out.update(bytes=groups, skipped_epochs=len(epochs) - len(kept_epochs), epochs=len(kept_epochs))
    return out


# ------------------------------------------------------------------------------------------ accuracy

def epoch_curves(records: Iterable[Record]) -> dict[str, list]:
    """Per epoch (:func:`epoch_numbers`): ``epoch``, ``loss``, ``train_acc``, ``val_acc``, ``test_acc``.

    Loss and accuracies are reduced across workers, so each is taken from the lowest-ranked training worker
    that reported it that epoch (local SGD's ``loss``: rank 0's own); None where nobody did (accuracies
    exist on evaluated epochs only). A parameter server's records are left out."""
    recs = check_records(records)
    servers = server_ranks(recs)
    out: dict[str, list] = {"epoch": [], "loss": [], **{k: [] for k in ACCURACIES}}
    for e, eps in records_by_epoch(recs).items():
        out["epoch"].append(e)
        workers = [r for r in eps if r.get("rank") not in servers]
        for key in ("loss", *ACCURACIES):
            v = next((r[key] for r in workers if _is_number(r.get(key))), None)
            out[key].append(float(v) if v is not None else None)
    return out


def last_value(records: Iterable[Record], key: str = "test_acc") -> float | None:
    """The last value of curve ``key`` (see :func:`epoch_curves`) that is not None: the final (evaluated)
    test accuracy by default."""
    return next((v for v in reversed(epoch_curves(records)[key]) if v is not None), None)


def best_val(records: Iterable[Record]) -> dict | None:
    """The curves' row (``epoch``, ``loss``, the accuracies) at the first epoch reaching the best validation
    accuracy; None if the run was never validated."""
    c = epoch_curves(records)
    best = None
    for i, v in enumerate(c["val_acc"]):
        if v is not None and (best is None or v > c["val_acc"][best]):
            best = i
    return None if best is None else {k: c[k][best] for k in c}


def test_acc_at_best_val(records: Iterable[Record]) -> float | None:
    """Test accuracy at the first epoch reaching the best validation accuracy."""
    best = best_val(records)
    return best["test_acc"] if best else None


# ------------------------------------------------------------------------------------------ protocols

def field_counts(records: Iterable[Record], key: str) -> dict[float, int]:
    """``{value: observations}`` of field ``key`` over the epoch records: a ``{value: count}`` dict (a
    histogram such as ``staleness_hist``), a list of values, or one number per record."""
    counts: dict[float, int] = {}
    for r in check_records(records):
        if r["type"] != "epoch" or r.get(key) is None:
            continue
        v = r[key]
        if isinstance(v, Mapping):
            for k, n in v.items():
                counts[float(k)] = counts.get(float(k), 0) + int(n)
        elif isinstance(v, (list, tuple)):
            for k in v:
                counts[float(k)] = counts.get(float(k), 0) + 1
        elif _is_number(v):
            counts[float(v)] = counts.get(float(v), 0) + 1
    return counts


def age_histogram(records: Iterable[Record], key: str) -> dict | None:
    """``{"hist": {age: count}, "count", "max", "mean"}`` of the ``{age: count}`` histograms under ``key``
    (e.g. ``staleness_hist``), summed over every epoch record; None when none counts anything."""
    hist: dict[int, int] = {}
    for age, n in field_counts([r for r in epoch_records(records) if isinstance(r.get(key), Mapping)],
                               key).items():
        hist[int(age)] = hist.get(int(age), 0) + n
    total = sum(hist.values())
    if not total:
        return None
    return {"hist": {str(a): hist[a] for a in sorted(hist)}, "count": total, "max": max(hist),
            "mean": sum(a * n for a, n in hist.items()) / total}


def halo_staleness(records: Iterable[Record]) -> dict | None:
    """Age in epochs of the halo rows the layers aggregated (full-graph protocols), from ``staleness_hist``
    (summed over layers, workers and epochs): see :func:`age_histogram`."""
    return age_histogram(records, "staleness_hist")


def grad_staleness(records: Iterable[Record]) -> dict | None:
    """Rounds late of the gradients a parameter server applied, from the workers' ``grad_staleness_hist``."""
    return age_histogram(records, "grad_staleness_hist")


def staleness_summary(records: Iterable[Record]) -> dict[str, dict[str, float]]:
    """``{name: {"mean", "max"}}`` for every staleness the protocol observed: from each ``<name>_hist``
    histogram the records carry (exact: ``staleness``, ``grad_staleness``, ``server_staleness``), else over
    the per-epoch scalar ``<name>`` values (e.g. ``staleness``, ``grad_staleness``)."""
    recs = check_records(records)
    eps = epoch_records(recs)
    out: dict[str, dict[str, float]] = {}
    scalar: dict[str, None] = {}  # first-seen order, as the columns of epoch_table
    hists: dict[str, None] = {}
    for r in recs:
        if r["type"] != "epoch":
            continue
        for k, v in r.items():
            if "staleness" not in k or k in _NOT_COLUMNS:
                continue
            if k.endswith("_hist") and isinstance(v, Mapping):
                hists.setdefault(k)
            elif v is None or isinstance(v, (bool, int, float, str)):
                scalar.setdefault(k)
    for k in scalar:
        vals = np.array([float(r[k]) for r in eps if _is_number(r.get(k))], dtype=float)
        if len(vals):
            out[k] = {"mean": float(vals.mean()), "max": float(vals.max())}
    for k in hists:
        h = age_histogram(eps, k)
        if h is not None:
            out[k[:-len("_hist")]] = {"mean": h["mean"], "max": float(h["max"])}
    return out


def forward_rows_per_layer(records: Iterable[Record]) -> list[float]:
    """Halo rows moved per forward layer per epoch, summed over workers, averaged over epochs; from the
    ``fwd_rows`` ({layer: rows sent by that worker}) of the epoch records."""
    per_epoch: dict[int, dict[int, int]] = {}
    for r in epoch_records(records):
        rows = r.get("fwd_rows")
        if not isinstance(rows, dict):
            continue
        acc = per_epoch.setdefault(int(r.get("epoch", 0)), {})
        for layer, n in rows.items():
            acc[int(layer)] = acc.get(int(layer), 0) + int(n)
    if not per_epoch:
        return []
    layers = max(max(d) for d in per_epoch.values() if d) + 1 if any(per_epoch.values()) else 0
    return [float(np.mean([d.get(layer, 0) for d in per_epoch.values()])) for layer in range(layers)]


# ------------------------------------------------------------------------------------------ mini-batch

def cache_hit_rate(records: Iterable[Record]) -> float | None:
    """Remote feature lookups served by the cache, over all workers and epochs (None: not a mini-batch run;
    0.0 for a mini-batch run without cache or without remote lookups)."""
    eps = epoch_records(records)
    lookups = field_total(eps, "cache_lookups")
    if lookups is None:
        return None
    return (field_total(eps, "cache_hits") or 0.0) / lookups if lookups else 0.0


def local_seed_share(records: Iterable[Record]) -> float:
    """Of the training seeds of all workers, the fraction each worker owns itself (``start`` records'
    ``seeds_local`` / ``num_train``); NaN without seeds."""
    starts = [r for r in check_records(records) if r["type"] == "start"]
    total = sum(int(r.get("num_train", 0)) for r in starts)
    return sum(int(r.get("seeds_local", 0)) for r in starts) / total if total else float("nan")


def minibatch_metrics(records: Iterable[Record]) -> dict:
    """Per-epoch figures of a mini-batch run, summed over workers and averaged over epochs: remote rows and
    bytes fetched for training (``fetch_resp``: the feature rows; ``fetch_req``: the ids asked for), sampling
    bytes (``sample_*``), requests, cache hits / lookups and the hit rate, stage seconds (``sample_s``,
    ``fetch_s``, ``train_s``) and their ``overlap_s``, the loop's wall time ``loop_s`` (slowest worker) and
    ``epoch_s``; the cache's size (rows, bytes: its one-off fill traffic) and the last test accuracy. NaN for
    a figure the records do not carry; ``ValueError`` without epoch records."""
    recs = check_records(records)
    if not epoch_records(recs):
        raise ValueError("the run has no epoch records (did it fail before the first epoch?)")
    n_epochs = len(epoch_numbers(recs))

    def per_epoch(key: str) -> float:
        total = field_total(recs, key)
        return total / n_epochs if total is not None else float("nan")

    def slowest_mean(key: str) -> float:
        tops = [max(v) for v in ([float(r[key]) for r in eps if _is_number(r.get(key))]
                                 for eps in records_by_epoch(recs).values()) if v]
        return float(np.mean(tops)) if tops else float("nan")

    starts = [r for r in recs if r["type"] == "start"]
    return {
        "epochs": n_epochs,
        "rows_fetched": per_epoch("remote_rows_fetched"),
        "bytes_fetched": total_bytes(recs, "fetch_resp") / n_epochs,
        "id_bytes": total_bytes(recs, "fetch_req") / n_epochs,
        "sample_bytes": total_bytes(recs, "sample_") / n_epochs,
        "remote_requests": per_epoch("remote_requests"),
        "cache_hits": per_epoch("cache_hits"),
        "cache_lookups": per_epoch("cache_lookups"),
        "hit_rate": cache_hit_rate(recs) or 0.0,
        "cache_rows": sum(int(r.get("cache_rows", 0)) for r in starts),
        "cache_bytes": sum(int(r.get("cache_nbytes", 0)) for r in starts),
        "sample_s": per_epoch("sample_s"),
        "fetch_s": per_epoch("fetch_s"),
        "train_s": per_epoch("train_s"),
        "overlap_s": per_epoch("overlap_s"),
        "loop_s": slowest_mean("loop_s"),
        "epoch_s": slowest_mean("epoch_s"),
        "test_acc": last_value(recs, "test_acc"),
    }


# ------------------------------------------------------------------------------------------ summary

def summary(records: Iterable[Record], *, world_size: int, status: str | None = None, cores: int | None = None,
            num_threads: int | None = None, backend: str | None = None, elapsed_s: float | None = None,
            run_dir: Any = None) -> dict:
    """The training summary (``RunResult.summary()``, ``dgnn-lab train --json``): status, world size vs cores,
    per-epoch loss and time, accuracies (the final evaluated test accuracy, the best validation and the test
    accuracy there), per-worker compute/comm/wait, CPU time, work and bytes, imbalance (max / mean compute
    time), work_imbalance (max / mean edges aggregated: machine-independent) and cpu_imbalance, cache hit
    rate, the bytes matrix (all traffic) and that of training traffic, total bytes split into ``train_bytes``
    + ``eval_bytes`` (:func:`split_bytes`, exactly), halo bytes, halo rows per forward layer, gradient and
    halo staleness."""
    recs = check_records(records)
    eps = epoch_records(recs)
    curves = epoch_curves(recs)
    best = best_val(recs)
    m = bytes_matrix(eps, world_size)
    split = split_bytes(eps)
    return {
        "status": status,
        "world_size": world_size,
        "cores": cores,
        "num_threads": num_threads,
        "oversubscribed": oversubscribed(world_size, cores, num_threads),
        "backend": backend,
        "epochs": len(curves["epoch"]),
        "train_loss": curves["loss"],
        "epoch_seconds": epoch_seconds(eps),
        "test_acc": last_value(eps, "test_acc"),
        "best_val_acc": best["val_acc"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "test_acc_at_best_val": best["test_acc"] if best else None,
        "workers": worker_totals(recs, world_size),
        "imbalance": imbalance(recs, world_size),
        "work_imbalance": work_imbalance(recs, world_size),
        "cpu_imbalance": cpu_imbalance(recs, world_size),
        "cache_hit_rate": cache_hit_rate(eps),
        "bytes_matrix": m.tolist(),
        "train_bytes_matrix": bytes_matrix(eps, world_size, traffic="train").tolist(),
        "total_bytes": int(m.sum()),
        "train_bytes": split["train"],
        "eval_bytes": split["eval"],
        "halo_bytes": int(bytes_matrix(eps, world_size, HALO_PREFIX).sum()),
        "forward_rows_per_layer": forward_rows_per_layer(eps),
        "grad_staleness": grad_staleness(eps),
        "staleness": halo_staleness(eps),
        "elapsed_s": elapsed_s,
        "run_dir": str(run_dir) if run_dir is not None else None,
    }


# ------------------------------------------------------------------------------------------ tables

def epoch_table(records: Iterable[Record]) -> pd.DataFrame:
    """One row per process per epoch record: rank, epoch, the scalar metrics (:data:`EPOCH_SCALARS` first,
    then any other scalar field the records carry, in first-seen order), total bytes sent / received that
    epoch (all peers and purposes) and the record's wall time. Sorted by epoch, then rank."""
    import pandas as pd

    rows = []
    extra: dict[str, None] = {}  # other scalar fields a protocol adds (staleness, lr, ...), in first-seen order
    for r in check_records(records):
        if r["type"] != "epoch":
            continue
        row = {"rank": r.get("rank"), "epoch": r.get("epoch")}
        for k in EPOCH_SCALARS:
            row[k] = r.get(k)
        for k, v in r.items():
            if k not in row and k not in _NOT_COLUMNS and (v is None or isinstance(v, (bool, int, float, str))):
                row[k] = v
                extra.setdefault(k)
        row["bytes_sent"] = record_bytes(r, "sent")
        row["bytes_recv"] = record_bytes(r, "recv")
        row["time"] = r.get("time")
        rows.append(row)
    cols = ["rank", "epoch", *EPOCH_SCALARS, *extra, "bytes_sent", "bytes_recv", "time"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values(["epoch", "rank"], kind="stable").reset_index(drop=True)
    return df


def bytes_table(records: Iterable[Record]) -> pd.DataFrame:
    """Long format: one row per (epoch, rank, direction, peer, purpose) with its byte count."""
    import pandas as pd

    rows = []
    for r in check_records(records):
        if r["type"] != "epoch":
            continue
        for direction in ("sent", "recv"):
            for peer, per in (r.get(f"bytes_{direction}") or {}).items():
                for purpose, n in per.items():
                    rows.append({"epoch": r.get("epoch"), "rank": r.get("rank"), "direction": direction,
                                 "peer": int(peer), "purpose": purpose, "bytes": int(n)})
    return pd.DataFrame(rows, columns=["epoch", "rank", "direction", "peer", "purpose", "bytes"])
