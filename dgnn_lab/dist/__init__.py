"""Runtime: worker processes (spawn or torchrun), the instrumented communicator, telemetry. Knows no models.

``launch(entry, config, world_size)`` starts workers running ``entry(ctx, config)`` and returns a
:class:`RunHandle` at once; ``run`` waits. Inside a worker, ``ctx.comm`` (:class:`Communicator`) carries every
byte and times compute / comm / wait; ``ctx.emit`` sends telemetry. :class:`RunResult` turns records into
tables and the training summary.
"""

from .communicator import PHASES, CommunicationError, Communicator, ring_allreduce_bytes
from .context import RendezvousError, WorkerContext, cpu_cores, resolve_backend
from .launch import RunHandle, WorkerError, launch, run
from .results import RunResult

__all__ = ["PHASES", "CommunicationError", "Communicator", "RendezvousError", "RunHandle", "RunResult",
           "WorkerContext", "WorkerError", "cpu_cores", "launch", "resolve_backend", "ring_allreduce_bytes", "run"]
