"""Demos (collect, HDF5 round trip, loader errors), grid protocol, eval CLI, vector env, scripted operator."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("robotic")

from lpds_sim.demos_io import Episode, load_demos, write_demos  # noqa: E402
from lpds_core.grid_protocol import GridProtocol  # noqa: E402


def test_demos_cli_roundtrip_state(tmp_path):
    from lpds_sim.cli import main
    out = tmp_path / "d.hdf5"
    assert main(["demos", "--task", "pick_place", "--n-demos", "2", "--obs", "state", "--out", str(out),
                 "--no-progress"]) == 0
    demos = load_demos(out)
    assert len(demos) == 2
    env_args = demos.meta["env_args"]
    assert env_args["env_id"] == "lpds_sim/PickPlace-v0" and env_args["env_kwargs"]["control_hz"] == 10.0
    assert 0 < demos.meta["operator_success_rate"] <= 1
    for ep in demos:
        T = len(ep)
        assert ep.obs["state"].shape == (T, 18) and ep.obs["state"].dtype == np.float32
        assert ep.actions.shape == (T, 4) and np.all(np.abs(ep.actions) <= 1)
        assert ep.rewards.shape == (T,) and ep.dones.shape == (T,)
        assert ep.dones[-1] and not ep.dones[:-1].any()
        assert ep.rewards[-1] > 0.5  # the last step is the success bonus: only successful demos are kept
        assert (ep.actions[:, 3] < 0).any() and (ep.actions[:, 3] > 0).any()  # it grasped and released


def test_demo_file_image_layout_roundtrip(tmp_path):
    T = 5
    ep = Episode({"rgb": np.zeros((T, 3, 84, 84), np.uint8), "depth": np.ones((T, 1, 84, 84), np.float32),
                  "proprio": np.zeros((T, 8), np.float32)}, np.zeros((T, 4), np.float32), np.zeros(T, np.float32),
                 np.r_[np.zeros(T - 1, bool), True])
    write_demos(tmp_path / "img.hdf5", [ep, ep], {"task": "pick_place"})
    d = load_demos(tmp_path / "img.hdf5")
    assert len(d) == 2 and d[1].obs["rgb"].shape == (T, 3, 84, 84) and d[1].obs["rgb"].dtype == np.uint8
    assert d[0].obs["depth"].dtype == np.float32 and d.meta["total"] == 2 * T


def test_load_demos_missing_and_corrupt(tmp_path):
    from lpds_core.errors import DataError

    with pytest.raises(DataError, match="lpds demos"):
        load_demos(tmp_path / "nope.hdf5")
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"this is not hdf5" * 10)
    with pytest.raises(ValueError, match="corrupt"):
        load_demos(bad)


def test_grid_protocol_trials_are_seeded_and_complete():
    p = GridProtocol(2, 4, 5, seed=3)
    t1, t2 = p.trials(), GridProtocol(2, 4, 5, seed=3).trials()
    assert len(t1) == 40 and t1 == t2
    assert [t.seed for t in t1] != [t.seed for t in GridProtocol(2, 4, 5, seed=4).trials()]
    cells = {}
    for t in t1:
        cells[t.cell] = cells.get(t.cell, 0) + 1
    assert cells == {(r, c): 5 for r in range(2) for c in range(4)}
    with pytest.raises(ValueError):
        GridProtocol(0, 4, 5)


def test_eval_cli_writes_json_csv_heatmap(tmp_path):
    from lpds_sim.cli import main
    assert main(["eval", "--task", "pick_place", "--policy", "scripted", "--protocol", "grid", "--out",
                 str(tmp_path), "--rows", "1", "--cols", "2", "--trials", "1", "--no-progress"]) == 0
    doc = json.loads((tmp_path / "grid_results.json").read_text())
    assert doc["total"] == 2 and len(doc["cells"]) == 2 and doc["success_table"] == [[1, 1]]
    assert (tmp_path / "grid_cells.csv").read_text().startswith("row,col,trials,successes")
    assert (tmp_path / "grid_heatmap.png").stat().st_size > 1000


def test_unknown_policy_path_is_a_clear_error(tmp_path):
    from lpds_sim.policies import resolve_policy
    from lpds_core.errors import RunError

    with pytest.raises(RunError, match="no such file"):
        resolve_policy(str(tmp_path / "missing"), None, "pick_place")
    with pytest.raises(RunError, match="not a run folder"):
        resolve_policy(str(tmp_path), None, "pick_place")


def test_vector_env_steps_two_processes():
    from lpds_sim.vector import make_vector_env
    venv = make_vector_env("pick_place", num_envs=2)
    try:
        obs, info = venv.reset(seed=[1, 2])
        assert obs.shape == (2, 18) and not np.allclose(obs[0], obs[1])
        obs, r, term, trunc, info = venv.step(np.zeros((2, 4), np.float32))
        assert obs.shape == (2, 18) and r.shape == (2,) and info["collision"].shape == (2,)
    finally:
        venv.close()


@pytest.mark.slow
def test_scripted_operator_on_full_grid():
    """The emulated operator must succeed in >= 38/40 pick-and-place grid trials."""
    from lpds_sim.tasks import make_env, make_operator
    env = make_env("pick_place")
    res = GridProtocol(2, 4, 5, seed=0).run(env, make_operator("pick_place", env, seed=0), progress=False)
    assert res.successes >= 38, res.summary()


def test_vector_env_pins_its_workers_not_the_parent():
    import os

    from lpds_sim.vector import make_vector_env
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs two CPUs")
    venv = make_vector_env("pick_place", num_envs=2)
    try:
        venv.reset(seed=0)
        assert os.sched_getaffinity(0) == before  # the parent's dummy env must not pin the parent
        assert [os.sched_getaffinity(p.pid) for p in venv.processes] == [{c} for c in sorted(before)[:2]]
    finally:
        venv.close()
