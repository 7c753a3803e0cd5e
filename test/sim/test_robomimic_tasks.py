"""RoboMimic tasks through robosuite: the Gymnasium envs, the scripted operators, the robomimic HDF5 demos.

One module with one env per task for the whole module: robosuite's first step JIT-compiles numba (a one-off cost
per process when its cache is cold). The Square operator tests (~15 s, more on a busy machine) run only with
LPDS_SLOW_ROBOMIMIC=1.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("robosuite")
h5py = pytest.importorskip("h5py")

from lpds_core.errors import DataError  # noqa: E402

from lpds_sim.benchmarks import robomimic_tasks as rt  # noqa: E402
from lpds_sim.benchmarks.robomimic_data import MAKER, load_robomimic, make_demos  # noqa: E402
from lpds_sim.benchmarks.robomimic_operators import STYLES, run_episode  # noqa: E402

SLOW = pytest.mark.skipif(not os.environ.get("LPDS_SLOW_ROBOMIMIC"), reason="~15 s: set LPDS_SLOW_ROBOMIMIC=1")


@pytest.fixture(scope="module")
def envs():
    made: dict[str, rt.RobomimicEnv] = {}

    def get(task: str) -> rt.RobomimicEnv:
        if task not in made:
            made[task] = rt.RobomimicEnv(task)
        return made[task]

    yield get
    for e in made.values():
        e.close()


@pytest.mark.parametrize("task", ["lift", "can", "square"])
def test_env_passes_check_env_and_has_robomimic_layout(envs, task):
    import warnings

    from gymnasium.utils.env_checker import check_env

    env = envs(task)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "clean": not even a warning
        check_env(env, skip_render_check=True)
    t = rt.TASKS[task]
    assert env.observation_space.shape == (3 + 4 + 2 + t.object_dim,)
    assert env.action_space.shape == (7,)
    obs, info = env.reset(seed=3)
    assert info == {"success": False}
    d = env.obs_dict()
    np.testing.assert_allclose(obs, np.concatenate([d[k] for k in rt.OBS_KEYS]), atol=1e-6)
    np.testing.assert_allclose(obs[:3], env.sim_env.sim.data.site_xpos[env.sim_env.robots[0].eef_site_id["right"]],
                               atol=1e-6)
    # the object's pose relative to the hand is filled in already at reset (robosuite leaves it at 0 there)
    rel = d["object"][7:] if task == "lift" else d["object"][:7]  # gripper_to_cube / obj_to_eef pos+quat
    assert np.linalg.norm(rel) > 1e-2


@pytest.mark.parametrize("task", ["lift", "can"])
def test_reset_seed_reproduces_the_initial_state(envs, task):
    env = envs(task)
    a, _ = env.reset(seed=11)
    env.step(env.action_space.sample())
    b, _ = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[9:] - c[9:]).max() > 1e-3  # the object starts elsewhere


def test_registered_ids_truncate_at_the_task_limits():
    import gymnasium as gym

    for t in rt.TASKS.values():
        spec = gym.spec(t.env_id)
        assert spec.max_episode_steps == t.max_steps
    assert [rt.TASKS[k].max_steps for k in ("lift", "can", "square")] == [300, 300, 400]


def test_sparse_reward_and_truncation(envs):
    env = envs("lift")
    env.reset(seed=0)
    env.max_steps = 5
    try:
        out = [env.step(np.zeros(7)) for _ in range(5)]
    finally:
        env.max_steps = env.task.max_steps
    assert [o[1] for o in out] == [0.0] * 5 and not any(o[2] for o in out)
    assert [o[3] for o in out] == [False] * 4 + [True]


@pytest.mark.parametrize("seed,style", [(0, "steady"), (1, "swift"), (2, "careful")])
def test_lift_operator_succeeds(envs, seed, style):
    ep = run_episode(envs("lift"), seed, style)
    assert ep["success"], f"lift operator ({style}) failed on seed {seed}"
    assert ep["rewards"][-1] == 1.0 and ep["rewards"][:-1].sum() == 0 and ep["dones"][-1]
    assert len(ep["actions"]) == len(ep["obs"]["object"]) == len(ep["next_obs"]["object"]) == len(ep["states"])
    np.testing.assert_array_equal(ep["obs"]["object"][1:], ep["next_obs"]["object"][:-1])


@pytest.mark.parametrize("seed,style", [(0, "steady"), (1, "swift")])
def test_can_operator_succeeds(envs, seed, style):
    ep = run_episode(envs("can"), seed, style)
    assert ep["success"], f"can operator ({style}) failed on seed {seed}"


@SLOW
@pytest.mark.slow
@pytest.mark.parametrize("seed,style", [(0, "steady"), (1, "swift")])
def test_square_operator_succeeds(envs, seed, style):
    ep = run_episode(envs("square"), seed, style)
    assert ep["success"], f"square operator ({style}) failed on seed {seed}"


def test_made_demos_round_trip_in_robomimic_layout(tmp_path):
    path = tmp_path / "lift.hdf5"
    s = make_demos("lift", 3, seed=0, out=path)
    assert s.path == path and s.n_demos == 3 and s.success_rate > 0
    with h5py.File(path, "r") as f:
        data = f["data"]
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == "Lift" and env_args["type"] == 1
        assert env_args["env_kwargs"]["control_freq"] == 20 and env_args["env_kwargs"]["robots"] == "Panda"
        assert env_args["env_kwargs"]["controller_configs"]["body_parts"]["right"]["type"] == "OSC_POSE"
        assert sorted(data.keys()) == ["demo_0", "demo_1", "demo_2"]
        total = 0
        for name in data:
            g = data[name]
            n = int(g.attrs["num_samples"])
            total += n
            assert sorted(g["obs"].keys()) == sorted(rt.OBS_KEYS) == sorted(g["next_obs"].keys())
            assert g["obs/robot0_eef_pos"].shape == (n, 3) and g["obs/robot0_eef_quat"].shape == (n, 4)
            assert g["obs/robot0_gripper_qpos"].shape == (n, 2) and g["obs/object"].shape == (n, 10)
            assert g["actions"].shape == (n, 7) and g["rewards"].shape == (n,) and g["dones"].shape == (n,)
            assert g["dones"][-1] and g["rewards"][-1] == 1.0
            assert g["states"].shape[0] == n
        assert int(data.attrs["total"]) == total
        train = [x.decode() for x in f["mask/train"][()]]
        valid = [x.decode() for x in f["mask/valid"][()]]
        assert f["mask/train"].dtype.kind == "S"
        assert sorted(train + valid) == ["demo_0", "demo_1", "demo_2"] and len(valid) == 0  # 10 % of 3 rounds to 0
        styles = sorted(sum(([x.decode() for x in f[f"mask/{k}"][()]] for k in STYLES), []))
        assert styles == ["demo_0", "demo_1", "demo_2"]

    eps, meta = load_robomimic(path)
    assert meta["env_args"]["env_name"] == "Lift" and meta["maker"] == MAKER
    assert [e["name"] for e in eps] == ["data/demo_0", "data/demo_1", "data/demo_2"]
    for e in eps:
        assert e["obs"].dtype == np.float32 and e["obs"].shape == (len(e["actions"]), 19)
    with h5py.File(path, "r") as f:
        g = f["data/demo_1"]
        np.testing.assert_allclose(eps[1]["obs"][:, 9:], g["obs/object"][()], rtol=1e-6)
        np.testing.assert_allclose(eps[1]["obs"][:, :3], g["obs/robot0_eef_pos"][()], rtol=1e-6)
    assert [e["name"] for e in load_robomimic(path, split="train")[0]] == [e["name"] for e in eps]

    # the file's env_args make the env, as robomimic's EnvUtils.create_env_from_metadata does
    import robosuite
    env = robosuite.make(meta["env_args"]["env_name"], **meta["env_args"]["env_kwargs"])
    assert env.action_dim == 7
    env.close()

    # deterministic per seed: the same seed gives the same first demo
    again = make_demos("lift", 1, seed=0, out=tmp_path / "again.hdf5")
    np.testing.assert_array_equal(load_robomimic(again.path)[0][0]["actions"], eps[0]["actions"])


def test_maker_never_replaces_what_it_did_not_write(tmp_path):
    path = tmp_path / "theirs.hdf5"
    path.write_bytes(b"not mine")
    with pytest.raises(DataError, match="already exists"):
        make_demos("lift", 1, out=path)
    with pytest.raises(DataError, match="not written by"):
        make_demos("lift", 1, out=path, overwrite=True)
    assert path.read_bytes() == b"not mine"


def test_loader_reads_splits_and_names_missing_keys(tmp_path):
    from lpds_core.demos_io import Episode, write_demos

    sizes = rt.obs_sizes(rt.TASKS["lift"])
    eps = [Episode({k: np.full((n, d), float(i)) for k, d in sizes.items()}, np.full((n, 7), float(i)),
                   np.zeros(n), np.zeros(n, bool)) for i, n in enumerate((2, 3, 4))]
    env_args = {"env_name": "Lift", "type": 1, "env_kwargs": {}}
    path = write_demos(tmp_path / "full.hdf5", eps, env_args,
                       masks={"train": ["demo_0", "demo_2"], "valid": ["demo_1"]})
    train, meta = load_robomimic(path, split="train")
    assert [e["name"] for e in train] == ["data/demo_0", "data/demo_2"]
    assert meta["masks"] == {"train": ["demo_0", "demo_2"], "valid": ["demo_1"]}
    (valid,), _ = load_robomimic(path, split="valid")
    assert valid["obs"].shape == (3, 19) and np.all(valid["obs"] == 1.0) and np.all(valid["actions"] == 1.0)
    with pytest.raises(DataError, match="no mask 'test'"):
        load_robomimic(path, split="test")
    with pytest.raises(ValueError, match="not in the file"):
        write_demos(tmp_path / "bad.hdf5", eps, env_args, masks={"train": ["demo_7"]})

    part = Episode({"robot0_eef_pos": np.zeros((2, 3))}, np.zeros((2, 7)), np.zeros(2), np.zeros(2, bool))
    with pytest.raises(DataError, match="lacks observation keys"):
        load_robomimic(write_demos(tmp_path / "partial.hdf5", [part], env_args))

def test_cli_makes_scripted_demos_into_the_cache_and_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from lpds_sim.cli import main

    monkeypatch.setenv("LPDS_ROBOMIMIC_DIR", str(tmp_path))
    assert main(["datasets", "make", "lift-scripted", "--n-demos", "1", "--seed", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    want = tmp_path / "lift" / "scripted_n1_seed4.hdf5"
    assert f"wrote 1 demos to {want}: operator success" in out and want.is_file()
    assert main(["datasets", "make", "lift-scripted", "--n-demos", "1", "--seed", "4"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["datasets", "make", "cube-scripted"]) == 2
    assert "unknown robomimic task 'cube'; choose one of lift, can, square" in capsys.readouterr().err
    assert main(["datasets", "make", "can-scripted", "--n-demos", "0"]) == 2
    assert "--n-demos must be >= 1, got 0" in capsys.readouterr().err
