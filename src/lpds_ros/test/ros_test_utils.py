"""Helpers shared by the lpds_ros tests (a plain module: `conftest` names clash across test folders)."""
from __future__ import annotations

import threading
import time


def wait_for(pred, timeout: float = 10.0, period: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(period)
    return pred()


def call_trigger(node, service: str, timeout: float = 5.0):
    from std_srvs.srv import Trigger

    cli = node.create_client(Trigger, service)
    assert cli.wait_for_service(timeout_sec=timeout), f"service {service} not available"
    fut = cli.call_async(Trigger.Request())
    ev = threading.Event()
    fut.add_done_callback(lambda _f: ev.set())
    assert ev.wait(timeout), f"{service} did not answer"
    return fut.result()
