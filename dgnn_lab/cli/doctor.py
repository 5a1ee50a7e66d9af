"""``dgnn-lab doctor``: is this machine ready for the lab?"""

from __future__ import annotations

import argparse

from dgnn_lab.cli.common import add_json_flag, print_json


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("doctor", help="check Python, torch, backends, widgets and ports",
                       description="Check that everything the lab needs is installed and usable here. "
                                   "Exit code 1 when something required is missing.")
    add_json_flag(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dgnn_lab.doctor import healthy, run_checks

    checks = run_checks()
    ok = healthy(checks)
    if args.json:
        print_json({"ok": ok, "checks": [c.as_dict() for c in checks]})
    else:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"[{mark[c.status]}] {c.name.ljust(width)}  {c.detail}")
            if c.fix and c.status != "ok":
                print(f"       {' ' * width}  fix: {c.fix}")
        print("\nall required checks passed" if ok else "\nsome required checks failed: see 'fix' above")
    return 0 if ok else 1
