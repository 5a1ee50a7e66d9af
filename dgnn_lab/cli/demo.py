"""``dgnn-lab demo``: the headline demo in a terminal: real distributed training on a generated graph."""

from __future__ import annotations

import argparse

from dgnn_lab.settings import smoke_mode

#: The embedded default: a csbm graph, 4 workers, METIS, a 2-layer GCN.
DEMO_ARGS = ["--dataset", "csbm", "--dataset-arg", "num_nodes=20000", "--workers", "4", "--partition", "metis",
             "--mode", "full-sync", "--model", "gcn", "--epochs", "30"]
SMOKE_ARGS = ["--dataset", "csbm", "--dataset-arg", "num_nodes=2000", "--workers", "2", "--partition", "metis",
              "--mode", "full-sync", "--model", "gcn", "--epochs", "3"]


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="a terminal demo: 4 workers train a GCN on a generated graph",
                       usage="dgnn-lab demo [-h] [TRAIN-OPTION ...]",
                       description="Run real distributed training (4 worker processes, gloo on CPU) on a "
                                   "20,000-node csbm graph and print the report. Extra arguments are more "
                                   "`dgnn-lab train` options (see `dgnn-lab train --help`), e.g. --epochs 50; "
                                   "a later one overrides the demo's.")
    # no positional: argparse's REMAINDER drops an option-like first argument (`demo --epochs 50`); main()
    # hands every argument this parser does not know to `extra`, in order
    p.set_defaults(extra=[])
    return p


def run(args: argparse.Namespace) -> int:
    from dgnn_lab.cli import main

    base = SMOKE_ARGS if smoke_mode() else DEMO_ARGS
    print("dgnn-lab demo: dgnn-lab train " + " ".join(base + args.extra), flush=True)
    return main(["train", *base, *args.extra])
