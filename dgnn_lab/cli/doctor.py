"""``dgnn-lab doctor``: is this machine ready for the lab?"""

from __future__ import annotations

import argparse

from dgnn_lab.cli.common import add_json_flag, print_json


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("doctor", help="check Python, torch, backends, widgets, ports and where data and runs go",
                       description="Check that everything the lab needs is installed and usable here. "
                                   "Also reports the data root (which Planetoid datasets are on disk, which download "
                                   "on first use, and from where) and the runs root. "
                                   "Exit code 1 when something required is missing.")
    add_json_flag(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dgnn_lab.doctor import format_text, healthy, run_checks

    checks = run_checks()
    ok = healthy(checks)
    if args.json:
        print_json({"ok": ok, "checks": [c.as_dict() for c in checks]})
    else:
        print(format_text(checks))
    return 0 if ok else 1
