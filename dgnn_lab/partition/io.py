"""Save a ``PartitionPlan`` to a directory and load it back, DistDGL-style: a small JSON book plus tensors.

Layout::

    DIR/plan.json        method, kind, sizes, seed, options, notes, timings, per-part counts (human-readable)
    DIR/assignment.pt    node assignment (and edge assignment for vertex-cut)
    DIR/part{p}.pt       part p: owned, halo rings, local edges, boundary sets (rows it sends each peer) and
                         the rows it receives from each peer, in arrival order

A worker reads only its own part (:func:`load_part`) and the assignment (:func:`load_assignment`). Every file
is read with ``torch.load(weights_only=True)`` or as JSON: loading a plan never executes code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from dgnn_lab.partition.plan import PartitionPlan, PartPlan

FORMAT = "dgnn_lab.partition/1"


def save_plan(plan: PartitionPlan, path: str | os.PathLike) -> Path:
    """Write ``plan`` into directory ``path`` (created if missing; existing plan files are overwritten)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    book = {
        "format": FORMAT, "method": plan.method, "kind": plan.kind, "num_parts": plan.num_parts,
        "num_nodes": plan.num_nodes, "num_edges": plan.num_edges, "hops": plan.hops, "seed": plan.seed,
        "seconds": plan.seconds, "timings": plan.timings, "notes": plan.notes,
        "options": json.loads(json.dumps(plan.options, default=str)),
        "parts": [{"file": f"part{p.part}.pt", "owned": p.num_owned,
                   "halo_rings": [int(r.numel()) for r in p.halo_rings],
                   "local_edges": int(p.local_edge_ids.numel()),
                   "sends_to": {str(q): int(b.numel()) for q, b in p.boundary.items()}} for p in plan.parts],
    }
    for old in path.glob("part*.pt"):  # a plan saved here before with more parts must not leave files behind
        if old.stem[4:].isdigit() and int(old.stem[4:]) >= plan.num_parts:
            old.unlink()
    torch.save({"assignment": plan.assignment, "edge_assignment": plan.edge_assignment}, path / "assignment.pt")
    for p in plan.parts:
        torch.save({"part": p.part, "owned": p.owned, "halo_rings": list(p.halo_rings),
                    "local_edge_index": p.local_edge_index, "local_edge_ids": p.local_edge_ids,
                    "boundary": dict(p.boundary),
                    "recv": {q: plan.boundary(q, p.part) for q in range(plan.num_parts)
                             if q != p.part and plan.boundary(q, p.part).numel()}}, path / f"part{p.part}.pt")
    (path / "plan.json").write_text(json.dumps(book, indent=2) + "\n")
    return path


def _book(path: Path) -> dict:
    f = path / "plan.json"
    if not f.exists():
        raise FileNotFoundError(f"{path} holds no saved partition plan (missing plan.json)")
    book = json.loads(f.read_text())
    if book.get("format") != FORMAT:
        raise ValueError(f"{f} has format {book.get('format')!r}; this version reads {FORMAT!r}")
    return book


def read_book(path: str | os.PathLike) -> dict:
    """The JSON book of a saved plan (method, kind, num_parts, num_nodes, ...): cheap, no tensors."""
    return _book(Path(path))


def load_part(path: str | os.PathLike, part: int) -> PartPlan:
    """One part of a saved plan (what a worker needs); ``part.recv`` maps each peer to the global ids of the
    halo rows it sends here, in arrival order."""
    path = Path(path)
    book = _book(path)
    if not 0 <= part < book["num_parts"]:
        raise ValueError(f"part must be in 0..{book['num_parts'] - 1}, got {part}")
    d = torch.load(path / book["parts"][part]["file"], weights_only=True)
    pp = PartPlan(part=d["part"], owned=d["owned"], halo_rings=list(d["halo_rings"]),
                  local_edge_index=d["local_edge_index"], local_edge_ids=d["local_edge_ids"],
                  boundary={int(q): b for q, b in d["boundary"].items()})
    if "recv" in d:
        pp.recv = {int(q): b for q, b in d["recv"].items()}
    else:  # saved before part files listed what they receive: read it from the senders' boundary sets
        pp.recv = {}
        for q in range(book["num_parts"]):
            if q != part:
                sent = torch.load(path / book["parts"][q]["file"], weights_only=True)["boundary"]
                got = {int(k): v for k, v in sent.items()}.get(part)
                if got is not None and got.numel():
                    pp.recv[q] = got
    return pp


def load_assignment(path: str | os.PathLike) -> torch.Tensor:
    """The node assignment of a saved plan (one part id per node)."""
    return torch.load(Path(path) / "assignment.pt", weights_only=True)["assignment"]


def load_plan(path: str | os.PathLike) -> PartitionPlan:
    """A plan saved by :func:`save_plan`."""
    path = Path(path)
    book = _book(path)
    a = torch.load(path / "assignment.pt", weights_only=True)
    parts = [load_part(path, p) for p in range(book["num_parts"])]
    for p in parts:
        del p.recv
    return PartitionPlan(
        method=book["method"], num_parts=book["num_parts"], num_nodes=book["num_nodes"],
        num_edges=book["num_edges"], hops=book["hops"], assignment=a["assignment"], parts=parts,
        kind=book["kind"], seconds=book["seconds"], notes=list(book["notes"]),
        edge_assignment=a["edge_assignment"], seed=book["seed"], options=book["options"],
        timings=book["timings"],
    )
