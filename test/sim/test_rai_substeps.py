"""Adaptive PhysX substeps of `PandaTaskEnv`: coarse only where nothing can be squeezed, and invisible to the task.

The speed-up (`free_space_substeps`, bench/rai_env.py) must not change what the task means: the collision flag
comes from the same query, the gripper closes at the same rate in time, grasps near the object use fine substeps.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

pytest.importorskip("robotic")

from lpds_sim.tasks import make_env  # noqa: E402

FAR_XY = (0.3, 0.4)  # cube parked away from the home pose


@pytest.fixture(scope="module")
def env():
    e = make_env("pick_place")
    yield e
    e.close()


def test_closing_gripper_in_free_space_uses_coarse_substeps(env):
    u = env.unwrapped
    env.reset(seed=0, options={"object_xy": FAR_XY})
    assert u._free  # home pose: nothing within free_margin of the robot
    env.step(np.array([0, 0, 0, -1.0]))  # close in free space
    assert not u._grip_settled and u._substeps() == (u.n_substeps // 2, 2 * u.sim_dt)


def test_near_the_object_the_closing_gripper_uses_fine_substeps(env):
    u = env.unwrapped
    obs, _ = env.reset(seed=1, options={"object_xy": (0.1, 0.3)})
    c = obs[u.state_layout["obj_pos"]]
    for _ in range(20):  # descend around the cube with the gripper open
        env.step(np.r_[np.clip((c - u.ee_target) / 0.03, -1, 1), 1.0])
    env.step(np.array([0, 0, 0, -1.0]))  # start closing on the cube
    assert not u._free
    assert u._substeps() == (u.n_substeps, u.sim_dt)


def test_gripper_closes_at_the_same_rate_with_coarse_substeps(env):
    # one env with the flag toggled (not a second env: freeing one RAI Simulation while another lives can segfault)
    u = env.unwrapped
    widths = {}
    try:
        for free_space in (False, True):
            u.free_space_substeps = free_space
            env.reset(seed=0, options={"object_xy": FAR_XY})
            w = []
            for _ in range(4):
                obs = env.step(np.array([0, 0, 0, -1.0]))[0]
                w.append(float(obs[u.state_layout["gripper_width"]][0]))
            widths[free_space] = np.array(w)
    finally:
        u.free_space_substeps = True
    # same closing speed in time (RAI caps the finger reference per substep; the env rescales it), same end state
    assert widths[False][0] < 0.06 and widths[True][0] < 0.06  # both well under way after one 0.1 s step
    np.testing.assert_allclose(widths[True], widths[False], atol=0.004)
    assert widths[True][-1] < 2e-3 and widths[False][-1] < 2e-3


def test_collision_flag_matches_the_plain_collision_query(env):
    u = env.unwrapped
    env.reset(seed=2, options={"cell": (0, 1)})
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(120):
        a = rng.uniform(-1, 1, 4)
        a[2] = rng.uniform(-1, 0.3)  # drift down: the arm meets the table (and the cube) now and then
        _, _, term, trunc, info = env.step(a)
        assert info["collision"] == u._collision()
        seen += info["collision"]
        if term or trunc:
            env.reset(seed=3)
    assert seen > 0  # random actions push the arm into the table now and then: the check is not vacuous


def test_cpu_pin_restores_the_callers_cpu_set():
    from lpds_sim.rai.cpu_pin import CpuPin, resolve_cpu
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs two CPUs")
    cpu = max(before)
    with CpuPin(cpu):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    assert resolve_cpu(None) is None and resolve_cpu("auto") in before
    for bad in (max(before) + 64, "fast", True):
        with pytest.raises(ValueError, match="physx_cpu"):
            resolve_cpu(bad)


def test_physx_worker_thread_shares_the_stepping_cpu(env):
    """PhysX's worker thread is pinned to the env's CPU; the caller gets its own CPU set back after each step."""
    u = env.unwrapped
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs two CPUs")
    env.reset(seed=0)
    env.step(np.zeros(4))
    assert os.sched_getaffinity(0) == before
    cpu = u._pin.cpu
    assert cpu in before
    me = threading.get_native_id()
    pinned = [t for t in map(int, os.listdir("/proc/self/task")) if t != me and os.sched_getaffinity(t) == {cpu}]
    assert pinned, "no thread of this process is pinned to the env's CPU (PhysX's worker should be)"
