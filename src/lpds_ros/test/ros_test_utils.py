"""Helpers shared by the lpds_ros tests (a plain module: `conftest` names clash across test folders)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


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


def graph_env() -> dict[str, str]:
    """Environment for a graph of node processes: a private ROS domain, and this checkout's packages first."""
    from lpds_ros.process_graph import isolated_ros_env

    env = isolated_ros_env()
    paths = [str(REPO / "src" / p) for p in ("lpds_core", "lpds_sim", "lpds_ros")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env
