"""The ``dgnn-lab`` command. Each subcommand is a module here exposing ``register(subparsers)`` and ``run(args)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from dgnn_lab.cli.common import CLIError, LazyArgumentParser

#: Subcommand modules, in the order ``--help`` lists them. A module missing from a checkout is skipped.
COMMANDS = ("doctor", "datasets", "partition", "train", "report", "demo", "lab", "course")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgnn-lab",
        description="dgnn_lab: a lab for distributed graph neural network training.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=LazyArgumentParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"dgnn_lab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dgnn_lab.cli.{name}":
                continue
            raise
        p = module.register(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a subcommand that passes its extra arguments on (`demo` -> `train`) sets extra=[]
        if not isinstance(getattr(args, "extra", None), list):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.extra = unknown[1:] if unknown[:1] == ["--"] else unknown
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except CLIError as exc:
        print(f"dgnn-lab {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"dgnn-lab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dgnn-lab ... | head`: the reader left; not an error worth a traceback
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
