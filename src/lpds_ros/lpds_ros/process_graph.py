"""Run a graph description as plain processes (`python -m lpds_ros.<node> --ros-args ...`): no ros2cli, no launch.

Used by `lpds ros-sim`, the benchmark and the end-to-end tests.
"""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lpds_core.errors import RunError

from .graph import NodeSpec, process_command, write_params_file

START_FAILURE = "failed to start:"  # the line ros_common.run_node prints when a node cannot be built
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


class NodeExited(RunError):
    """A node of the graph exited before the node being waited for: its name and its own error, in one line."""


def last_error_line(log: str) -> str:
    """The line of a node's log that says why it died: run_node's start failure, else the last exception line
    of a traceback, else the last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if START_FAILURE in ln:
            return ln.split(START_FAILURE, 1)[1].strip()
    for ln in reversed(lines):
        if _EXCEPTION_LINE.match(ln):
            return ln
    return lines[-1] if lines else "(no output)"


def isolated_ros_env(domain_id: int | None = None, base: dict | None = None) -> dict[str, str]:
    """Environment for a private ROS graph: random domain, localhost-only discovery, Fast DDS."""
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else random.randint(1, 100))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a live process in MiB, from /proc (Linux); None when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


class GraphProcesses:
    def __init__(self, specs: list[NodeSpec], env: dict[str, str] | None = None, log_dir: str | None = None,
                 python: str = sys.executable):
        self.specs, self.python = specs, python
        self.env = env if env is not None else isolated_ros_env()
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="lpds_ros_graph_"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.peak_rss: dict[str, float] = {}  # MiB per node, read just before stop() (DESIGN §6: policy ≤ 500)

    def start(self) -> "GraphProcesses":
        for spec in self.specs:
            params = write_params_file(spec, str(self.log_dir))
            log = open(self.log_dir / f"{spec.name}.log", "w")
            self.procs[spec.name] = subprocess.Popen(process_command(spec, self.python, params), env=self.env,
                                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self, name: str) -> str:
        p = self.log_dir / f"{name}.log"
        return p.read_text() if p.exists() else ""

    def wait(self, name: str, timeout: float | None = None, poll: float = 0.2) -> int:
        """Exit code of one node (e.g. the evaluator, which exits when the protocol is done). Any other node that
        exits first (a failed start, a crash) raises NodeExited with that node's own error, instead of leaving
        the awaited node to time out on a service that will never come."""
        deadline = None if timeout is None else time.monotonic() + timeout
        proc = self.procs[name]
        while True:
            rc = proc.poll()
            self.check_alive(exclude=name)
            if rc is not None:
                return rc
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            time.sleep(poll)

    def check_alive(self, exclude: str | None = None) -> None:
        """NodeExited for the first node (other than `exclude`) that is no longer running."""
        for name, p in self.procs.items():
            if name != exclude and p.poll() is not None:
                raise NodeExited(f"node {name} exited with code {p.returncode}: {last_error_line(self.log(name))} "
                                 f"(log: {self.log_dir / (name + '.log')})")

    def stop(self, timeout: float = 10.0) -> None:
        for name, p in self.procs.items():
            if p.poll() is None and (rss := peak_rss_mib(p.pid)) is not None:
                self.peak_rss[name] = rss
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def __enter__(self) -> "GraphProcesses":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
