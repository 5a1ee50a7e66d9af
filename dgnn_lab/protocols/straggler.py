"""Straggler injection: make one worker behave like a machine ``factor`` times slower.

Worker ``rank`` of ``TrainConfig.straggler = [rank, factor]`` sleeps, once per step and *inside its compute
phase*, for ``(factor - 1) x`` the compute time it measured for that step (the communicator's compute clock:
transfers and waits excluded). Its compute time therefore becomes about ``factor`` times its own, the
dashboard shows the extra as compute (as a slower CPU would), and every synchronisation point after it makes
the other workers *wait* for it. It is a simulation of a slower machine, not a measurement of one: the real
hardware is unchanged, and the whole delay lands at one point of the step (just before the gradient
synchronisation) instead of being spread over every kernel, so the halo exchanges inside the step do not
wait for it; the gradient all-reduce (or the parameter server's round) does.

Synchronous protocols turn the straggler's delay into everyone's waiting time; asynchronous ones
(local SGD between averaging rounds, a parameter server with staleness bound ``s > 0``) let the others run
on, paying with staleness instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Straggler:
    """Slows this worker's compute by ``factor`` (1.0: not a straggler; :meth:`delay` then does nothing)."""

    factor: float = 1.0
    #: seconds slept so far in the current epoch (reset by :meth:`take`)
    slept_s: float = 0.0

    @classmethod
    def from_config(cls, cfg, rank: int) -> Straggler:
        """The straggler of ``cfg.straggler`` (``[rank, factor]`` or None) as seen by worker ``rank``."""
        if cfg.straggler is not None and int(cfg.straggler[0]) == rank:
            return cls(float(cfg.straggler[1]))
        return cls(1.0)

    @property
    def active(self) -> bool:
        return self.factor > 1.0

    def delay(self, comm, since: float = 0.0) -> float:
        """Sleep ``(factor - 1) x`` the compute seconds charged since ``since`` (a value of
        ``comm.elapsed("compute")`` taken at the start of the step), inside a compute phase; returns the
        seconds slept."""
        if not self.active:
            return 0.0
        own = max(comm.elapsed("compute") - since, 0.0)
        extra = (self.factor - 1.0) * own
        with comm.phase("compute"):
            time.sleep(extra)
        self.slept_s += extra
        return extra

    def take(self) -> float:
        """Seconds slept since the last call (for the epoch record's ``straggler_s``)."""
        s, self.slept_s = self.slept_s, 0.0
        return s
