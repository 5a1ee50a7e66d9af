"""Pieces every subcommand shares: dataset options, JSON output, and the one error type users see."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch_geometric takes seconds to import: `doctor` and `--help` must not pay for it
    from torch_geometric.data import Data


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code ``code`` (no traceback)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class LazyArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose options may be added on first use (:meth:`defer`): a subcommand whose
    options need heavy imports (``train``'s come from ``TrainConfig``) costs nothing until it is parsed or its
    help is shown, so ``dgnn-lab doctor`` and ``dgnn-lab --help`` stay light."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list = []

    def defer(self, build) -> None:
        """Run ``build(self)`` before this parser is first used."""
        self._deferred.append(build)

    def _build(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):
        self._build()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._build()
        return super().format_usage()

    def format_help(self) -> str:
        self._build()
        return super().format_help()


def defer(parser: argparse.ArgumentParser, build) -> None:
    """``build(parser)`` now, or on first use when ``parser`` is a :class:`LazyArgumentParser`."""
    if isinstance(parser, LazyArgumentParser):
        parser.defer(build)
    else:
        build(parser)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a report")


def add_dataset_args(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--dataset``, ``--data-root`` and repeatable ``--dataset-arg KEY=VALUE``."""
    parser.add_argument("--dataset", default=default, required=default is None, help="dataset name (see `datasets`)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="data root (default: $DGNN_LAB_DATA, else datasets/ in the checkout)")
    parser.add_argument("--dataset-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="generator parameter, repeatable (e.g. --dataset-arg num_nodes=50000)")


def dataset_params(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``datasets.load`` gets from ``--dataset-arg`` and ``--data-root``."""
    from dgnn_lab import datasets

    try:
        params = datasets.parse_dataset_args(args.dataset, args.dataset_arg)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.data_root is not None:
        if args.dataset.lower() not in ("cora", "citeseer", "pubmed"):
            raise CLIError(f"--data-root applies to the Planetoid datasets only, not {args.dataset!r}")
        params["root"] = args.data_root
    return params


def load_dataset(args: argparse.Namespace) -> Data:
    """Load ``--dataset`` with its options, turning bad input into a one-line :class:`CLIError`."""
    from dgnn_lab import datasets

    params = dataset_params(args)
    try:
        return datasets.load(args.dataset, **params)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def table(rows: list[list[Any]], header: list[str]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if k and _num(rows[k - 1][i]) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)
