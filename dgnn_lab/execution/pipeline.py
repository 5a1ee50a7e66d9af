"""Pipelining for mini-batch training: prepare batch ``i + 1`` (sample + fetch) while batch ``i`` trains.

A step of distributed mini-batch training has three stages: *sample* the computation graph, *fetch* the
input features (both mostly waiting on other workers), then *train*. They depend on each other only within
one batch, so a background thread can run the first two for the next batch while the main thread trains the
current one (PyTorch's ``DataLoader`` prefetching, DistDGL's sampler processes, the P3/GNNLab pipelines).

:class:`Prefetcher` does it with one thread and a one-slot queue. The thread makes collective calls (owner
sampling and feature fetching answer the other workers), and collectives issued by two threads on one gloo
process group can be matched in different orders on different ranks: deadlock or silently swapped tensors.
So the prefetch thread gets its own process group and :class:`~dgnn_lab.dist.Communicator`
(:meth:`Communicator.fork <dgnn_lab.dist.Communicator.fork>`), created by every rank in the same order; its
bytes are merged into the main communicator's epoch statistics.

Measuring the overlap: with stage times ``sample_s``, ``fetch_s`` (in the thread) and ``train_s`` (main
thread) summed over an epoch's steps and ``wall_s`` the loop's wall time, ``overlap_s = sample_s + fetch_s +
train_s - wall_s``: ~0 when sequential, up to ``min(sample_s + fetch_s, train_s)`` when perfectly hidden.
On a CPU-only machine the stages also compete for the same cores, so the overlap can be smaller than the
time the stages spend waiting on the network suggests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Prefetcher", "overlap_seconds"]


def overlap_seconds(stage_s: float, wall_s: float) -> float:
    """Stage time hidden by running stages concurrently: the sum of stage times minus the wall time."""
    return float(stage_s) - float(wall_s)


class Prefetcher(Generic[T]):
    """Iterate ``produce(0), ..., produce(n - 1)`` in order; with ``enabled`` a background thread runs
    ``produce(i + 1)`` while the caller works on item ``i`` (one item ahead, a one-slot queue).

    ``wait_s`` is the time the caller blocked waiting for the next item (0 when everything was hidden;
    without the thread, the whole production time). An exception in ``produce`` is re-raised in the caller.
    One Prefetcher serves one pass (an epoch); :meth:`close` stops a pass left early.
    """

    def __init__(self, produce: Callable[[int], T], num_items: int, enabled: bool = True) -> None:
        if int(num_items) < 0:
            raise ValueError(f"num_items must be >= 0, got {num_items}")
        self.produce = produce
        self.num_items = int(num_items)
        self.enabled = bool(enabled)
        self.wait_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=1)

    def _run(self) -> None:
        for i in range(self.num_items):
            if self._stop.is_set():
                return
            try:
                item = ("ok", self.produce(i))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
                item = ("error", e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[0] == "error":
                return

    def __iter__(self) -> Iterator[T]:
        if not self.enabled:
            for i in range(self.num_items):
                t0 = time.perf_counter()
                item = self.produce(i)
                self.wait_s += time.perf_counter() - t0
                yield item
            return
        self._thread = threading.Thread(target=self._run, name="dgnn-prefetch", daemon=True)
        self._thread.start()
        try:
            for _ in range(self.num_items):
                t0 = time.perf_counter()
                kind, item = self._queue.get()
                self.wait_s += time.perf_counter() - t0
                if kind == "error":
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (after its current item) and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)
