"""Synchronous vs asynchronous training, with and without a straggler: accuracy, time, waiting, bytes, staleness.

Run by hand: ``.venv/bin/python benchmarks/bench_async.py [--data-root R] [--workers 3] [--epochs 200]
[--factor 2] [--small]``.

Back to back in one run, on Cora (METIS, 2-layer GCN, the GCN paper's setting):

* ``full-sync``: the all-reduce baseline, then the same with worker 1 a ``factor``-x straggler;
* ``ps s=0`` / ``ps s=2``: the parameter server (one more process) with staleness bound 0 and 2, straggler on;
* ``local-sgd K=5``: communication-free local training averaged every 5 epochs, straggler off and on;
* ``local-sgd + ps s=2``: no halo, gradients through the server, straggler on (truly asynchronous).

For each: test accuracy (final, and at best validation where evaluated), median epoch time (slowest
worker), mean wait per epoch of the non-straggling workers and of the straggler, all bytes and training
bytes (everything but ``eval``/``metrics``), and the gradient-staleness histogram. Timings on a shared 2-core
machine are noisy (the load average is printed); read the ratios against the baseline measured in this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path


def _row(name: str, res, slow_rank: int | None) -> dict:
    import numpy as np

    s = res.summary()
    eps = [r for r in res.records if r.get("type") == "epoch" and r.get("role") != "server"]
    ranks = sorted({r["rank"] for r in eps})
    wait = {q: np.mean([r["wait_s"] for r in eps if r["rank"] == q]) for q in ranks}
    others = [wait[q] for q in ranks if q != slow_rank]
    train_bytes = sum(n for r in eps for per in r["bytes_sent"].values() for k, n in per.items()
                      if k not in ("eval", "metrics"))
    server = [r for r in res.records if r.get("type") == "epoch" and r.get("role") == "server"]
    train_bytes += sum(n for r in server for per in (r.get("bytes_sent") or {}).values() for n in per.values())
    sec = [x for x in s["epoch_seconds"][1:] if x is not None]
    return {"run": name, "test": s["test_acc"], "test@val": s["test_acc_at_best_val"],
            "epoch_ms": 1e3 * statistics.median(sec) if sec else float("nan"),
            "wait_others_ms": 1e3 * float(np.mean(others)) if others else float("nan"),
            "wait_slow_ms": 1e3 * wait[slow_rank] if slow_rank in wait else float("nan"),
            "train_MB": train_bytes / 1e6, "all_MB": s["total_bytes"] / 1e6,
            "staleness": (s.get("grad_staleness") or {}).get("hist")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="Planetoid root (default: $DGNN_LAB_DATA / ../shared)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--factor", type=float, default=2.0, help="straggler slowdown of worker 1 (default 2)")
    parser.add_argument("--small", action="store_true", help="60 epochs: a quick check")
    args = parser.parse_args()
    if args.small:
        args.epochs = 60
    from dgnn_lab.settings import REPO_ROOT
    from dgnn_lab.train import train

    root = args.data_root or os.environ.get("DGNN_LAB_DATA") or str(REPO_ROOT.parent / "shared" / "datasets")
    base = {"dataset": "cora", "dataset_args": {"root": root}, "workers": args.workers, "epochs": args.epochs,
            "partition": "metis", "eval_every": 5, "timeout_s": 300}
    slow = [1, args.factor]
    runs = [("full-sync", {}, None), (f"full-sync, straggler {args.factor:g}x", {"straggler": slow}, 1),
            ("ps s=0, straggler", {"sync": "ps", "staleness": 0, "straggler": slow}, 1),
            ("ps s=2, straggler", {"sync": "ps", "staleness": 2, "straggler": slow}, 1),
            ("local-sgd K=5", {"mode": "local-sgd", "local_sgd_period": 5}, None),
            ("local-sgd K=5, straggler", {"mode": "local-sgd", "local_sgd_period": 5, "straggler": slow}, 1),
            ("local-sgd + ps s=2, straggler", {"mode": "local-sgd", "sync": "ps", "staleness": 2, "straggler": slow,
                                               "eval_every": args.epochs}, 1)]  # evaluations are collective
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cpus; Cora, {args.workers} workers, {args.epochs} epochs")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra, slow_rank) in enumerate(runs):
            res = train(**{**base, **extra}, run_dir=str(Path(tmp) / f"r{i}"))
            rows.append(_row(name, res, slow_rank))
            r = rows[-1]
            nan = float("nan")
            print(f"{r['run']:32s} test {r['test'] or nan:.3f} (at best val {r['test@val'] or nan:.3f})"
                  f"  epoch {r['epoch_ms']:.1f} ms  wait others {r['wait_others_ms']:.1f} ms, straggler "
                  f"{r['wait_slow_ms']:.1f} ms  training bytes {r['train_MB']:.2f} MB (all {r['all_MB']:.2f} MB)"
                  f"  staleness {r['staleness']}", flush=True)
    base_ms = rows[0]["epoch_ms"]
    print("\nepoch time relative to full-sync without straggler:")
    for r in rows:
        print(f"  {r['run']:32s} {r['epoch_ms'] / base_ms:5.2f}x")


if __name__ == "__main__":
    main()
