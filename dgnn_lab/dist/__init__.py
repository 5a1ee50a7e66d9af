"""Runtime: worker processes (spawn or torchrun), the instrumented communicator, telemetry. Knows no models.

``launch(entry, config, world_size, objects=...)`` starts workers running ``entry(ctx, config)`` (with
``ctx.objects``: values sent by value over the spawn channel, never written to a file) and returns a
:class:`RunHandle` at once; ``run`` waits. Inside a worker, ``ctx.comm`` (:class:`Communicator`) carries every
byte and times compute / comm / wait; ``ctx.emit`` sends telemetry. :class:`RunResult` turns records into
tables and the training summary.

Records (plain JSON dicts; every one has ``type``, ``rank`` and a wall-clock ``time``):

* ``ready`` (runtime, per worker, after rendezvous): pid, host, backend, device, num_threads, world_size,
  local_rank, cores, oversubscribed, init_s (rendezvous seconds), rendezvous (address);
* ``start`` / ``epoch`` / ``step`` (the entry; the training's schema is :mod:`dgnn_lab.records`) and ``done`` (the entry's, or the runtime's after the
  entry returns, carrying its returned dict);
* ``error`` (runtime): traceback, exception, peer_failure (a broken or timed-out collective, i.e. probably
  the consequence of another rank's failure); ``stopped`` (an entry that honoured ``should_stop()``, or a
  torchrun worker that was signalled);
* ``run`` (launcher, ``rank`` None): first with status ``running``, last with the final status
  (done, failed, interrupted), elapsed_s and error.
"""

from .communicator import PHASES, CommunicationError, Communicator, ring_allreduce_bytes
from .context import RendezvousError, WorkerContext, cpu_cores, resolve_backend
from .launch import RunHandle, WorkerError, launch, run
from .results import RunResult

__all__ = ["PHASES", "CommunicationError", "Communicator", "RendezvousError", "RunHandle", "RunResult",
           "WorkerContext", "WorkerError", "cpu_cores", "launch", "resolve_backend", "ring_allreduce_bytes", "run"]
