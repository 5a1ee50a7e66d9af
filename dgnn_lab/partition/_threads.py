"""Run small partitioning work on one torch thread.

Building a plan for a Cora-sized graph is a few milliseconds of many small tensor ops. With several intra-op
threads, each op opens a parallel region that must wait for every thread to be scheduled; on a laptop whose
cores are busy (a notebook beside training workers, or 4 workers on 2 cores) that wait dominated: the methods
on an 8k-node graph took 4-7 s with 2 threads against 0.4 s with one, measured on the lab's 2-core machine under
load. Large graphs keep every thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: Below this many edges the work runs on one thread.
SMALL_WORK_EDGES = 2_000_000


@contextmanager
def threads_for(num_edges: int) -> Iterator[None]:
    before = torch.get_num_threads()
    if num_edges >= SMALL_WORK_EDGES or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
