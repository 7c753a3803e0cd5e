"""Record what goes over DDS during an episode into one MCAP bag (lpds_ros.episode_bag), from inside the graph.

`TopicRecorder` attaches subscriptions to a node (the grid evaluator, or the standalone episode_recorder node) and,
between begin() and end(), writes every message as it arrived: the serialized bytes for everything except camera
images, which are compressed the way image_transport does (raw images at 30 fps would be ~1 GB a minute).

`episode_recorder` node (deployment on the robot): parameter `record_dir` ("" = off); an episode is the time the
policy node streams, from its ~/hold_reason leaving "stopped" (~/start) to it becoming "stopped" again (~/stop,
or the recorder shutting down). The outcome of a deployment episode is unknown to the graph: it says so.
"""
from __future__ import annotations

import importlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.node import Node
from std_msgs.msg import String

from . import graph
from .episode_bag import (COMPRESSED_IMAGE, EpisodeBagWriter, encode_color, encode_depth_mm, free_bag_path,
                          stamp_ns)
from .policy_core import STOPPED
from .ros_common import declare_graph_parameters, latched_qos, run_node, sensor_qos


@dataclass(frozen=True)
class Recorded:
    topic: str  # ROS name, resolved by the recording node (relative names follow its namespace)
    msgtype: str  # e.g. sensor_msgs/msg/JointState
    qos: str = "reliable"  # sensor (best effort) | reliable | latched: what the publisher offers
    codec: str = ""  # "" the bytes as sent | jpeg / png (rgb Image -> CompressedImage) | depth (16UC1 -> compressedDepth)


def episode_topics(policy_name: str = "policy") -> list[Recorded]:
    """Observations, robot state, the policy's output before (plan, raw_target) and after (target_pose, gripper
    command, the controller's equilibrium pose) the safety filter, hold reasons, tick stats, episode info."""
    js, ps = "sensor_msgs/msg/JointState", "geometry_msgs/msg/PoseStamped"
    return [
        Recorded(graph.CAMERA_COLOR, "sensor_msgs/msg/Image", "sensor", "jpeg"),
        Recorded(graph.CAMERA_DEPTH, "sensor_msgs/msg/Image", "sensor", "depth"),
        Recorded(graph.OBS_RGB, "sensor_msgs/msg/Image", "sensor", "png"),
        Recorded(graph.OBS_DEPTH, "sensor_msgs/msg/Image", "sensor"),  # 84x84 float32 metres: lossless, 28 kB
        Recorded(graph.TASK_STATE, js, "sensor"),
        Recorded(graph.EPISODE_INFO, js),
        Recorded(graph.CURRENT_POSE, ps, "sensor"),
        Recorded(graph.JOINT_STATES, js),
        Recorded(graph.GRIPPER_STATES, js, "sensor"),
        Recorded(f"{policy_name}/plan", js),
        Recorded(f"{policy_name}/raw_target", ps),
        Recorded(graph.TARGET_POSE, ps),
        Recorded(graph.GRIPPER_COMMAND, "std_msgs/msg/Float64"),
        Recorded(graph.EQUILIBRIUM_POSE, ps),
        Recorded(f"{policy_name}/hold_reason", "std_msgs/msg/String", "latched"),
        Recorded(f"{policy_name}/tick_stats", "std_msgs/msg/Float64MultiArray"),
    ]


def _msg_class(msgtype: str) -> Any:
    pkg, _, name = msgtype.rpartition("/")
    return getattr(importlib.import_module(pkg.replace("/", ".")), name)


def _recorder_sensor_qos() -> Any:
    """Best effort like the publishers (a reliable subscriber would not match them) with a deeper queue than the
    sensor profile's 5, so a busy moment of the executor does not drop observations the policy received."""
    from rclpy.qos import HistoryPolicy, QoSProfile

    base = sensor_qos()
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=base.reliability,
                      durability=base.durability)


class TopicRecorder:
    """Subscriptions on `node`; begin(path, meta) ... end(outcome) writes one bag. Thread-safe: the executor calls
    the callbacks, the caller's thread begins and ends."""

    def __init__(self, node: Any, topics: list[Recorded], callback_group: Any = None):
        self.node = node
        self.group = callback_group  # its own group (and a multithreaded executor) keeps the host node responsive
        self._lock = threading.Lock()
        self._writer: EpisodeBagWriter | None = None
        self._latched: dict[str, tuple[str, bytes]] = {}  # topic -> last message, written first into each bag
        self._seen: dict[str, int] = {}  # topic -> last header stamp (ns) written in this bag
        self.names: dict[str, str] = {}  # Recorded.topic -> resolved name
        # images are compressed on a worker thread, not in the executor's callbacks: a callback that encodes a
        # 640x480 frame holds up every other subscription, and best-effort observations then overflow their queues
        self._jobs: queue.Queue = queue.Queue()
        self._closing = False
        threading.Thread(target=self._encode_loop, name="bag-image-encoder", daemon=True).start()
        self._subs = [self._subscribe(r) for r in topics]

    def _subscribe(self, r: Recorded) -> Any:
        qos = {"sensor": _recorder_sensor_qos, "reliable": lambda: 100, "latched": latched_qos}[r.qos]()
        cls = _msg_class(r.msgtype)
        if r.codec:
            sub = self.node.create_subscription(cls, r.topic, lambda m, r=r: self._on_image(r, m), qos,
                                                callback_group=self.group)
        else:
            sub = self.node.create_subscription(cls, r.topic, lambda b, r=r: self._on_raw(r, b), qos, raw=True,
                                                callback_group=self.group)
        self.names[r.topic] = sub.topic_name
        return sub

    def _now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def _on_raw(self, r: Recorded, data: bytes) -> None:
        name = self.names[r.topic]
        with self._lock:
            if r.qos == "latched":
                self._latched[name] = (r.msgtype, data)
            if self._writer is not None:
                self._writer.write_cdr(name, r.msgtype, data, self._now_ns())
                if r.msgtype.endswith(("JointState", "PoseStamped")):
                    self._seen[name] = self._header_ns(r.msgtype, data)

    @staticmethod
    def _header_ns(msgtype: str, data: bytes) -> int:
        from .episode_bag import typestore

        return stamp_ns(typestore().deserialize_cdr(data, msgtype).header)

    def _on_image(self, r: Recorded, msg: Any) -> None:
        if self._writer is None or self._closing:
            return
        self._jobs.put((r, msg, self._now_ns()))

    def _encode_loop(self) -> None:
        while True:
            r, msg, now = self._jobs.get()
            try:
                self._encode_and_write(r, msg, now)
            except Exception as exc:  # never let one bad frame stop the recorder
                self.node.get_logger().warning(f"not recording an image on {r.topic}: {exc}",
                                               throttle_duration_sec=5.0)
            finally:
                self._jobs.task_done()

    def _encode_and_write(self, r: Recorded, msg: Any, now: int) -> None:
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import CompressedImage

        from .image_codec import image_to_numpy, rgb_from_image

        try:
            if r.codec == "depth":
                if msg.encoding not in ("16UC1", "mono16"):
                    raise ValueError(f"depth encoding {msg.encoding} (compressedDepth png needs 16UC1)")
                fmt, data = encode_depth_mm(image_to_numpy(msg)[..., 0])
                suffix = "compressedDepth"
            else:
                fmt, data = encode_color(rgb_from_image(msg), r.codec)
                suffix = "compressed"
        except ValueError as exc:
            self.node.get_logger().warning(f"not recording an image on {r.topic}: {exc}", throttle_duration_sec=5.0)
            return
        out = CompressedImage(header=msg.header, format=fmt, data=data)
        name = f"{self.names[r.topic]}/{suffix}"
        with self._lock:
            if self._writer is not None:
                self._writer.write_cdr(name, COMPRESSED_IMAGE, serialize_message(out), now)

    # -- episodes --------------------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._writer is not None

    def begin(self, path: str | Path, meta: dict[str, Any]) -> Path:
        with self._lock:
            if self._writer is not None:
                raise RuntimeError(f"already recording {self._writer.path}")
            self._writer = EpisodeBagWriter(path, meta)
            self._seen = {}
            now = self._now_ns()
            for name, (msgtype, data) in self._latched.items():
                self._writer.write_cdr(name, msgtype, data, now)
            return self._writer.path

    def seen_stamp(self, topic: str) -> int:
        """The header stamp (ns) of the last message of `topic` (a Recorded.topic) written in this bag; -1: none."""
        return self._seen.get(self.names.get(topic, topic), -1)

    def wait_seen(self, topic: str, stamp: int, timeout: float = 2.0) -> bool:
        """Wait until the bag holds `topic`'s message stamped `stamp` (the executor may still be delivering it)."""
        deadline = time.monotonic() + timeout
        while self.seen_stamp(topic) < stamp and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.seen_stamp(topic) >= stamp

    def wait_latched(self, topic: str, accept: Any, timeout: float = 2.0) -> bool:
        """Wait until the last message of the latched `topic` (a Recorded.topic) is one `accept(msg)` takes: a bag
        begun right after a state change (the policy stopped) then opens with that state even when DDS delivers
        it late, as it does on a loaded machine."""
        from .episode_bag import typestore

        name = self.names.get(topic, topic)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                item = self._latched.get(name)
            if item is not None and accept(typestore().deserialize_cdr(item[1], item[0])):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def end(self, outcome: dict[str, Any]) -> tuple[Path, dict[str, int]] | None:
        self._closing = True  # no new images; the ones already received are still written
        try:
            self._jobs.join()
            with self._lock:
                w, self._writer = self._writer, None
                if w is None:
                    return None
                w.write_outcome(outcome, self._now_ns())
                return w.close(), dict(w.counts)
        finally:
            self._closing = False


class EpisodeRecorderNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("episode_recorder", **kwargs)
        self.p = p = declare_graph_parameters(self, "episode_recorder_node")
        self.recorder: TopicRecorder | None = None
        self.episodes = 0
        self._t0 = 0.0
        if not p["record_dir"]:
            self.get_logger().info("record_dir is empty: not recording (set it to a folder to record episodes)")
            return
        self.recorder = TopicRecorder(self, episode_topics(p["policy_name"]))
        self.create_subscription(String, f"{p['policy_name']}/hold_reason", self._on_reason, latched_qos())
        self.get_logger().info(f"recording every policy episode into {p['record_dir']}")

    def _on_reason(self, msg: String) -> None:
        stopped = msg.data == STOPPED
        if not stopped and not self.recorder.recording:
            path = free_bag_path(self.p["record_dir"], f"episode_{self.episodes:03d}")
            self.recorder.begin(path, {"source": "episode_recorder", "task": self.p["task"],
                                       "obs_mode": self.p["obs_mode"], "policy": self.p["policy_name"],
                                       "episode": self.episodes, "wall_time": time.time()})
            self._t0 = time.monotonic()
            self.get_logger().info(f"episode {self.episodes}: recording into {path}")
        elif stopped and self.recorder.recording:
            self._end("policy stopped")

    def _end(self, why: str) -> None:
        res = self.recorder.end({"episode": self.episodes, "success": None, "ended": why,
                                 "duration_s": round(time.monotonic() - self._t0, 3)})
        if res is not None:
            path, counts = res
            self.get_logger().info(f"episode {self.episodes} ({why}): {path}, "
                                   f"{counts.get(self.recorder.names[graph.TARGET_POSE], 0)} targets")
            self.episodes += 1

    def close(self) -> None:
        if self.recorder is not None and self.recorder.recording:
            self._end("recorder shut down")


def main(args: list[str] | None = None) -> int:
    return run_node(EpisodeRecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
