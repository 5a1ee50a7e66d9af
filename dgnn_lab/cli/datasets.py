"""``dgnn-lab datasets``: what can be loaded, how big it is, and whether it is on disk."""

from __future__ import annotations

import argparse

from dgnn_lab.cli.common import add_json_flag, print_json, table


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("datasets", help="list the datasets", description="List every dataset with its size "
                       "(synthetic ones at default parameters) and whether its files are on disk.")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="data root (default: $DGNN_LAB_DATA, else datasets/ in the checkout, else "
                        "~/.cache/dgnn_lab/datasets)")
    add_json_flag(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dgnn_lab.datasets import list_datasets
    from dgnn_lab.settings import PLANETOID_URL_ENV, data_root, planetoid_url

    infos = list_datasets(args.data_root)
    if args.json:
        print_json({"data_root": str(data_root(args.data_root)), "datasets": [i.as_dict() for i in infos]})
        return 0
    rows = [[i.name, i.nodes, i.edges, i.features, i.classes, i.kind, "yes" if i.available else "no",
             i.description] for i in infos]
    print(table(rows, ["name", "nodes", "edges", "features", "classes", "kind", "on disk", "description"]))
    print(f"\ndata root: {data_root(args.data_root)}  (edges are directed: both directions of each link)")
    missing = [i.name for i in infos if not i.available]
    if missing:
        print(f"not on disk: {', '.join(missing)}; downloaded on first use from {planetoid_url()} "
              f"(${PLANETOID_URL_ENV} overrides; offline, see datasets/README.md)")
    return 0
