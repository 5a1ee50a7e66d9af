"""``dgnn-lab train``: real distributed full-graph training from a terminal, then a report of where time and
bytes went.

Exit codes: 0 trained; 1 a worker failed (its rank and traceback are printed); 2 bad input (one line naming
the value and what is allowed); 130 interrupted (Ctrl-C stops every worker; the run is recorded as such).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from dgnn_lab.cli.common import CLIError, add_dataset_args, add_json_flag, dataset_params, print_json, table
from dgnn_lab.records import format_bytes, median

LAUNCHERS = ("spawn", "torchrun")


def register(sub) -> argparse.ArgumentParser:
    from dgnn_lab.train.config import BACKENDS, MODELS, MODES, partition_methods

    p = sub.add_parser(
        "train", help="train a GNN with several worker processes (full-graph, exact halo exchange)",
        description="Partition a graph, start one process per worker, and train a GCN or GraphSAGE model "
                    "full-graph with an exact halo exchange per layer; then report accuracy, time per epoch, "
                    "compute/communication/waiting per worker and the bytes each worker sent to each other.",
        epilog="examples:\n"
               "  dgnn-lab train --dataset cora --workers 2 --partition metis --model gcn\n"
               "  dgnn-lab train --dataset csbm --dataset-arg num_nodes=50000 --workers 4 --partition random "
               "--model sage --epochs 20 --json\n"
               "  dgnn-lab train --dataset cora --workers 4 --launcher torchrun   # prints the torchrun command",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_args(p)
    p.add_argument("--workers", type=int, default=2, metavar="P", help="worker processes (default: 2)")
    p.add_argument("--partition", default="metis", metavar="METHOD",
                   help=f"edge-cut partitioner: {', '.join(partition_methods())} (default: metis)")
    p.add_argument("--mode", default="full-sync", metavar="MODE",
                   help=f"execution model / protocol: {', '.join(MODES)} (default: full-sync)")
    p.add_argument("--model", default="gcn", metavar="MODEL", help=f"{' | '.join(MODELS)} (default: gcn)")
    p.add_argument("--layers", type=int, default=2, metavar="L", help="GNN layers (default: 2)")
    p.add_argument("--hidden", type=int, default=16, metavar="H", help="hidden width (default: 16)")
    p.add_argument("--epochs", type=int, default=200, metavar="E", help="training epochs (default: 200)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    p.add_argument("--weight-decay", type=float, default=5e-4, metavar="WD", help="Adam weight decay (default: 5e-4)")
    p.add_argument("--dropout", type=float, default=0.5, metavar="D", help="dropout probability (default: 0.5)")
    p.add_argument("--eval-every", type=int, default=1, metavar="N",
                   help="evaluate train/val/test accuracy every N epochs, 0 = never (default: 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for weights, dropout, partition (default: 0)")
    p.add_argument("--backend", default="auto", metavar="B",
                   help=f"{' | '.join(BACKENDS)}: auto = nccl with a GPU per worker, else gloo (default: auto)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch threads per worker (default: max(1, cores // workers))")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SEC",
                   help="rendezvous and collective timeout in seconds (default: 60)")
    p.add_argument("--run-dir", default=None, metavar="DIR",
                   help="where config.json and records.jsonl go (default: a fresh runs/<date>-<time>-<id>/)")
    p.add_argument("--launcher", default="spawn", metavar="L",
                   help="spawn: start the workers here (default); torchrun: write the config and print the "
                        "torchrun command that runs the same workers, on this machine or several")
    mb = p.add_argument_group("mini-batch (--mode minibatch)")
    mb.add_argument("--fanouts", default="10,5", metavar="F1,F2",
                    help="neighbours sampled per layer, comma-separated, -1 = all (default: 10,5)")
    mb.add_argument("--batch-size", type=int, default=512, metavar="B", help="seeds per worker per step (default: 512)")
    mb.add_argument("--seed-split", default="local", metavar="S",
                    help="local: each worker trains the seeds it owns (DistDGL node_split); chunk: contiguous chunks "
                         "of the training index (default: local)")
    mb.add_argument("--remote-sampling", default="owner", metavar="R",
                    help="owner: remote neighbourhoods sampled by their owner (request/response); halo: from a "
                         "replicated L-hop halo topology (default: owner)")
    mb.add_argument("--cache", default="none", metavar="C", help="remote feature cache: none | degree | presample "
                                                                 "(default: none)")
    mb.add_argument("--cache-size", type=float, default=0.1, metavar="F",
                    help="cache capacity as a fraction of remote nodes (default: 0.1)")
    mb.add_argument("--equal-steps", action=argparse.BooleanOptionalAction, default=True,
                    help="every worker runs the same number of steps per epoch (default); --no-equal-steps shows the "
                         "classic hang of uneven step counts, ended by --timeout")
    mb.add_argument("--pipeline", action=argparse.BooleanOptionalAction, default=False,
                    help="overlap sampling and feature fetching of the next batch with training (default: off)")
    pr = p.add_argument_group("communication protocol")
    pr.add_argument("--staleness", type=int, default=1, metavar="S",
                    help="full-stale: maximum age of boundary rows in epochs; --sync ps: staleness bound of "
                         "gradients (0 = synchronous) (default: 1)")
    pr.add_argument("--skip-threshold", type=float, default=0.0, metavar="X",
                    help="full-stale: skip re-sending a boundary block whose relative change is below X while its "
                         "age is at most --staleness (Sancus-like; default: 0 = always send)")
    pr.add_argument("--smoothing", type=float, default=0.0, metavar="G",
                    help="full-stale: moving-average weight of old boundary rows, in [0, 1) (default: 0)")
    pr.add_argument("--bns-p", type=float, default=1.0, metavar="P",
                    help="full-bns: fraction of boundary rows sent per epoch, in (0, 1] (default: 1)")
    pr.add_argument("--quantize", default="none", metavar="Q", help="none | fp16 | int8 for exchanged rows")
    pr.add_argument("--local-sgd-period", type=int, default=10, metavar="K",
                    help="local-sgd: average the models every K epochs (default: 10)")
    pr.add_argument("--local-sgd-correction", action="store_true",
                    help="local-sgd: one global full-graph step after each averaging")
    pr.add_argument("--sync", default="allreduce", metavar="S",
                    help="gradient synchronisation: allreduce | ps (asynchronous parameter server, one extra process)")
    pr.add_argument("--straggler", default=None, metavar="RANK:FACTOR",
                    help="slow worker RANK's compute by FACTOR (e.g. 1:2.0)")
    add_json_flag(p)
    return p


def _fanouts(text: str) -> list[int]:
    try:
        return [int(f) for f in str(text).split(",") if f.strip()]
    except ValueError:
        raise CLIError(f"--fanouts must be comma-separated integers such as 10,5 (-1 = all), got {text!r}") from None


def _config(args: argparse.Namespace):
    from dgnn_lab.train.config import TrainConfig

    try:
        return TrainConfig(dataset=args.dataset, dataset_args=dataset_params(args), workers=args.workers,
                           partition=args.partition, mode=args.mode, model=args.model, layers=args.layers,
                           hidden=args.hidden, dropout=args.dropout, lr=args.lr, weight_decay=args.weight_decay,
                           epochs=args.epochs, seed=args.seed, eval_every=args.eval_every, backend=args.backend,
                           threads_per_worker=args.threads, timeout_s=args.timeout, run_dir=args.run_dir,
                           fanouts=_fanouts(args.fanouts), batch_size=args.batch_size, seed_split=args.seed_split,
                           remote_sampling=args.remote_sampling, cache=args.cache, cache_size=args.cache_size,
                           pipeline=args.pipeline, equal_steps=args.equal_steps, staleness=args.staleness,
                           skip_threshold=args.skip_threshold,
                           smoothing=args.smoothing, bns_p=args.bns_p, quantize=args.quantize,
                           local_sgd_period=args.local_sgd_period, local_sgd_correction=args.local_sgd_correction,
                           sync=args.sync, straggler=args.straggler)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    if args.launcher not in LAUNCHERS:
        raise CLIError(f"unknown launcher {args.launcher!r}; allowed: {', '.join(LAUNCHERS)}")
    cfg = _config(args)
    if args.launcher == "torchrun":
        return _torchrun(cfg, args)
    from dgnn_lab.dist import WorkerError
    from dgnn_lab.train.api import start

    bar = _Progress(cfg.epochs, cfg.workers)
    try:
        handle = start(cfg, on_record=bar.update)
    except (ValueError, FileNotFoundError) as exc:
        bar.close()
        raise CLIError(str(exc)) from None
    try:
        result = handle.wait()
    except KeyboardInterrupt:
        bar.close()
        handle.stop()
        print(f"dgnn-lab train: interrupted; {cfg.workers} workers stopped, run recorded as interrupted in "
              f"{handle.run_dir}", file=sys.stderr)
        return 130
    except WorkerError as exc:
        bar.close()
        print(f"dgnn-lab train: error: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    summary = training_summary(result)
    if args.json:
        print_json(summary)
    else:
        print(report(summary))
    return 0 if summary["status"] == "done" else 1


def training_summary(result) -> dict:
    """``RunResult.summary()`` plus the training facts the report shows: config and per-worker owned/halo."""
    s = dict(result.summary())
    s["config"] = result.config
    starts = {r["rank"]: r for r in result.records if r.get("type") == "start"}
    for w in s.get("workers", []):
        st = starts.get(w["rank"], {})
        for k in ("num_owned", "num_halo", "num_local_edges"):
            w[k] = st.get(k)
    return s


def report(s: dict) -> str:
    """The human-readable report of a training summary (bytes in :func:`dgnn_lab.records.format_bytes`)."""
    cfg = s.get("config") or {}
    n = s.get("world_size")
    ps = cfg.get("sync") == "ps"
    procs = f"{cfg.get('workers', '?')} workers + 1 parameter server" if ps else f"{n} workers"
    head = (f"{cfg.get('model', '?')} x{cfg.get('layers', '?')} (hidden {cfg.get('hidden', '?')}) on "
            f"{cfg.get('dataset', '?')}: {procs}, partition {cfg.get('partition', '?')}, {cfg.get('mode', '?')}, "
            f"backend {s.get('backend')}, {s.get('num_threads')} thread(s) each on {s.get('cores')} cores")
    lines = [head]
    if s.get("oversubscribed"):
        lines.append(f"note: {n} processes x {s.get('num_threads')} threads > {s.get('cores')} cores: waiting also "
                     "measures CPU contention, not only the algorithm")
    lines.append(f"status {s.get('status')}: {s.get('epochs')} epochs in {s.get('elapsed_s') or 0:.1f} s wall")
    lines.append("")

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines.append(f"accuracy      test {pct(s.get('test_acc_at_best_val'))} at best validation "
                 f"{pct(s.get('best_val_acc'))} (epoch {s.get('best_epoch')}); final test {pct(s.get('test_acc'))}")
    loss = [x for x in s.get("train_loss") or [] if x is not None]
    if loss:
        lines.append(f"train loss    {loss[0]:.4f} -> {loss[-1]:.4f}")
    sec = [x for x in s.get("epoch_seconds") or [] if x is not None]
    if sec:
        lines.append(f"time/epoch    median {median(sec) * 1e3:.1f} ms, mean {sum(sec) / len(sec) * 1e3:.1f} ms "
                     f"(slowest worker per epoch; first epoch included)")
    lines.append("")
    epochs = max(int(s.get("epochs") or 0), 1)
    rows = []
    for w in s.get("workers", []):
        is_server = w.get("role") == "server" or (ps and w["rank"] == cfg.get("workers"))
        rows.append([f"{w['rank']} (server)" if is_server else w["rank"], w.get("num_owned") or 0,
                     w.get("num_halo") or 0,
                     w["compute_s"] / epochs * 1e3, w["comm_s"] / epochs * 1e3, w["wait_s"] / epochs * 1e3,
                     format_bytes(w["bytes_sent"]), format_bytes(w["bytes_recv"])])
    lines.append("per worker (ms per epoch; bytes over the run)")
    lines.append(table(rows, ["rank", "owned", "halo", "compute", "comm", "wait", "sent", "received"]))
    imb = s.get("imbalance")
    lines.append(f"imbalance     {imb:.3f} (max / mean compute time)" if imb else "imbalance     n/a")
    if cfg.get("mode") == "minibatch":
        lines.extend(_minibatch_lines(s, cfg, epochs))
    lines.append(f"halo bytes    {format_bytes(s.get('halo_bytes'))} (forward + backward, wire size); all traffic "
                 f"{format_bytes(s.get('total_bytes'))}")
    rows_l = s.get("forward_rows_per_layer") or []
    if rows_l:
        lines.append("halo rows     " + ", ".join(f"L{i}: {r:,.0f}" for i, r in enumerate(rows_l))
                     + " per forward pass (all workers)")
    st = s.get("staleness")
    if st and not st["max"]:
        lines.append("staleness     0 (every halo row aggregated is from the current epoch)")
    elif st:
        ages = ", ".join(f"{a}: {n:,}" for a, n in st["hist"].items())
        lines.append(f"staleness     halo rows aggregated are {st['mean']:.2f} epochs old on average, at most "
                     f"{st['max']} (rows by age {{{ages}}}, all layers, workers and epochs)")
    gs = s.get("grad_staleness")
    if gs:
        ages = ", ".join(f"{a}: {n:,}" for a, n in gs["hist"].items())
        lines.append(f"grad stale    gradients applied {gs['mean']:.2f} rounds late on average, at most {gs['max']} "
                     f"(bound {cfg.get('staleness')}; gradients by age {{{ages}}})")
    m = s.get("bytes_matrix") or []
    if m:
        lines.append("")
        lines.append("bytes sent (row = sender, column = receiver)")
        lines.append(table([[f"{i}", *[format_bytes(v) for v in row]] for i, row in enumerate(m)],
                           ["from\\to", *[str(j) for j in range(len(m))]]))
    if s.get("run_dir"):
        lines.append("")
        lines.append(f"run directory {s['run_dir']}")
    return "\n".join(lines)


def _minibatch_lines(s: dict, cfg: dict, epochs: int) -> list[str]:
    """Mini-batch runs: where each worker's step time went and what it fetched."""
    rate = s.get("cache_hit_rate")
    lines = ["", f"mini-batch    fanouts {cfg.get('fanouts')}, batch {cfg.get('batch_size')}, seeds "
                 f"{cfg.get('seed_split')}, remote sampling {cfg.get('remote_sampling')}, cache {cfg.get('cache')} "
                 f"({cfg.get('cache_size')}), pipeline {'on' if cfg.get('pipeline') else 'off'}; cache hit rate "
                 + ("n/a" if rate is None else f"{100 * rate:.1f}%")]
    rows = [[w["rank"], *(w.get(k, 0.0) / epochs * 1e3 for k in ("sample_s", "fetch_s", "train_s", "overlap_s")),
             f"{w.get('remote_rows_fetched', 0) / epochs:,.0f}", f"{w.get('remote_requests', 0) / epochs:,.0f}"]
            for w in s.get("workers", [])]
    lines.append("per worker (ms per epoch; remote rows and requests per epoch)")
    lines.append(table(rows, ["rank", "sample", "fetch", "train", "overlap", "rows fetched", "requests"]))
    return lines


def _torchrun(cfg, args: argparse.Namespace) -> int:
    """Write the worker spec and print the torchrun command (nothing is started here)."""
    from dgnn_lab.train.api import write_torchrun_spec

    run_dir = Path(cfg.run_dir or Path("runs") / time.strftime("torchrun-%Y%m%d-%H%M%S")).resolve()
    try:
        spec_path = write_torchrun_spec(cfg, run_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    one = ["torchrun", "--standalone", "--nnodes", "1", "--nproc-per-node", str(cfg.world_size),
           "-m", "dgnn_lab.worker", str(spec_path)]
    if args.json:
        print_json({"spec": str(spec_path), "run_dir": str(run_dir), "command": one})
        return 0
    print(f"wrote {spec_path}\n\none machine, {cfg.workers} workers:\n  {shlex.join(one)}\n")
    print("several machines (N nodes x K processes each; K * N = the world size: --workers, plus 1 with --sync ps);\n"
          "on every node:\n"
          "  MASTER_ADDR=<node 0's address> GLOO_SOCKET_IFNAME=<interface, e.g. eth0> \\\n"
          f"  torchrun --nnodes N --nproc-per-node K --node-rank <0..N-1> --master-addr $MASTER_ADDR "
          f"--master-port 29500 -m dgnn_lab.worker {spec_path}\n")
    print(f"each rank writes {run_dir}/records-rank<R>.jsonl; open the finished run in Python with "
          f"dgnn_lab.dist.RunResult.load({str(run_dir)!r})")
    return 0


class _Progress:
    """A tqdm bar on stderr fed by rank 0's epoch records (called from the telemetry thread)."""

    def __init__(self, epochs: int, workers: int):
        self._bar = None
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=epochs, desc=f"training ({workers} workers)", unit="epoch", file=sys.stderr,
                             disable=None, leave=False, dynamic_ncols=True)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            pass

    def update(self, rec: dict) -> None:
        if self._bar is None or rec.get("type") != "epoch" or rec.get("rank") != 0:
            return
        post = {"loss": f"{rec['loss']:.4f}"}
        if rec.get("val_acc") is not None:
            post["val"] = f"{rec['val_acc']:.3f}"
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
