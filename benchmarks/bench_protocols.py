"""Halo-exchange protocols against synchronous training, in one run: halo bytes, time per epoch, accuracy.

Run by hand: ``.venv/bin/python benchmarks/bench_protocols.py [--nodes 100000] [--epochs 10] [--small]``.

Every variant trains the same model from the same seed inside **one launch per graph** (the workers run the
configurations back to back, so they share the process group, the machine's load and the warm-up): synchronous,
PipeGCN (staleness 1, with and without smoothing), Sancus-like bounded staleness (S = 4, skip below 5 % or
100 % change), BNS (p = 0.1 and 0.5), fp16 and int8 rows, and synchronous / PipeGCN with worker 1 slowed 2x (a
straggler). Figures, each against ``sync`` of the same run:

* ``halo MB`` and ``bytes x``: halo bytes over the run (forward rows + returned gradients, wire size) and their
  ratio to sync;
* ``s/epoch`` and ``time x``: median epoch time of the slowest worker (epoch 0 left out; see
  ``dgnn_lab.records.s_per_epoch``) and its ratio;
* ``wait``: share of worker time waiting at synchronisation points;
* ``test acc``: test accuracy at the best validation epoch (Cora); csbm evaluates once, at the end;
* ``age``: mean age in epochs of the aggregated halo rows.

Sancus with a 5 % threshold never skips here: dropout (0.5) on a layer's input rows changes every exchanged row
by far more than 5 % from one epoch to the next, so the threshold that matters is near 1 (``thr 1``).

PipeGCN's transfers overlap computation (non-blocking, waited for an epoch later, no barrier); the others
block. The gradient all-reduce still synchronises every epoch, so a straggler's cost still shows as the others'
``wait``, less of it under PipeGCN (its halo exchanges no longer wait). On a shared 2-core machine every
timing is noisy (other processes come and go during the minutes a run takes); the byte ratios are exact, the
time ratios indicative only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from dgnn_lab.dist.testing import TaggedContext

VARIANTS: dict[str, dict] = {
    "sync": {"mode": "full-sync"},
    "pipegcn S=1": {"mode": "full-stale", "staleness": 1},
    "pipegcn S=1 smooth .5": {"mode": "full-stale", "staleness": 1, "smoothing": 0.5},
    "sancus S=4 thr .05": {"mode": "full-stale", "staleness": 4, "skip_threshold": 0.05},
    "sancus S=4 thr 1": {"mode": "full-stale", "staleness": 4, "skip_threshold": 1.0},
    "bns p=.5": {"mode": "full-bns", "bns_p": 0.5},
    "bns p=.1": {"mode": "full-bns", "bns_p": 0.1},
    "fp16": {"mode": "full-sync", "quantize": "fp16"},
    "int8": {"mode": "full-sync", "quantize": "int8"},
    "bns p=.1 + int8": {"mode": "full-bns", "bns_p": 0.1, "quantize": "int8"},
    "sync, straggler 2x": {"mode": "full-sync", "straggler": [1, 2.0]},
    "pipegcn S=1, straggler 2x": {"mode": "full-stale", "staleness": 1, "straggler": [1, 2.0]},
}




def several_cases(ctx, config: dict) -> None:
    """Worker entry: each config of ``config["cases"]`` in turn, records tagged by case number."""
    from dgnn_lab.execution.loop import worker_main

    for i, case in enumerate(config["cases"]):
        worker_main(TaggedContext(ctx, i), case)


def _rows(result, names: list[str]) -> list[dict]:
    from dgnn_lab import records as rec

    out = []
    for i, name in enumerate(names):
        recs = [r for r in result.records if r.get("case") == i]
        secs, age = rec.s_per_epoch(recs), rec.halo_staleness(recs)
        out.append({"name": name, "halo": rec.halo_bytes(recs), "s_epoch": secs if secs is not None else float("nan"),
                    "wait": rec.wait_share(recs) or 0.0, "acc": rec.test_acc_at_best_val(recs),
                    "age": age["mean"] if age else 0.0})
    return out


def _print(title: str, rows: list[dict]) -> None:
    base = rows[0]
    print(f"\n{title}")
    print(f"{'variant':<27} {'halo MB':>9} {'bytes x':>8} {'s/epoch':>8} {'time x':>7} {'wait':>6} "
          f"{'test acc':>8} {'age':>5}")
    for r in rows:
        acc = f"{100 * r['acc']:.1f}%" if r["acc"] is not None else "n/a"
        print(f"{r['name']:<27} {r['halo'] / 1e6:>9.2f} {r['halo'] / max(base['halo'], 1):>8.3f} "
              f"{r['s_epoch']:>8.3f} {r['s_epoch'] / base['s_epoch']:>7.2f} {100 * r['wait']:>5.0f}% "
              f"{acc:>8} {r['age']:>5.2f}")


def _bench(title: str, common: dict, names: list[str], run_dir: Path) -> None:
    from dgnn_lab.dist import run
    from dgnn_lab.train import TrainConfig

    cases = [TrainConfig(**{**common, **VARIANTS[n]}).to_dict() for n in names]
    t0 = time.perf_counter()
    result = run(f"{Path(__file__).stem}:several_cases", {"cases": cases}, common["workers"], run_dir=run_dir,
                 timeout_s=600)
    if result.status != "done":
        raise SystemExit(f"{title}: run {result.status}: {result.error}")
    _print(f"{title} ({time.perf_counter() - t0:.0f} s for all variants)", _rows(result, names))


def _cora_root(given: str | None, tmp: Path) -> str | None:
    """A data root holding Cora: the one given, the default one, or a private copy of the read-only
    ``../shared/datasets`` beside the checkout (PyG writes ``processed/`` beside ``raw/``); None if none."""
    import shutil

    from dgnn_lab import datasets
    from dgnn_lab.settings import REPO_ROOT, data_root

    if given is not None:
        return given
    if next(i for i in datasets.list_datasets(None) if i.name == "cora").available:
        return str(data_root(None))
    shared = REPO_ROOT.parent / "shared" / "datasets" / "Planetoid"
    if (shared / "Cora" / "raw" / "ind.cora.x").exists():
        shutil.copytree(shared / "Cora", tmp / "data" / "Planetoid" / "Cora")
        return str(tmp / "data")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000, help="csbm nodes (default 100000)")
    parser.add_argument("--epochs", type=int, default=10, help="csbm epochs per variant (default 10)")
    parser.add_argument("--cora-epochs", type=int, default=200, help="Cora epochs per variant (default 200)")
    parser.add_argument("--workers", type=int, default=3, help="workers (default 3)")
    parser.add_argument("--data-root", default=None, help="where Planetoid/Cora lives (default: the usual)")
    parser.add_argument("--small", action="store_true", help="20k-node csbm, 5 epochs, Cora 60 epochs")
    parser.add_argument("--variants", default=None, metavar="A,B",
                        help=f"comma-separated subset (sync is always first); default all: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    if args.small:
        args.nodes, args.epochs, args.cora_epochs = 20_000, 5, 60
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the workers import several_cases from here

    from dgnn_lab import datasets
    from dgnn_lab.dist import cpu_cores

    print(f"{args.workers} workers on {cpu_cores()} cores; load average {os.getloadavg()[0]:.1f} (shared machine: "
          "timings are noisy, read the ratios)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_protocols_"))
    names = list(VARIANTS)
    if args.variants:
        names = ["sync"] + [n.strip() for n in args.variants.split(",") if n.strip() and n.strip() != "sync"]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            raise SystemExit(f"unknown variant {', '.join(map(repr, unknown))}; known: {', '.join(VARIANTS)}")
    root = _cora_root(args.data_root, tmp)
    if root is not None:
        datasets.load("cora", root=root)  # PyG's processed/ files, written once here, not by 3 workers at once
        common = {"dataset": "cora", "dataset_args": {"root": root}, "workers": args.workers,
                  "partition": "metis", "epochs": args.cora_epochs, "eval_every": 2, "seed": 0,
                  "threads_per_worker": 1}
        _bench(f"Cora, 2-layer GCN hidden 16, METIS, {args.cora_epochs} epochs", common, names, tmp / "cora")
    else:
        print("\nCora: not on disk (pass --data-root, set DGNN_LAB_DATA, or put it in ../shared/datasets); skipped")
    ds = {"num_nodes": args.nodes, "num_features": 64, "avg_degree": 10.0}
    common = {"dataset": "csbm", "dataset_args": ds, "workers": args.workers, "partition": "random",
              "hidden": 64, "epochs": args.epochs, "eval_every": args.epochs, "seed": 0, "threads_per_worker": 1}
    _bench(f"csbm {args.nodes:,} nodes, 64 features, avg degree 10, GCN hidden 64, random partition, "
           f"{args.epochs} epochs", common, names, tmp / "csbm")


if __name__ == "__main__":
    main()
