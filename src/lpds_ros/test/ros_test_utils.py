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


def _interfaces_build_cmd() -> tuple[list[str], Path]:
    import sys

    here = Path(__file__).resolve().parent
    cache = here.parents[2] / "build" / "test_interfaces"
    return ["bash", str(here / "interfaces" / "build.sh"), str(cache), sys.executable], cache


def start_test_interfaces_build():
    """build.sh in the background (its own process group, output discarded): the colcon build, ~50 s on two
    cores, overlaps the tests that run first. `build_test_interfaces` waits on build.sh's lock, then finds the
    cache up to date, or rebuilds and reports the error itself."""
    import subprocess

    cmd, _ = _interfaces_build_cmd()
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def build_test_interfaces() -> dict[str, str]:
    """Run test/interfaces/build.sh into <repo>/build/test_interfaces; return the sourced environment."""
    import subprocess

    cmd, cache = _interfaces_build_cmd()
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    print(f"{out.stdout.strip()} ({time.monotonic() - t0:.1f} s)")
    env = subprocess.run(["bash", "-c", f". {cache / 'install' / 'setup.bash'} && env -0"], capture_output=True,
                         check=True, env=os.environ.copy()).stdout.decode()
    return dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv)
