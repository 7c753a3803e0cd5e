"""The lpds_sim RAI/PhysX task env as the sim robot's backend (imports robotic + lpds_sim; robot PC never needs it).

Absolute end-effector targets from the ROS side are turned back into the env's own EE-delta action against the
env's integrated target (`ee_target`), so a policy streamed through ROS drives the env exactly as `env.step` would.
Quaternions: RAI (w, x, y, z) with w >= 0 inside the env, ROS (x, y, z, w) outside.
"""
from __future__ import annotations

import math

import numpy as np

STATE_FIELD_NAMES = {
    "ee_pos": ["ee_x", "ee_y", "ee_z"], "ee_quat": ["ee_qw", "ee_qx", "ee_qy", "ee_qz"],
    "gripper_width": ["gripper_width"], "obj_pos": ["obj_x", "obj_y", "obj_z"],
    "obj_quat": ["obj_qw", "obj_qx", "obj_qy", "obj_qz"], "target_pos": ["target_x", "target_y", "target_z"],
}


def sim_dt_for(rate: float, max_dt: float = 0.01) -> float:
    """Largest physics step <= max_dt that divides the control period (the env needs whole substeps)."""
    return 1.0 / (rate * math.ceil(1.0 / (rate * max_dt) - 1e-9))


def state_names(layout: dict[str, slice]) -> list[str]:
    names: list[str] = []
    for key, sl in sorted(layout.items(), key=lambda kv: kv[1].start):
        n = sl.stop - sl.start
        names += STATE_FIELD_NAMES.get(key, [f"{key}_{i}" for i in range(n)])[:n]
    return names


def yaw_of_xyzw(q: np.ndarray) -> float:
    x, y, z, w = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class RaiBackend:
    def __init__(self, task: str = "pick_place", seed: int = 0, rate: float = 10.0, image_size: int = 84,
                 render: bool = True, max_episode_steps: int | None = None, bench_profile: str = ""):
        import gymnasium as gym

        import lpds_sim.rai as rai

        if task not in rai.ENV_IDS:
            raise ValueError(f"unknown task {task!r}; lpds_sim.rai registers {sorted(rai.ENV_IDS)}")
        self.env = gym.make(rai.ENV_IDS[task], obs_mode="state", control_hz=float(rate), sim_dt=sim_dt_for(rate),
                            terminate_on_success=False, max_episode_steps=max_episode_steps,
                            bench_profile=bench_profile or None).unwrapped
        self.obs_names = state_names(self.env.state_layout)
        self.joint_names = [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1", "fr3_finger_joint2"]
        self._lin = self.env.max_lin_speed / self.env.control_hz
        self._yaw = self.env.max_yaw_rate / self.env.control_hz
        self._camera = None
        if render:
            from lpds_sim.rai.camera import CameraSpec, RGBDCamera

            # the bench profile's camera for this task (the perception node publishes the same pose)
            self._camera = RGBDCamera(self.env.C, CameraSpec.from_profile(self.env.bench, self.env.bench_camera,
                                                                          size=image_size))
        self._seed0 = seed
        self.reset(0, 0, seed)

    def reset(self, row: int, col: int, seed: int, grid: tuple[int, int] | None = None) -> None:
        opts = {"cell": (int(row), int(col))}
        if grid is not None:
            opts["grid"] = (int(grid[0]), int(grid[1]))
        self._obs, self._info = self.env.reset(seed=int(seed), options=opts)
        self._target, self._yaw_target, self._grip = self.env.ee_target, None, 0.0
        self.success, self.collision, self.steps, self.done = False, False, 0, False
        self.ret, self.collisions = 0.0, 0

    def command(self, position: np.ndarray, quaternion: np.ndarray, gripper: float) -> None:
        self._target = np.asarray(position, float)
        self._yaw_target = yaw_of_xyzw(np.asarray(quaternion, float))
        self._grip = float(gripper)

    def action(self) -> np.ndarray:
        """The env action that moves the env's integrated target onto the commanded one (clipped to [-1, 1])."""
        e = self.env
        a = np.zeros(e.action_space.shape[0])
        a[:3] = (self._target - e.ee_target) / self._lin
        if e.use_yaw and self._yaw_target is not None:
            a[3] = (self._yaw_target - e._tgt_yaw) / self._yaw
        a[-1] = -1.0 if self._grip > 0.5 else 1.0  # env: a[-1] >= 0 opens
        return np.clip(a, -1.0, 1.0)

    def step(self) -> None:
        self._obs, r, term, trunc, info = self.env.step(self.action())
        if not self.done:  # the episode as run_episode counts it (up to success or the step limit)
            self.steps += 1
            self.ret += float(r)
            self.collisions += int(info["collision"])
        self.success = self.success or bool(info["success"])
        self.collision = self.collision or bool(info["collision"])
        self.done = self.done or bool(trunc) or self.success or self.steps >= self.env.max_episode_steps

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        pos, q = self.env.ee_pose()  # q: w x y z
        return pos, np.array([q[1], q[2], q[3], q[0]])

    def joint_positions(self) -> np.ndarray:
        q = np.asarray(self.env.S.get_q(), float)
        w = self.env.gripper_width()
        return np.concatenate([q[:7], [w / 2, w / 2]])

    def gripper_width(self) -> float:
        return float(self.env.gripper_width())

    def task_obs(self) -> np.ndarray:
        return np.asarray(self._obs, np.float32)

    def episode_info(self) -> dict[str, float]:
        obj = self.env._obj_frame().getPosition()
        sx, sy = getattr(self.env, "start_xy", (np.nan, np.nan))
        return {"success": float(self.success), "collision": float(self.collision), "steps": float(self.steps),
                "done": float(self.done), "return": self.ret, "collisions": float(self.collisions),
                "start_x": float(sx), "start_y": float(sy), "obj_x": float(obj[0]), "obj_y": float(obj[1]), "obj_z": float(obj[2])}

    def render(self):
        if self._camera is None:
            return None
        rgb, depth = self._camera.render(None)
        return np.ascontiguousarray(rgb.transpose(1, 2, 0)), depth[0]
