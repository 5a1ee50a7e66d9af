"""A widget click reaches the lab while a cell waits: a real kernel, a real comm message, no browser.

The kernel runs a cell that blocks in :func:`dgnn_lab.kernel_events.wait_for`; meanwhile the test sends the
button's click the way JupyterLab does (a ``comm_msg`` on the shell channel) and queues one more cell. The click
must be handled during the wait, and the queued cell must still run, after the waiting one.
"""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(120)]

SETUP = """
import threading, time, ipywidgets
from dgnn_lab.kernel_events import wait_for
clicked = threading.Event()
button = ipywidgets.Button(description="Stop")
button.on_click(lambda b: clicked.set())
print(button.model_id)
"""


def _outputs(kc, msg_id: str, timeout: float = 60.0) -> str:
    """Text printed by the cell ``msg_id`` until it is done (the kernel goes idle for that request)."""
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text += content["text"]
        elif kind == "error":
            raise AssertionError("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return text
    raise TimeoutError(f"cell {msg_id} did not finish")


@pytest.fixture
def kernel():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _click(kc, model_id: str) -> None:
    kc.shell_channel.send(kc.session.msg(
        "comm_msg", {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}))


@pytest.mark.parametrize("waiter", ["wait_for", "plain"])
def test_a_click_is_handled_while_a_cell_waits(kernel, waiter):
    kc = kernel
    model_id = _outputs(kc, kc.execute(SETUP)).strip()
    wait = ("ok = wait_for(clicked, timeout=8)" if waiter == "wait_for" else "ok = clicked.wait(8)")
    waiting = kc.execute(f"t0 = time.monotonic(); {wait}; print(ok, round(time.monotonic() - t0, 2))")
    time.sleep(1.0)  # the cell is now blocked
    _click(kc, model_id)
    queued = kc.execute("print('queued cell ran', clicked.is_set())")
    ok, seconds = _outputs(kc, waiting).split()
    after = _outputs(kc, queued)
    if waiter == "wait_for":
        assert ok == "True" and float(seconds) < 4.0, (ok, seconds)  # handled during the wait, not after it
    else:  # the control: a plain wait hears nothing until the cell ends (why wait_for exists)
        assert ok == "False" and float(seconds) >= 7.9, (ok, seconds)
    assert after.strip() == "queued cell ran True"  # the cell queued behind the waiting one still ran, after it


def test_outside_a_kernel_it_is_a_plain_wait():
    import threading

    from dgnn_lab.kernel_events import in_kernel_main_thread, wait_for

    assert not in_kernel_main_thread()
    ev = threading.Event()
    t0 = time.monotonic()
    assert wait_for(ev, timeout=0.3) is False
    assert 0.25 <= time.monotonic() - t0 < 2.0
    threading.Timer(0.1, ev.set).start()
    assert wait_for(ev, timeout=5) is True
