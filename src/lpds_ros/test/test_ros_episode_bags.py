"""Episode bags end to end: a tiny ROS grid with --out leaves one MCAP bag per trial; rosbags and mcap's own reader
read back the numbers of the live run; `lpds replay` plots a bag and re-runs the ONNX policy on the recorded
observations; bad input is one line."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lpds_ros.episode_bag import EpisodeBagWriter, free_bag_path, iter_bags, read_episode, stamp_ns
from ros_test_utils import graph_env

pytestmark = pytest.mark.ros
KINEMATIC_OBS_DIM = 10  # KinematicBackend.task_obs: ee xyz, width, obj xyz, target xyz


def _env():
    return graph_env()


def _lpds(argv, capsys):
    """The real `lpds` main() with this package's `replay` registered as the entry point does once installed."""
    import lpds_sim.cli as cli

    orig = cli._plugin_modules
    cli._plugin_modules = lambda: sorted(set(orig()) | {"lpds_ros.cli_replay"})
    try:
        rc = cli.main(argv)
    finally:
        cli._plugin_modules = orig
    out = capsys.readouterr()
    return rc, out.out, out.err


def _tiny_export(out: Path, seed: int = 0, task: str = "pick_place") -> str:
    torch = pytest.importorskip("torch")
    from lpds_core.export import export_onnx
    from lpds_core.flow_matching import FlowMatchingPolicy

    torch.manual_seed(seed)
    m = FlowMatchingPolicy(KINEMATIC_OBS_DIM, 4, 4, obs_type="state", hidden=16, n_layers=1).freeze()
    export_onnx(m, None, out, {"task": task})
    return str(out)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """`lpds ros-sim --out DIR` on the kinematic robot, scripted operator, 2 trials."""
    out = tmp_path_factory.mktemp("bags") / "rs"
    cmd = [sys.executable, "-m", "lpds_sim.cli", "ros-sim", "--backend", "kinematic", "--max-trials", "2",
           "--rate", "20", "--out", str(out)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, json.loads((out / "grid_results.json").read_text()), proc.stdout


def _mcap_messages(bag_dir: Path) -> dict[str, list]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    (f,) = list(bag_dir.glob("*.mcap"))
    out: dict[str, list] = {}
    with open(f, "rb") as fh:
        for _schema, channel, message, decoded in make_reader(
                fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            out.setdefault(channel.topic, []).append((message.log_time, decoded))
    return out


def _graded_numbers(info_msgs, targets, info_stamp):
    """From one reader's messages: the episode_info the trial was graded on, and the targets sent before it."""
    graded = [dict(zip(m.name, m.position)) for _, m in info_msgs if stamp_ns(m.header) == info_stamp]
    assert len(graded) == 1, f"{len(graded)} episode_info messages stamped {info_stamp}"
    sent = [(m.pose.position.x, m.pose.position.y, m.pose.position.z) for _, m in targets
            if stamp_ns(m.header) < info_stamp]
    return graded[0], sent


def test_every_grid_trial_leaves_a_bag_that_rosbags_and_mcap_read_as_the_live_run(grid_run):
    out, res, stdout = grid_run
    bags = list(iter_bags(out / "bags"))
    assert [b.name for b in bags] == ["trial_000", "trial_001"], stdout
    assert res["meta"]["bags"] == [str(b) for b in bags]
    for bag_dir, trial, live in zip(bags, res["trials"], res["meta"]["trial_info"]):
        bag = read_episode(bag_dir)
        assert bag.meta["trial"] == trial["index"] and bag.meta["seed"] == trial["seed"]
        assert bag.meta["task"] == "pick_place" and bag.meta["obs_mode"] == "state"
        assert tuple(bag.meta["cell"]) == tuple(trial["cell"])
        # the outcome message (last) and the metadata agree with grid_results.json
        (t_out, msg), = bag.topic("/episode/outcome")
        assert json.loads(msg.data) == bag.outcome and t_out == max(t for m in bag.messages.values() for t, _ in m)
        assert (bag.outcome["success"], bag.outcome["steps"]) == (trial["success"], trial["length"])
        assert trial["success"] and trial["length"] > 10
        via_mcap = _mcap_messages(bag_dir)
        assert {k: len(v) for k, v in via_mcap.items()} == {k: len(v) for k, v in bag.messages.items()}
        for reader in (bag.messages, via_mcap):
            info_topic = next(t for t in reader if t.endswith("sim/episode_info"))
            target_topic = next(t for t in reader if t.endswith("lpds/target_pose"))
            graded, sent = _graded_numbers(reader[info_topic], reader[target_topic], live["info_stamp_ns"])
            assert bool(graded["success"]) == trial["success"] and int(graded["steps"]) == trial["length"]
            assert graded["return"] == pytest.approx(trial["ret"], abs=1e-12)
            # the commanded targets: the bag holds every one the policy sent; the sim robot received at most those
            # (its command QoS is depth 1: under load an older target is replaced by a newer one, and one still in
            # flight at the info stamp is counted later), and the last it received is one of them, in order
            received = int(live["targets"])
            assert 10 < received <= len(sent)
            last = [live["target_x"], live["target_y"], live["target_z"]]
            assert any(np.allclose(s, last, atol=1e-12) for s in sent[received - 1:]), (received, len(sent))
        # everything the review needs is there: observations, state, before/after safety, hold reasons, images
        for topic in ("sim/task_state", "current_pose", "joint_states", "policy/plan", "policy/raw_target",
                      "lpds/gripper_command", "equilibrium_pose", "policy/tick_stats",
                      "color/image_raw/compressed", "image_raw/compressedDepth", "obs/rgb/compressed"):
            assert bag.topic(topic), f"{bag_dir}: no {topic}"
        reasons = [m.data for _, m in bag.topic("policy/hold_reason")]
        assert reasons[0].startswith("stopped") and "" in reasons and reasons[-1].startswith("stopped")
        img = bag.topic("color/image_raw/compressed")[-1][1]
        assert "jpeg" in img.format


def test_compressed_images_decode_back_losslessly_where_it_matters():
    from lpds_ros.episode_bag import decode_compressed, encode_color, encode_depth_mm

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (84, 84, 3), dtype=np.uint8)
    fmt, data = encode_color(rgb, "png")
    assert np.array_equal(decode_compressed(fmt, data), rgb)  # channel order kept (OpenCV is BGR inside)
    depth = rng.integers(0, 4000, (48, 64), dtype=np.uint16)
    fmt, data = encode_depth_mm(depth)
    assert fmt == "16UC1; compressedDepth png" and np.array_equal(decode_compressed(fmt, data), depth)
    fmt, data = encode_color(np.full((8, 8, 3), (200, 30, 30), np.uint8), "jpeg")
    assert np.abs(decode_compressed(fmt, data).astype(int) - (200, 30, 30)).max() < 8


def test_bags_are_never_overwritten(tmp_path):
    from lpds_core.errors import RunError

    first = free_bag_path(tmp_path, "trial_000")
    EpisodeBagWriter(first, {"task": "t"}).close()
    assert free_bag_path(tmp_path, "trial_000") == tmp_path / "trial_000_1"
    with pytest.raises(RunError, match="never overwritten"):
        EpisodeBagWriter(first, {"task": "t"})


def test_ros_sim_refuses_to_record_over_the_bags_of_an_earlier_run(grid_run, capsys):
    out, _, _ = grid_run
    before = sorted(p.name for p in (out / "bags").iterdir())
    rc, _, err = _lpds(["ros-sim", "--backend", "kinematic", "--out", str(out)], capsys)
    assert rc == 2 and err.count("\n") == 1 and "already holds bags" in err and "--out" in err, err
    assert sorted(p.name for p in (out / "bags").iterdir()) == before


def test_replay_plots_an_episode(grid_run, tmp_path, capsys):
    out, res, _ = grid_run
    fig = tmp_path / "ep.png"
    rc, stdout, err = _lpds(["replay", str(out / "bags" / "trial_000"), "--out", str(fig)], capsys)
    assert rc == 0, err
    assert fig.stat().st_size > 20_000
    assert f"SUCCESS in {res['trials'][0]['length']} steps" in stdout and "targets sent" in stdout
    rc, _, err = _lpds(["replay", str(out / "bags" / "trial_000"), "--out", str(fig)], capsys)
    assert rc == 2 and "never overwritten" in err  # the figure of the first call is kept


def test_replay_bad_input_is_one_line(grid_run, tmp_path, capsys):
    out, _, _ = grid_run
    bag = out / "bags" / "trial_001"
    (tmp_path / "notabag").mkdir()
    foreign = tmp_path / "foreign"  # a rosbag2 bag of someone else's: no LP-DS metadata
    from rosbags.rosbag2 import StoragePlugin, Writer

    w = Writer(foreign, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    w.close()
    empty = tmp_path / "empty_episode"  # an LP-DS bag without the graph's topics
    EpisodeBagWriter(empty, {"task": "pick_place"}).close()
    other_task = _tiny_export(tmp_path / "mug", task="mug_hang")
    cases = [([str(tmp_path / "missing")], "no bag at"),
             ([str(tmp_path / "notabag")], "is not a rosbag2 bag"),
             ([str(foreign)], "not an LP-DS episode"),
             ([str(empty)], "has no messages on"),
             ([str(bag), "--model-dir", other_task, "--out", str(tmp_path / "x.png")], "exported for task 'mug_hang'")]
    for argv, want in cases:
        rc, _, err = _lpds(["replay", *argv], capsys)
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and want in err, (argv, err)
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory):
    """One short trial (30 env steps) of a tiny exported policy on the kinematic robot, recorded."""
    from lpds_ros.graph import NodeSpec, grid_eval_graph
    from lpds_ros.process_graph import GraphProcesses

    tmp = tmp_path_factory.mktemp("onnx")
    model = _tiny_export(tmp / "model")
    nodes, _ = grid_eval_graph(use_sim=True, episodes=1, out_dir=str(tmp / "grid"), runner="onnx",
                               model_dir=model, sim_backend="kinematic", control_rate=20.0, episode_timeout=60,
                               bags_dir=str(tmp / "bags"))
    nodes = [NodeSpec(n.executable, n.name, n.namespace, {**n.parameters, "max_episode_steps": 30})
             if n.executable == "sim_robot_node" else n for n in nodes]
    graph = GraphProcesses(nodes, env=_env(), log_dir=str(tmp / "logs"), python=sys.executable)
    with graph:
        rc = graph.wait("grid_evaluator", timeout=90)
    assert rc == 0, graph.log("grid_evaluator")
    return tmp, model


def test_replay_reruns_the_policy_on_the_recorded_observations(onnx_run, capsys):
    from lpds_ros.cli_replay import replay_actions

    tmp, model = onnx_run
    bag = read_episode(tmp / "bags" / "trial_000")
    assert bag.outcome["steps"] == 30 and len(bag.topic("policy/plan")) >= 5
    same = replay_actions(bag, model)
    assert same["recorded_noise"] and same["unmatched"] == 0 and same["plans"] == len(bag.topic("policy/plan"))
    assert same["max"] < 1e-5, same  # the same model on the same observation and noise: the same chunk
    other = replay_actions(bag, _tiny_export(tmp / "other", seed=1))
    assert other["max"] > 1e-2, other  # another model's actions differ: the comparison can fail
    fig = tmp / "replay.png"
    rc, stdout, err = _lpds(["replay", str(tmp / "bags" / "trial_000"), "--model-dir", model, "--out", str(fig)],
                            capsys)
    assert rc == 0, err
    assert "offline re-run" in stdout and "max" in stdout and fig.exists()


def test_episode_recorder_node_records_each_policy_episode(ros, tmp_path):
    """Deployment: an episode is ~/start .. ~/stop of the policy, seen on its latched ~/hold_reason."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from ros_test_utils import wait_for
    from std_msgs.msg import String

    from lpds_ros.episode_recorder_node import EpisodeRecorderNode
    from lpds_ros.policy_core import STOPPED
    from lpds_ros.ros_common import command_qos, latched_qos

    ctx, add = ros
    (tmp_path / "rec" / "episode_000").mkdir(parents=True)  # someone's folder with that name: kept
    rec = add(EpisodeRecorderNode(context=ctx, parameter_overrides=[
        Parameter("record_dir", value=str(tmp_path / "rec"))]))
    fake = add(Node("fake_policy", namespace="/policy", context=ctx))
    reason = fake.create_publisher(String, "/policy/hold_reason", latched_qos())
    target = fake.create_publisher(PoseStamped, "/lpds/target_pose", command_qos())
    assert wait_for(lambda: reason.get_subscription_count() >= 1 and target.get_subscription_count() >= 1)
    reason.publish(String(data=""))
    assert wait_for(lambda: rec.recorder.recording)
    for i in range(3):
        m = PoseStamped()
        m.pose.position.x = 0.1 * i
        target.publish(m)
        time.sleep(0.05)
    reason.publish(String(data=STOPPED))
    assert wait_for(lambda: rec.episodes == 1)
    bag = read_episode(tmp_path / "rec" / "episode_000_1")
    assert [m.pose.position.x for _, m in bag.topic("lpds/target_pose")] == pytest.approx([0.0, 0.1, 0.2])
    assert bag.outcome["success"] is None and bag.outcome["ended"] == "policy stopped"
    assert bag.meta["source"] == "episode_recorder"


def test_replay_rebuilds_image_observations_from_the_bag(grid_run):
    """Image mode: the 84x84 rgb (png, lossless) + depth + proprioception of one stamp, as the policy node builds
    them (rgb channels first, depth (1, h, w) metres, proprio from the pose of the same stamp)."""
    from types import SimpleNamespace

    from lpds_ros.cli_replay import _observations
    from lpds_ros.episode_bag import decode_compressed

    out, _, _ = grid_run
    bag = read_episode(out / "bags" / "trial_000")
    obs_at = _observations(bag, SimpleNamespace(obs_spec={"rgb": {}, "depth": {}, "proprio": {}}))
    _, img = bag.topic("lpds/obs/rgb/compressed")[-5]
    s = stamp_ns(img.header)
    obs = obs_at(s)
    assert obs["rgb"].shape == (3, 84, 84) and obs["rgb"].dtype == np.uint8
    assert np.array_equal(obs["rgb"], decode_compressed(img.format, img.data).transpose(2, 0, 1))
    assert obs["depth"].shape == (1, 84, 84) and obs["depth"].dtype == np.float32
    pose = next(m for _, m in bag.topic("current_pose") if stamp_ns(m.header) == s)
    assert obs["proprio"][:3] == pytest.approx([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z])
    first = min(stamp_ns(m.header) for _, m in bag.topic("lpds/obs/rgb/compressed"))
    assert obs_at(first - 1_000_000_000) is None  # nothing recorded at that stamp: no observation is made up
