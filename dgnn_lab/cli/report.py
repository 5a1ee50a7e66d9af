"""``dgnn-lab report RUN_DIR``: the report ``dgnn-lab train`` prints, for any finished run directory (a spawned
run, a torchrun run's per-rank record files, a run from a notebook)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dgnn_lab.cli.common import CLIError, add_json_flag


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="report a finished run from its directory",
                       description="Print the training report (or --json, the same object `dgnn-lab train "
                                   "--json` prints) of a run directory's records.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (records*.jsonl inside)")
    add_json_flag(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dgnn_lab.cli.train import print_summary, training_summary
    from dgnn_lab.dist import RunResult

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise CLIError(f"{run_dir} is not a directory")
    if not any(run_dir.glob("records*.jsonl")):
        raise CLIError(f"{run_dir} holds no run records (records*.jsonl)")
    try:
        result = RunResult.load(run_dir)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot read the run in {run_dir}: {exc}") from None
    return print_summary(training_summary(result), args.json)
