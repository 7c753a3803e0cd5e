"""Perception: camera frames -> the policy's image observation (obs/rgb rgb8 + obs/depth 32FC1 metres, one stamp).

source `topics`: realsense2_camera topics (colour + aligned depth, matched by stamp); `sim`: the same topics from
the sim robot; `realsense`: pyrealsense2 directly through a FrameSource (lpds_ros.realsense_source: the camera via
rs.pipeline + rs.align, or an injected one such as the SDK's software device in tests).
Preprocessing (crop/resize, depth in metres, holes, hole filling) is lpds_core.image_preprocess, the transform the
simulator's camera applies at training time, the same code path for every source.
Bench calibration: the `bench_profile` YAML (lpds_core.bench_profile; empty = the default, today's RAI scene) is the same
file the simulator builds its scene from; the node publishes its camera pose (`bench_camera`) once, latched, on
`camera_pose_topic`, in the profile's frame (the sim world the policy's targets are in).
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from lpds_core.image_preprocess import PreprocessConfig, Preprocessor, depth_to_metres

from .image_codec import depth_metres_from_image, numpy_to_image, rgb_from_image
from .realsense_source import FrameSource, RealSenseCamera
from .ros_common import declare_graph_parameters, latched_qos, run_node, sec_to_stamp, sensor_qos, stamp_to_sec
from .timesync import ApproxTimePairBuffer


class PerceptionNode(Node):
    def __init__(self, frame_source: FrameSource | None = None, **kwargs: Any):
        """`frame_source` replaces the RealSense camera of source `realsense` (tests inject the software device)."""
        super().__init__("perception", **kwargs)
        self.p = p = declare_graph_parameters(self, "perception_node")
        roi = tuple(float(x) for x in p["roi"])
        self.pre = Preprocessor(PreprocessConfig(int(p["out_height"]), int(p["out_width"]),
                                                 None if roi == (0.0, 1.0, 0.0, 1.0) else roi,
                                                 float(p["depth_min"]), float(p["depth_max"])))
        self.pairs: ApproxTimePairBuffer = ApproxTimePairBuffer(float(p["sync_slop"]), 5)
        self._last_out = -np.inf
        self.published = 0
        self.dropped, self.last_drop = 0, ""  # camera frames refused (bad encoding, size mismatch) and why
        self.pub_rgb = self.create_publisher(Image, p["obs_rgb_topic"], sensor_qos())
        self.pub_depth = self.create_publisher(Image, p["obs_depth_topic"], sensor_qos())
        self._stop = threading.Event()
        self.bench = self._publish_bench_camera(p)
        if p["source"] in ("topics", "sim"):
            self.create_subscription(Image, p["color_topic"], self._on_color, sensor_qos())
            self.create_subscription(Image, p["depth_topic"], self._on_depth, sensor_qos())
        elif p["source"] == "realsense":
            self.source = frame_source if frame_source is not None else RealSenseCamera(
                int(p["realsense_width"]), int(p["realsense_height"]), int(p["realsense_fps"]),
                str(p["realsense_serial"]))
            self.source.start()  # fails here, with one line, if the SDK or the camera is missing
            self._thread = threading.Thread(target=self._realsense_loop, daemon=True)
            self._thread.start()
        else:
            raise ValueError(f"source must be topics, sim or realsense, got {p['source']!r}")
        self.get_logger().info(f"perception up: source={p['source']} -> {p['out_height']}x{p['out_width']}")

    def _publish_bench_camera(self, p: dict[str, Any]) -> Any:
        """Load the bench profile (a bad file stops the node with one line) and latch its camera pose."""
        from geometry_msgs.msg import PoseStamped
        from lpds_core.bench_profile import PROFILE_FRAME, load_profile

        bench = load_profile(p["bench_profile"])
        pos, quat = bench.camera_pose(p["bench_camera"])
        msg = PoseStamped()
        msg.header.frame_id = PROFILE_FRAME
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        self.pub_camera_pose = self.create_publisher(PoseStamped, p["camera_pose_topic"], latched_qos())
        self.pub_camera_pose.publish(msg)
        self.get_logger().info(f"bench profile {p['bench_profile'] or '(default)'} ({bench.bench_name}): "
                               f"{p['bench_camera']} at {[round(float(v), 4) for v in pos]} in {PROFILE_FRAME}")
        return bench

    def _on_color(self, msg: Image) -> None:
        self.pairs.add_a(stamp_to_sec(msg.header.stamp), msg)
        self._try_publish()

    def _on_depth(self, msg: Image) -> None:
        self.pairs.add_b(stamp_to_sec(msg.header.stamp), msg)
        self._try_publish()

    def _try_publish(self) -> None:
        pair = self.pairs.latest_pair()
        if pair is None or pair[0] <= self._last_out:
            return
        stamp, color, _, depth = pair
        self._last_out = stamp
        try:
            rgb = rgb_from_image(color)
            depth_m = depth_metres_from_image(depth, float(self.p["depth_unit"]))
            self.process(rgb, depth_m, color.header.stamp)
        except ValueError as exc:
            self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        self.dropped += 1
        self.last_drop = f"dropping camera frame: {exc}"
        self.get_logger().warning(self.last_drop, throttle_duration_sec=1.0)

    def process(self, rgb: np.ndarray, depth_m: np.ndarray, stamp: Any) -> None:
        rgb_o, depth_o = self.pre(rgb, depth_m)
        frame = self.p["frame_id"]
        self.pub_rgb.publish(numpy_to_image(rgb_o.transpose(1, 2, 0), "rgb8", stamp, frame))
        self.pub_depth.publish(numpy_to_image(depth_o[0], "32FC1", stamp, frame))
        self.published += 1
        if self.published == 1:
            self.get_logger().info(f"first observation published: rgb {rgb.shape[:2]} -> {rgb_o.shape}, "
                                   f"depth -> {depth_o.shape}")

    def _realsense_loop(self) -> None:
        src = self.source
        try:
            while not self._stop.is_set():
                frame = src.read(0.5)
                if frame is None:
                    continue
                rgb, z16, _ = frame
                try:
                    self.process(rgb, depth_to_metres(z16, src.depth_scale),
                                 sec_to_stamp(self.get_clock().now().nanoseconds * 1e-9))
                except ValueError as exc:
                    self._drop(exc)
        except Exception as exc:  # noqa: BLE001 - camera lost: stop the node with one line, not a silent thread
            self.get_logger().fatal(f"realsense source stopped: {type(exc).__name__}: {exc}")
            self.done, self.exit_code = True, 1
        finally:
            src.stop()

    def close(self) -> None:
        self._stop.set()
        th = getattr(self, "_thread", None)
        if th is not None and th is not threading.current_thread():
            th.join(timeout=2.0)  # the loop stops the camera on its way out


def main(args: list[str] | None = None) -> int:
    return run_node(PerceptionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
