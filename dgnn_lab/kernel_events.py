"""Waiting inside a Jupyter cell without deafening the notebook's widgets.

A widget's click reaches the kernel as a message on the same channel as the next cell's code, and the kernel
handles the next message only when the running cell returns. So while a cell blocks (``dash.wait()``,
``train()``, a comparison) no click is handled, and Stop would wait for the very cell it is meant to cut short.
:func:`wait_for` handles the kernel's pending widget messages while it waits and holds back everything else
(the cells queued behind this one under Run All), which the kernel then runs in order once this cell ends.

ipykernel 7 runs every shell message through an inproc socket that the main thread reads; while the main thread
waits here, nothing else reads it, so :class:`_ShellPump` reads it: comm messages (clicks) are dispatched at
once, the rest are queued behind the running cell exactly as the kernel would have queued them. Older kernels
use jupyter-ui-poll, which does the same through ``kernel.do_one_iteration``. Outside a kernel's main thread
(scripts, the CLI, a drawing thread) it is a plain interruptible wait.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)
_inside = threading.local()  # one pump at a time: an inner wait (a dashboard waiting on its run) waits plainly
_COMM = {"comm_open", "comm_msg", "comm_close"}


def in_kernel_main_thread() -> bool:
    """True in a Jupyter kernel's main thread: the only place widget messages can be processed from."""
    return _kernel() is not None


def widgets_can_render() -> bool:
    """True inside a Jupyter kernel (any thread) unless ``DGNN_LAB_WIDGETS=0`` or Colab asks for plain figures
    (:func:`dgnn_lab.settings.widgets_enabled`): where live views may be widgets. Imports no widget library."""
    from dgnn_lab.settings import widgets_enabled

    if not widgets_enabled():
        return False
    ip = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _kernel() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return None
    ip = get_ipython()
    return getattr(ip, "kernel", None) if ip is not None else None


class _ShellPump:
    """Reads the main shell's inproc socket while the main thread would otherwise just wait (ipykernel 7+)."""

    def __init__(self, kernel: Any) -> None:
        import zmq

        self.zmq = zmq
        self.kernel = kernel
        self.socket = kernel.shell_channel_thread.manager._shell_channel_to_main.to_socket
        self.loop = asyncio.get_event_loop()
        self.deferred: list[Any] = []

    @classmethod
    def create(cls, kernel: Any) -> _ShellPump | None:
        try:
            return cls(kernel) if getattr(kernel, "_supports_kernel_subshells", False) else None
        except (AttributeError, ImportError, RuntimeError):  # another ipykernel layout: use jupyter-ui-poll
            return None

    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for shell messages; dispatch comms now, queue the rest."""
        if not self.socket.poll(int(timeout * 1000), self.zmq.POLLIN):
            return
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                msg = self.socket.recv_multipart(self.zmq.NOBLOCK, copy=False)
            except self.zmq.Again:
                return
            if self._msg_type(msg) in _COMM:
                self._dispatch_now(msg)
            else:
                self.deferred.append(msg)

    def _msg_type(self, msg: list) -> str | None:
        k = self.kernel
        try:
            _, frames = k.session.feed_identities(msg, copy=False)
            return k.session.deserialize(frames, content=False, copy=False)["header"]["msg_type"]
        except Exception:  # noqa: BLE001 - not a message we can read: the kernel handles it later
            return None

    def _dispatch_now(self, msg: list) -> None:
        k = self.kernel
        parent, ident = k.get_parent("shell"), k._get_shell_context_var(k._shell_parent_ident)
        coro = k.dispatch_shell(msg, subshell_id=None, concurrent=True)
        try:
            pending = coro.send(None)  # a comm handler runs to completion without awaiting anything
        except StopIteration:
            pass
        else:  # it awaited: it cannot finish while this thread waits, so let the kernel's loop finish it
            log.debug("a comm message awaited during wait_for; finishing it after the cell")
            self.loop.create_task(_finish(coro, pending))
        finally:
            k.set_parent(ident, parent, channel="shell")

    def close(self) -> None:
        """Queue what was held back behind the running cell, in arrival order (the kernel's own order)."""
        self._drain()
        for msg in self.deferred:
            self.loop.create_task(self.kernel.shell_main(None, msg))
        self.deferred.clear()


async def _finish(coro: Any, pending: Any) -> None:
    """Drive a coroutine that yielded ``pending`` (an asyncio future) on, from the event loop."""
    while True:
        try:
            await pending
        except Exception:  # noqa: BLE001 - the coroutine reads the future's outcome itself when resumed
            pass
        try:
            pending = coro.send(None)
        except StopIteration:
            return


def wait_for(event: threading.Event, timeout: float | None = None, *, interval: float = 0.1) -> bool:
    """``event.wait(timeout)`` that keeps the notebook's buttons working; True once the event is set.

    A KeyboardInterrupt (Jupyter's Interrupt) propagates as from any wait, so callers keep their own handling.
    """
    deadline = None if timeout is None else time.monotonic() + timeout

    def step() -> float:
        return interval if deadline is None else max(min(interval, deadline - time.monotonic()), 0.0)

    def expired() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    kernel = None if getattr(_inside, "active", False) else _kernel()
    if kernel is not None:
        _inside.active = True
        try:
            pump = _ShellPump.create(kernel)
            if pump is not None:
                try:
                    while not event.is_set() and not expired():
                        pump.pump(step())
                finally:
                    pump.close()
                return event.is_set()
            try:
                from jupyter_ui_poll import ui_events
            except ImportError:  # pragma: no cover - a dependency; without it Stop waits for the cell
                ui_events = None
            if ui_events is not None and hasattr(kernel, "do_one_iteration"):
                with ui_events() as poll:
                    while not event.is_set() and not expired():
                        poll(20)
                        event.wait(step())
                return event.is_set()
        finally:
            _inside.active = False
    while not event.wait(step()):
        if expired():
            return False
    return True
