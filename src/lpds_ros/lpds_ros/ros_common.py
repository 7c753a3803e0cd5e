"""Small rclpy helpers shared by the nodes (parameters from the graph description, QoS, stamps, main())."""
from __future__ import annotations

import signal
import sys
from typing import Any, Callable

from .graph import NODE_PARAMETERS


def declare_graph_parameters(node: Any, executable: str) -> dict[str, Any]:
    """Declare every parameter of `executable` from graph.NODE_PARAMETERS; returns their current values."""
    out = {}
    for name, default in NODE_PARAMETERS[executable].items():
        out[name] = node.declare_parameter(name, default).value
    return out


def sensor_qos():
    from rclpy.qos import qos_profile_sensor_data

    return qos_profile_sensor_data


def command_qos():
    """Depth 1, reliable: only the newest target matters, but it must arrive."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


def latched_qos():
    """Depth 1, reliable, transient local: a late subscriber still gets the current value (e.g. ~/hold_reason)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def stamp_to_sec(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float):
    from builtin_interfaces.msg import Time

    sec = int(t // 1)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def base_pose_msg(base: Any, position: Any, quaternion: Any, frame_id: str, stamp: Any) -> Any:
    """A world-frame pose as the PoseStamped franka_ros2 takes: in the robot base frame (`base`: a BaseFrame)."""
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    pos, quat = base.to_base(position, quaternion)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, pos)
    (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
     msg.pose.orientation.w) = map(float, quat)
    return msg


def now_sec(node: Any) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def run_node(factory: Callable[[], Any], args: list[str] | None = None, multithreaded: bool = False) -> int:
    """rclpy.init -> spin until Ctrl-C / SIGTERM / node.done -> clean shutdown. `--ros-args` are parsed by rclpy."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    rclpy.init(args=sys.argv if args is None else args)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = None
    rc = 0
    try:
        try:
            node = factory()
        except Exception as exc:  # noqa: BLE001 - one line the graph runner reports (process_graph.START_FAILURE)
            import traceback

            traceback.print_exc()
            name = getattr(factory, "__name__", "node")
            print(f"[{name}] failed to start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        executor = MultiThreadedExecutor(num_threads=2) if multithreaded else SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not getattr(node, "done", False):
            executor.spin_once(timeout_sec=0.1)
        rc = int(getattr(node, "exit_code", 0))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return rc
