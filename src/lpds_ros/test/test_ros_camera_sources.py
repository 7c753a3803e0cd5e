"""The perception node's camera sources against the real interfaces, over rclpy: `realsense` with pyrealsense2's
software device (rgb8 + z16 frames injected, paired by rs.syncer, rs.align to colour, depth units read from the
device) and `topics` with realsense2_camera's topic names and encodings. In both, the published observation must
equal what the simulator's camera (the training-time transform) makes of the same frame — hole filling included."""
from __future__ import annotations

import numpy as np
import pytest

from ros_test_utils import wait_for

pytestmark = pytest.mark.ros

COLOR = "/camera/camera/color/image_raw"  # realsense2_camera >= 4.55 with align_depth.enable:=true
DEPTH = "/camera/camera/aligned_depth_to_color/image_raw"
INFO = ("/camera/camera/color/camera_info", "/camera/camera/aligned_depth_to_color/camera_info")


def bench_frame() -> tuple[np.ndarray, np.ndarray]:
    """640x480: textured table at 1.0-1.3 m, a red cube at 0.8 m, sensor holes (0), a region beyond range."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:480, 0:640]
    rgb = np.stack([(xx * 255 // 639), (yy * 255 // 479), np.full_like(xx, 90)], -1).astype(np.uint8)
    rgb = np.clip(rgb + rng.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)
    depth = (1.0 + 0.3 * yy / 479).astype(np.float32)
    rgb[200:300, 280:380], depth[200:300, 280:380] = (220, 30, 30), 0.8
    depth[rng.random(depth.shape) < 0.03] = 0.0  # speckle holes
    depth[300:310, 380:420] = 0.0  # the cube's shadow
    depth[0:30, 500:640] = 4.0  # beyond depth_max (3 m): a hole too
    return rgb, depth


def training_transform(rgb: np.ndarray, depth_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What lpds_sim's camera makes of a raw frame (noise off): rgb (3,84,84), depth (1,84,84) metres."""
    from lpds_sim.rai.camera import CameraSpec, observation_from_frame

    return observation_from_frame(rgb, depth_m, CameraSpec())


def _observer(ctx, add):
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from lpds_ros.image_codec import image_to_numpy
    from lpds_ros.ros_common import sensor_qos, stamp_to_sec

    obs: dict[float, dict[str, np.ndarray]] = {}
    node = add(Node("observer", context=ctx))

    def keep(kind):
        return lambda m: obs.setdefault(stamp_to_sec(m.header.stamp), {}).update({kind: image_to_numpy(m)})

    node.create_subscription(Image, "lpds/obs/rgb", keep("rgb"), sensor_qos())
    node.create_subscription(Image, "lpds/obs/depth", keep("depth"), sensor_qos())
    return node, obs


def _complete(obs):
    return [v for _, v in sorted(obs.items()) if len(v) == 2]


def _assert_equal_obs(got, want):
    np.testing.assert_array_equal(got["rgb"].transpose(2, 0, 1), want[0])
    np.testing.assert_array_equal(got["depth"][..., 0], want[1][0])


class Recording:
    """A FrameSource that keeps what the wrapped one handed out (the SDK's aligned frames)."""

    def __init__(self, src):
        self.src, self.frames = src, []

    @property
    def depth_scale(self):
        return self.src.depth_scale

    def start(self):
        self.src.start()

    def read(self, timeout_s):
        f = self.src.read(timeout_s)
        if f is not None:
            self.frames.append(f)
        return f

    def stop(self):
        self.src.stop()


def test_realsense_software_device_observation_equals_the_training_transform(ros):
    from rclpy.parameter import Parameter

    from lpds_core.image_preprocess import depth_to_metres, metres_to_depth_units
    from lpds_ros.perception_node import PerceptionNode
    from lpds_ros.realsense_source import SoftwareRealSense

    ctx, add = ros
    _, obs = _observer(ctx, add)
    units = 1e-4  # a D405-like depth unit: the node's depth_unit parameter (1 mm) must not be what is used
    # depth streams 848x480 like a D435's depth module (same focal, same pose): only rs.align makes it 640x480
    cam = Recording(SoftwareRealSense(depth_units=units, depth_size=(848, 480)))
    node = add(PerceptionNode(frame_source=cam, context=ctx,
                              parameter_overrides=[Parameter("source", value="realsense")]))
    try:
        rgb, depth_m = bench_frame()
        z16 = metres_to_depth_units(depth_m, units)
        z16_wide = np.pad(z16, ((0, 0), (104, 104)), constant_values=20000)  # the depth FOV is wider (2 m there)
        for i in range(50):
            cam.src.inject(rgb, z16_wide, 1.0 + i / 30)
            if wait_for(lambda: len(_complete(obs)) >= 2, 0.1):
                break
        got = _complete(obs)
        assert len(got) >= 2, f"published {node.published}, dropped {node.dropped}: {node.last_drop}"
    finally:
        node.close()
    assert node.p["depth_unit"] == 0.001 and cam.depth_scale == pytest.approx(units, rel=1e-6)
    a_rgb, a_z16, _ = cam.frames[-1]
    assert all(np.array_equal(f[1], a_z16) for f in cam.frames)  # the same injected pair aligns the same way
    np.testing.assert_array_equal(a_rgb, rgb)
    assert a_z16.shape == (480, 640) and np.mean(a_z16 == z16) > 0.95  # registered to colour (the SDK leaves a
    # few gaps, 0, where depth pixels project between colour pixels: hole filling covers them)
    want = training_transform(a_rgb, depth_to_metres(a_z16, cam.depth_scale))
    for o in got:
        _assert_equal_obs(o, want)  # bit-exact: the same transform on the same frame
    d = got[-1]["depth"][..., 0]
    assert np.all(d > 0) and d.min() == pytest.approx(0.8, abs=1e-3) and d.max() < 1.31  # filled, metres
    # against the frame as rendered (before the SDK's alignment and unit quantisation): the same picture
    ideal = training_transform(rgb, depth_m)
    assert np.mean(np.abs(d - ideal[1][0]) < 1e-3) > 0.95


def test_topics_source_with_realsense2_camera_names_and_encodings(ros):
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from lpds_core.image_preprocess import depth_to_metres, metres_to_depth_units
    from lpds_ros.image_codec import numpy_to_image
    from lpds_ros.perception_node import PerceptionNode
    from lpds_ros.ros_common import sec_to_stamp

    ctx, add = ros
    _, obs = _observer(ctx, add)
    node = add(PerceptionNode(context=ctx))
    cam = add(Node("camera", namespace="camera", context=ctx))
    pub_c, pub_d = cam.create_publisher(Image, COLOR, 10), cam.create_publisher(Image, DEPTH, 10)  # driver: reliable
    pub_i = [cam.create_publisher(CameraInfo, t, 10) for t in INFO]
    assert wait_for(lambda: pub_c.get_subscription_count() and pub_d.get_subscription_count(), 10)
    rgb, depth_m = bench_frame()
    mm = metres_to_depth_units(depth_m, 0.001)
    want = training_transform(rgb, depth_to_metres(mm, 0.001))

    def send(color_msg, depth_msg, t, tries=20):
        """Publish the pair (with camera_info, as the driver does) until one more observation arrives."""
        n_obs = len(_complete(obs)) + 1
        for k in range(tries):
            stamp = sec_to_stamp(t + k * 1e-3)
            color_msg.header.stamp = depth_msg.header.stamp = stamp
            for p in pub_i:
                info = CameraInfo(width=640, height=480, k=[615.0, 0, 320, 0, 615.0, 240, 0, 0, 1])
                info.header.stamp, info.header.frame_id = stamp, "camera_color_optical_frame"
                p.publish(info)
            pub_c.publish(color_msg)
            pub_d.publish(depth_msg)
            if wait_for(lambda: len(_complete(obs)) >= n_obs, 0.2):
                return True
        return False

    # the driver's encodings: rgb8 colour, 16UC1 depth in millimetres
    assert send(numpy_to_image(rgb, "rgb8", frame_id="camera_color_optical_frame"),
                numpy_to_image(mm, "16UC1", frame_id="camera_color_optical_frame"), 100.0)
    _assert_equal_obs(_complete(obs)[-1], want)
    # other drivers' encodings are handled: bgr8 colour, 32FC1 depth already in metres
    assert send(numpy_to_image(rgb[..., ::-1], "bgr8"), numpy_to_image(depth_to_metres(mm, 0.001), "32FC1"), 200.0)
    _assert_equal_obs(_complete(obs)[-1], want)
    # refused with one line, nothing published: a non-colour encoding, and depth that is not aligned to colour
    for t, (bad_c, bad_d, why) in enumerate(((numpy_to_image(rgb[..., 0], "mono16"), numpy_to_image(mm, "16UC1"),
                                              "expected an 8-bit colour image, got mono16"),
                                             (numpy_to_image(rgb, "rgb8"),
                                              numpy_to_image(np.zeros((480, 848), np.uint16), "16UC1"),
                                              "enable align_depth"))):
        n, d0 = node.published, node.dropped
        assert not send(bad_c, bad_d, 300.0 + t, tries=3)
        assert node.published == n and node.dropped > d0
        assert why in node.last_drop and "\n" not in node.last_drop


def test_realsense_start_failures_are_one_line(monkeypatch):
    import builtins

    from lpds_core.errors import ConfigError
    from lpds_ros.realsense_source import RealSenseCamera

    with pytest.raises(ConfigError, match="RealSense camera 000000000000 is not connected .*set realsense_serial") as e:
        RealSenseCamera(serial="_000000000000").start()  # no such camera, here or on a bench
    assert "\n" not in str(e.value)
    real_import = builtins.__import__

    def no_sdk(name, *a, **k):
        if name.startswith("pyrealsense2"):
            raise ImportError("libusb-1.0.so.0: cannot open shared object file")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sdk)
    with pytest.raises(ConfigError, match="needs pyrealsense2 .*libusb.*source:=topics"):
        RealSenseCamera().start()


def test_perception_defaults_are_the_training_preprocessing():
    """The node's default parameters build the very PreprocessConfig the simulator's camera uses."""
    from lpds_core.image_preprocess import PreprocessConfig
    from lpds_ros.graph import NODE_PARAMETERS
    from lpds_sim.rai.camera import CameraSpec, preprocess_config

    p = NODE_PARAMETERS["perception_node"]
    node_cfg = PreprocessConfig(p["out_height"], p["out_width"], None, p["depth_min"], p["depth_max"])
    assert node_cfg == preprocess_config(CameraSpec()) == PreprocessConfig()
    assert (p["color_topic"], p["depth_topic"]) == (COLOR, DEPTH) and p["depth_unit"] == 0.001
