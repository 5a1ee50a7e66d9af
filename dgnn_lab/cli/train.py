"""``dgnn-lab train``: real distributed full-graph training from a terminal, then a report of where time and
bytes went.

Exit codes: 0 trained; 1 a worker failed (its rank and traceback are printed); 2 bad input (one line naming
the value and what is allowed); 130 interrupted (Ctrl-C stops every worker; the run is recorded as such).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

from dgnn_lab.cli.common import CLIError, add_dataset_args, add_json_flag, dataset_params, defer, print_json, table
from dgnn_lab.records import format_bytes, median

LAUNCHERS = ("spawn", "torchrun")


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train a GNN with several worker processes (full-graph, mini-batch or local SGD)",
        description="Partition a graph, start one process per worker, and train a GCN or GraphSAGE model\n"
                    "(full-graph with a halo exchange per layer, mini-batch, or local SGD); then report accuracy,\n"
                    "time per epoch, compute/communication/waiting per worker and the bytes each worker sent to\n"
                    "each other. Every option but the dataset ones, --launcher and --json is generated from a\n"
                    "field of dgnn_lab.train.TrainConfig (one option per field).",
        epilog="examples:\n"
               "  dgnn-lab train --dataset cora --workers 2 --partition metis --model gcn\n"
               "  dgnn-lab train --dataset csbm --dataset-arg num_nodes=50000 --workers 4 --partition random "
               "--model sage --epochs 20 --json\n"
               "  dgnn-lab train --dataset cora --workers 4 --launcher torchrun   # prints the torchrun command\n"
               "  dgnn-lab partition --dataset cora --parts 2 --save plans/cora2\n"
               "  dgnn-lab train --dataset cora --workers 2 --partition-dir plans/cora2   # train on that plan",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defer(p, _add_options)  # TrainConfig's module imports the training stack: only when `train` is parsed
    return p


def _add_options(p: argparse.ArgumentParser) -> None:
    add_dataset_args(p)
    add_config_options(p)
    p.add_argument("--launcher", default="spawn", metavar="L",
                   help="spawn: start the workers here (default); torchrun: write the config and print the "
                        "torchrun command that runs the same workers, on this machine or several")
    add_json_flag(p)


# -- options generated from TrainConfig's fields ------------------------------------------------------------

#: What each option group's heading says (the group of a field is in its metadata).
GROUP_TITLES = {"axes": "axes (a registered name or module:attribute; unset: what --mode implies)",
                "mini-batch": "mini-batch (--mode minibatch)",
                "communication protocol": "communication protocol"}


def config_fields() -> list:
    """The fields of ``TrainConfig`` that are command-line options, in declaration order: every field but
    those marked ``"cli": False`` (the shared dataset options included, ``"shared": True``)."""
    from dgnn_lab.train.config import TrainConfig

    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]


def flag(f) -> str:
    """A field's option: its metadata's ``"flag"``, else ``--<name-with-dashes>``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _default(f) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _shown(f) -> str:
    """The default as the help shows it."""
    value, meta = _default(f), f.metadata
    if value is None:
        return meta.get("none", "none")
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _help(f) -> str:
    allowed = f.metadata.get("allowed")
    allowed = allowed() if callable(allowed) else allowed
    text = f.metadata.get("help")
    if not text:
        raise TypeError(f"TrainConfig.{f.name} has no help in its metadata")
    text = f"{' | '.join(allowed)}: {text}" if allowed else text
    return f"{text} (default: {_shown(f)})".replace("%", "%%")


def _kind(f, hint: Any) -> Any:
    """The argparse type of a field: ``parse`` from its metadata (applied in :func:`_config`, so a bad value
    is a one-line error), else from its annotation: int, float, bool, str; ``Any`` (the axes) is str."""
    if "parse" in f.metadata:
        return str
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if hint is Any:
        return str
    if hint in (int, float, str, bool):
        return hint
    raise TypeError(f"TrainConfig.{f.name}: no command-line type for {hint!r}; give it a 'parse' in its metadata "
                    f"or 'cli': False")


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per field of ``TrainConfig`` (help, flag, group, type and default from the field)."""
    from dgnn_lab.train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    groups: dict[str, Any] = {}
    for f in config_fields():
        if f.metadata.get("shared"):
            continue  # --dataset, --dataset-arg: add_dataset_args
        name = f.metadata.get("group")
        if name and name not in groups:
            groups[name] = p.add_argument_group(GROUP_TITLES.get(name, name))
        where = groups[name] if name else p
        kind, default, text = _kind(f, hints[f.name]), _default(f), _help(f)
        if f.metadata.get("repeat"):
            where.add_argument(flag(f), dest=f.name, action="append", default=[],
                               metavar=f.metadata.get("metavar"), help=text)
        elif kind is bool:
            action = where.add_argument(flag(f), dest=f.name, action=argparse.BooleanOptionalAction,
                                        default=default)
            action.help = text  # BooleanOptionalAction may append its own "(default: ...)": ours says on/off
        else:
            where.add_argument(flag(f), dest=f.name, type=None if kind is str else kind, default=default,
                               metavar=f.metadata.get("metavar"), help=text)


def _config(args: argparse.Namespace):
    """The ``TrainConfig`` of parsed arguments: every generated option by its field's name (through the field's
    ``parse`` when it has one), the dataset from the shared dataset options."""
    from dgnn_lab.train.config import TrainConfig

    kwargs: dict[str, Any] = {"dataset": args.dataset, "dataset_args": dataset_params(args)}
    try:
        for f in config_fields():
            if f.metadata.get("shared"):
                continue
            value = getattr(args, f.name)
            parse = f.metadata.get("parse")
            kwargs[f.name] = parse(value) if parse and (isinstance(value, str) or f.metadata.get("repeat")) \
                else value
        return TrainConfig(**kwargs)
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
    return print_summary(training_summary(result), args.json)


def print_summary(summary: dict, as_json: bool) -> int:
    """Print a training summary as JSON or as the report; the exit code: 0 when the run is done, else 1."""
    if as_json:
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
        work = w.get("work") or {}
        cpu = w.get("cpu_s")
        rows.append([f"{w['rank']} (server)" if is_server else w["rank"], w.get("num_owned") or 0,
                     w.get("num_halo") or 0, f"{work['edges']:,.0f}" if "edges" in work else "n/a",
                     w["compute_s"] / epochs * 1e3, "n/a" if cpu is None else f"{cpu / epochs * 1e3:.1f}",
                     w["comm_s"] / epochs * 1e3, w["wait_s"] / epochs * 1e3,
                     format_bytes(w.get("train_bytes")), format_bytes(w.get("eval_bytes")),
                     format_bytes(w["bytes_recv"])])
    lines.append("per worker (edges aggregated per epoch, all layers; ms per epoch: compute is wall time, cpu the "
                 "process's CPU time over the whole epoch; bytes over the run: sent for training, sent for "
                 "evaluation, received in all)")
    lines.append(table(rows, ["rank", "owned", "halo", "edges", "compute", "cpu", "comm", "wait", "train sent",
                              "eval sent", "received"]))
    lines.append(imbalance_line(s))
    if cfg.get("mode") == "minibatch":
        lines.extend(_minibatch_lines(s, cfg, epochs))
    lines.extend(traffic_lines(s, cfg))
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
    m = s.get("train_bytes_matrix") or []
    if m:
        lines.append("")
        lines.append("training bytes sent (row = sender, column = receiver; evaluation traffic not included)")
        lines.append(table([[f"{i}", *[format_bytes(v) for v in row]] for i, row in enumerate(m)],
                           ["from\\to", *[str(j) for j in range(len(m))]]))
    if s.get("run_dir"):
        lines.append("")
        lines.append(f"run directory {s['run_dir']}")
    return "\n".join(lines)


def imbalance_line(s: dict) -> str:
    """Work, CPU and wall-time imbalance side by side: equal work with unequal wall time is contention or slow
    hardware, not the partition."""
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    return (f"imbalance     work {f(s.get('work_imbalance'))} (max / mean edges aggregated), cpu "
            f"{f(s.get('cpu_imbalance'))} (CPU time), wall {f(s.get('imbalance'))} (compute time)")


def traffic_lines(s: dict, cfg: dict) -> list[str]:
    """The report's byte lines: training traffic first (the headline), evaluation traffic apart, then all
    traffic and the halo share of training (``train_bytes + eval_bytes == total_bytes``: the summary's)."""
    every = cfg.get("eval_every")
    when = "" if every is None else (" (never evaluated)" if not every else
                                     f" (evaluated every {every} epoch{'s' if every != 1 else ''})")
    halo = s.get("halo_bytes")
    return [f"train bytes   {format_bytes(s.get('train_bytes'))} sent by all workers over the run for training",
            f"eval bytes    {format_bytes(s.get('eval_bytes'))} sent for evaluation{when}; all traffic "
            f"{format_bytes(s.get('total_bytes'))}",
            "halo bytes    0 B (no halo exchange in training)" if halo == 0 else
            f"halo bytes    {format_bytes(halo)} of the training bytes (forward + backward, wire size)"]


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
    from dgnn_lab.settings import runs_root
    from dgnn_lab.train.api import write_torchrun_spec

    run_dir = Path(cfg.run_dir or runs_root() / time.strftime("torchrun-%Y%m%d-%H%M%S")).resolve()
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
