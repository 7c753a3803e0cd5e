"""RoboMimic's low-dim tasks (Lift, PickPlaceCan, NutAssemblySquare with the Panda) as Gymnasium envs.

Wrapped the way robomimic's and DPPO's low-dim references run them through robosuite 1.5:
- observation: one flat float32 Box, the concatenation in this order of `robot0_eef_pos` (3), `robot0_eef_quat` (4),
  `robot0_gripper_qpos` (2) and `object` (robosuite's `object-state`: 10 for Lift, 14 for Can and Square), as in
  robomimic's low-dim configs (`OBS_KEYS`);
- action: robosuite 1.5's default Panda composite controller ("BASIC" with one `OSC_POSE` arm part): a 7-D action
  in [-1, 1], the first six a delta end-effector pose in the robot base frame (scaled to at most 5 cm and 0.5 rad
  per step), the seventh the gripper (-1 open, +1 close); 20 Hz control;
- reward: sparse, 1.0 on the step the task succeeds (robosuite's `_check_success`), else 0.0; `info["success"]`;
  the episode terminates on success (robomimic's rollouts stop there) and truncates after 300 (Lift, Can) or
  400 (Square) steps.

One robosuite env is built per Gymnasium env and reused across resets (`hard_reset=False`), from a fixed
`model_seed` (so Lift's cube size, which robosuite draws when it builds the model, is one per env rather than
one per episode as with robosuite's default hard resets). `reset(seed=s)`
reseeds robosuite's own generator in place (`env.rng`, which its placement samplers and robot initial-pose noise
share), so the same seed gives the same initial state; `reset()` without a seed continues that stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

OBS_KEYS: tuple[str, ...] = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
CONTROL_FREQ = 20
OBS_BOUND = 10.0  # metres / unit quaternions: every entry lies far inside; finite so check_env has nothing to flag


@dataclass(frozen=True)
class RobomimicTask:
    name: str  # our short name: lift, can, square
    env_name: str  # robosuite's
    env_id: str  # ours, registered on import
    max_steps: int
    object_dim: int


TASKS: dict[str, RobomimicTask] = {
    "lift": RobomimicTask("lift", "Lift", "lpds_bench/Lift-v0", 300, 10),
    "can": RobomimicTask("can", "PickPlaceCan", "lpds_bench/PickPlaceCan-v0", 300, 14),
    "square": RobomimicTask("square", "NutAssemblySquare", "lpds_bench/NutAssemblySquare-v0", 400, 14),
}


def get_task(name: str) -> RobomimicTask:
    """The task called `name`: lift/can/square, robosuite's env name or our env id."""
    from lpds_core.errors import ConfigError

    key = name.lower()
    for t in TASKS.values():
        if key in (t.name, t.env_name.lower(), t.env_id.lower()):
            return t
    raise ConfigError(f"unknown robomimic task {name!r}; choose one of {', '.join(TASKS)}")


def env_kwargs() -> dict[str, Any]:
    """robosuite.make's keyword arguments (besides env_name), also written into demo files' `env_args`."""
    return {
        "robots": "Panda",
        "has_renderer": False,
        "has_offscreen_renderer": False,
        "use_camera_obs": False,
        "use_object_obs": True,
        "control_freq": CONTROL_FREQ,
        "reward_shaping": False,
        "ignore_done": True,
        "hard_reset": False,
    }


def obs_sizes(task: RobomimicTask) -> dict[str, int]:
    return {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": task.object_dim}


def make_robosuite(task: RobomimicTask, seed: int | None = None) -> Any:
    """The underlying robosuite env (quiet: robosuite's import-time warnings about optional extras are dropped)."""
    import logging

    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    import robosuite

    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    return robosuite.make(task.env_name, seed=seed, **env_kwargs())


class RobomimicEnv(gym.Env):
    """A robosuite manipulation task with robomimic's low-dim observation, OSC_POSE actions and sparse success."""

    metadata = {"render_modes": []}

    def __init__(self, task: str = "lift", max_episode_steps: int | None = None, model_seed: int = 0):
        self.task = get_task(task)
        self.max_steps = int(max_episode_steps or self.task.max_steps)
        # robosuite draws model properties (Lift's cube size) from its generator when it builds the model: a fixed
        # seed there makes every env instance the same model, so reset(seed=s) means the same episode everywhere
        self.sim_env = make_robosuite(self.task, seed=model_seed)
        self.sizes = obs_sizes(self.task)
        dim = sum(self.sizes.values())
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
        self._t = 0
        self.raw_obs: dict[str, np.ndarray] = {}

    # -- observations ---------------------------------------------------------------------------------------
    def obs_dict(self) -> dict[str, np.ndarray]:
        """The current observation split by robomimic key (float64, as robosuite gives it)."""
        o = self.raw_obs
        return {"robot0_eef_pos": o["robot0_eef_pos"], "robot0_eef_quat": o["robot0_eef_quat"],
                "robot0_gripper_qpos": o["robot0_gripper_qpos"], "object": o["object-state"]}

    def _flat(self) -> np.ndarray:
        d = self.obs_dict()
        return np.concatenate([np.asarray(d[k], dtype=np.float64).ravel() for k in OBS_KEYS]).astype(np.float32)

    # -- gym API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:  # reseed robosuite's generator in place: its samplers hold this same object
            self.sim_env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        self.sim_env.reset()
        # robosuite 1.5 leaves the object-relative sensors (obj_to_eef pos/quat) at zero in reset()'s observation:
        # they read the gripper pose from a cache filled later in the same pass; a second pass fills them
        self.raw_obs = self.sim_env._get_observations(force_update=True)
        self._t = 0
        return self._flat(), {"success": False}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(7), -1.0, 1.0)
        self.raw_obs, _, _, _ = self.sim_env.step(a)
        self._t += 1
        success = bool(self.sim_env._check_success())
        truncated = self._t >= self.max_steps and not success
        return self._flat(), float(success), success, truncated, {"success": success}

    def close(self):
        env, self.sim_env = getattr(self, "sim_env", None), None
        if env is not None:
            env.close()


def register_envs() -> None:
    """Register `lpds_bench/Lift-v0`, `lpds_bench/PickPlaceCan-v0`, `lpds_bench/NutAssemblySquare-v0`."""
    for t in TASKS.values():
        if t.env_id not in gym.registry:
            gym.register(t.env_id, entry_point=f"{__name__}:RobomimicEnv", kwargs={"task": t.name},
                         max_episode_steps=t.max_steps, disable_env_checker=True)


register_envs()
