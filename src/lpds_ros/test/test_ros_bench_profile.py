"""The perception node reads the bench profile the simulator reads (`bench_profile` parameter) and latches its
camera pose; a wrong profile stops the node with one line."""
from __future__ import annotations

import numpy as np
import pytest

from ros_test_utils import wait_for

pytestmark = pytest.mark.ros


def _perception(ctx, add, **params):
    from rclpy.parameter import Parameter

    from lpds_ros.perception_node import PerceptionNode

    return add(PerceptionNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))


def _latched_pose(ctx, add, topic: str):
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node

    from lpds_ros.ros_common import latched_qos

    got = []
    sub = add(Node("pose_listener", context=ctx))  # subscribes after the node published: latched QoS delivers
    sub.create_subscription(PoseStamped, topic, got.append, latched_qos())
    assert wait_for(lambda: got, 10), f"no latched pose on {topic}"
    m = got[0]
    p, o = m.pose.position, m.pose.orientation
    return m.header.frame_id, np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w])


@pytest.mark.parametrize("camera", ["camera", "mug_camera"])
def test_perception_latches_the_profiles_camera_pose(ros, tmp_path, camera):
    from lpds_core.bench_profile import BenchProfile, calibrated_profile, profile_yaml

    ctx, add = ros
    q = np.array([0.1, -0.9, 0.4, 0.05])
    prof = calibrated_profile(BenchProfile(), [0.11, 0.82, 1.31], q / np.linalg.norm(q), which=camera,
                              name="lab-b")
    path = tmp_path / "bench.yaml"
    path.write_text(profile_yaml(prof))
    node = _perception(ctx, add, bench_profile=str(path), bench_camera=camera)
    assert node.bench == prof
    frame, pos, quat = _latched_pose(ctx, add, "bench/camera_pose")
    assert frame == "world"
    np.testing.assert_allclose(pos, [0.11, 0.82, 1.31], atol=1e-12)
    np.testing.assert_allclose(quat, q / np.linalg.norm(q), atol=1e-12)


def test_perception_default_profile_is_the_sim_camera(ros):
    from lpds_core.bench_profile import BenchProfile

    ctx, add = ros
    _perception(ctx, add)
    _, pos, quat = _latched_pose(ctx, add, "bench/camera_pose")
    ref_pos, ref_quat = BenchProfile().camera_pose()
    np.testing.assert_allclose(pos, ref_pos, atol=1e-12)
    np.testing.assert_allclose(quat, ref_quat, atol=1e-12)


def test_perception_refuses_a_wrong_profile_with_one_line(ros, tmp_path):
    from lpds_core.errors import ConfigError

    ctx, add = ros
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera:\n  camera_quat_xyzw: [0, 0, 1, 1]\n")
    with pytest.raises(ConfigError) as err:
        _perception(ctx, add, bench_profile=str(bad))
    msg = str(err.value)
    assert "\n" not in msg and "camera_quat_xyzw" in msg and "norm 1.414" in msg


def test_graph_gives_both_nodes_the_same_profile():
    from lpds_ros.graph import pick_place_graph

    for task, camera in (("pick_place", "camera"), ("mug_hang", "mug_camera")):
        nodes, _ = pick_place_graph(use_sim=True, task=task, bench_profile="/benches/lab.yaml")
        params = {n.name: dict(n.parameters) for n in nodes}
        assert params["perception"]["bench_profile"] == params["sim_robot"]["bench_profile"] == "/benches/lab.yaml"
        assert params["perception"]["bench_camera"] == camera


SIM_ROBOT_CHECK = """
import sys
import pytest
from lpds_ros.sim_backends import make_backend
backend = make_backend("rai", "pick_place", render=False, bench_profile=sys.argv[1])
assert backend.env.table_z == 0.7, backend.env.table_z
z = backend.env.C.getFrame("cube").getPosition()[2]
assert z == pytest.approx(0.7 + 0.025, abs=3e-3), z
backend.env.close()
print("SIM-ROBOT-OK")
"""


def test_sim_robot_builds_its_scene_from_the_profile(tmp_path):
    """In its own process: a PhysX env built here would change the physics of later tests in this process."""
    import os
    import subprocess
    import sys

    pytest.importorskip("robotic")
    from lpds_core.bench_profile import BenchProfile, calibrated_profile, profile_yaml

    from lpds_ros.sim_backends import make_backend

    path = tmp_path / "bench.yaml"
    path.write_text(profile_yaml(calibrated_profile(BenchProfile(), *BenchProfile().camera_pose(), table_height=0.7)))
    proc = subprocess.run([sys.executable, "-c", SIM_ROBOT_CHECK, str(path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 0 and "SIM-ROBOT-OK" in proc.stdout, proc.stderr[-3000:]
    with pytest.raises(ValueError, match="kinematic backend models the default bench only"):
        make_backend("kinematic", "pick_place", bench_profile=str(path))
