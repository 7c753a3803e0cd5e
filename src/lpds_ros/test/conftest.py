"""ROS tests isolate themselves: a random ROS_DOMAIN_ID, localhost-only discovery and Fast DDS, set before rclpy loads."""
from __future__ import annotations

import os
import random
import threading
import time

import pytest

os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid() ^ int(time.time())).randint(1, 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"


def rclpy_available() -> bool:
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def ros():
    """A private rclpy context with an executor spinning in a background thread: yields (context, add_node)."""
    if not rclpy_available():
        pytest.skip("rclpy is not installed")
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    ctx = Context()
    rclpy.init(context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    nodes = []
    stop = threading.Event()

    def spin():
        while not stop.is_set() and ctx.ok():
            ex.spin_once(timeout_sec=0.02)

    th = threading.Thread(target=spin, daemon=True)

    def add(node):
        nodes.append(node)
        ex.add_node(node)
        return node

    th.start()
    try:
        yield ctx, add
    finally:
        stop.set()
        th.join(timeout=5)
        for n in nodes:
            n.destroy_node()
        ex.shutdown()
        rclpy.try_shutdown(context=ctx)
    assert not ctx.ok()


_PREBUILD: dict = {}


def pytest_collection_finish(session):
    """When a selected test needs the interface packages, start their build now, so it runs beside the tests before."""
    if session.config.option.collectonly:
        return
    if any("franka_interfaces_env" in getattr(item, "fixturenames", ()) for item in session.items):
        from ros_test_utils import start_test_interfaces_build

        _PREBUILD["proc"] = start_test_interfaces_build()


def pytest_sessionfinish(session):
    proc = _PREBUILD.pop("proc", None)
    if proc is not None and proc.poll() is None:  # the run ended first (-x, Ctrl-C): build.sh redoes a cut build
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


@pytest.fixture(scope="session")
def franka_interfaces_env():
    """The test-only franka_msgs / control_msgs stand-ins, built once (cached by hash under build/test_interfaces):
    the environment of a shell that sourced their install/setup.bash. Tests run the typed code in a subprocess with
    it; nothing here touches this process's sys.path, so a real franka_msgs is never shadowed."""
    from ros_test_utils import build_test_interfaces

    proc = _PREBUILD.pop("proc", None)
    if proc is not None:
        proc.wait()
    return build_test_interfaces()
