"""What the sim robot node drives: a backend with the robot's and camera's interfaces.

`rai`: lpds_sim's PhysX pick-and-place env (imported lazily). `kinematic`: a numpy fake hardware in the spirit of
ros2_control's mock components — the end effector tracks the target at a bounded speed, the cube sticks to closed
fingers and drops when they open. No physics: it exists to test the ROS plumbing fast and without RAI; it never
stands in for the simulator's results.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

TOP_DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # x y z w: gripper pointing down


class SimBackend(Protocol):
    obs_names: list[str]
    joint_names: list[str]

    def reset(self, row: int, col: int, seed: int, grid: tuple[int, int] | None = None) -> None: ...
    def command(self, position: np.ndarray, quaternion: np.ndarray, gripper: float) -> None: ...
    def step(self) -> None: ...
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]: ...
    def joint_positions(self) -> np.ndarray: ...
    def gripper_width(self) -> float: ...
    def task_obs(self) -> np.ndarray: ...
    def episode_info(self) -> dict[str, float]: ...
    def render(self) -> tuple[np.ndarray, np.ndarray] | None: ...


class KinematicBackend:
    """Same world layout and conventions as lpds_sim's PickPlace-v0 (world frame, table top z = 0.65, 2x4 grid with
    rows along y, tray at (-0.25, 0.22)), so the same policy parameters (box, scales) apply to both backends."""

    obs_names = ["ee_x", "ee_y", "ee_z", "gripper_width", "obj_x", "obj_y", "obj_z", "target_x", "target_y",
                 "target_z"]
    joint_names = [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1", "fr3_finger_joint2"]
    CUBE = 0.05
    TABLE_Z = 0.65
    TRAY = np.array([-0.25, 0.32, 0.66])  # tray floor centre
    TRAY_HALF = 0.1
    HOME = np.array([0.05, 0.3, 0.95])
    REGION = ((-0.05, 0.35), (0.22, 0.42))  # x range, y range of the object start grid
    HELD_WIDTH_READING = 0.02  # finger reading with the cube in hand, as the RAI env reports it

    def __init__(self, rows: int = 2, cols: int = 4, max_speed: float = 0.03, max_episode_steps: int = 150,
                 image_hw=(96, 128)):
        self.rows, self.cols, self.max_speed, self.image_hw = rows, cols, max_speed, image_hw
        self.max_episode_steps = max_episode_steps
        self.reset(0, 0, 0)

    def reset(self, row: int, col: int, seed: int, grid: tuple[int, int] | None = None) -> None:
        rows, cols = grid or (self.rows, self.cols)
        if not (0 <= row < rows and 0 <= col < cols):
            raise ValueError(f"cell ({row}, {col}) is outside the {rows}x{cols} grid")
        rng = np.random.default_rng(seed)
        (x0, x1), (y0, y1) = self.REGION
        dx, dy = (x1 - x0) / cols, (y1 - y0) / rows
        xy = np.array([x0 + (col + 0.5) * dx, y0 + (row + 0.5) * dy]) + rng.uniform(-0.3, 0.3, 2) * [dx, dy]
        self.obj = np.array([xy[0], xy[1], self.TABLE_Z + self.CUBE / 2])
        self.ee, self.quat = self.HOME.copy(), TOP_DOWN.copy()
        self.target, self.width, self.grip_cmd = self.HOME.copy(), 0.08, 0.0
        self.held, self.steps, self.success, self.collision = False, 0, False, False
        self.start_xy, self.ret, self.collisions = self.obj[:2].copy(), 0.0, 0

    def command(self, position, quaternion, gripper: float) -> None:
        self.target = np.asarray(position, float).copy()
        self.quat = np.asarray(quaternion, float) / np.linalg.norm(quaternion)
        self.grip_cmd = float(gripper)

    def step(self) -> None:
        if self.success or self.steps >= self.max_episode_steps:
            return  # episode over: the fake hardware freezes until the next reset
        d = self.target - self.ee
        n = np.linalg.norm(d)
        self.ee = self.ee + (d if n <= self.max_speed else d * self.max_speed / n)
        self.ee[2] = max(self.ee[2], self.TABLE_Z + 0.005)
        closing = self.grip_cmd > 0.5
        if closing and not self.held and np.linalg.norm(self.obj - self.ee) < 0.02:
            self.held = True
        if not closing:
            self.held = False
        goal_w = (self.HELD_WIDTH_READING if self.held else 0.0) if closing else 0.08
        self.width += float(np.clip(goal_w - self.width, -0.02, 0.02))
        if self.held:
            self.obj = self.ee.copy()
        else:
            floor = self.TRAY[2] if np.all(np.abs(self.obj[:2] - self.TRAY[:2]) < self.TRAY_HALF) else self.TABLE_Z
            self.obj[2] = max(floor + self.CUBE / 2, self.obj[2] - 0.05)
        self.collision = self.collision or bool(self.ee[2] < self.TABLE_Z + 0.006 and not self.held)
        in_tray = np.all(np.abs(self.obj[:2] - self.TRAY[:2]) < self.TRAY_HALF - self.CUBE / 2)
        self.success = self.success or bool(in_tray and not self.held and self.obj[2] <= self.TRAY[2] + self.CUBE)
        self.steps += 1
        hit = self.ee[2] < self.TABLE_Z + 0.006 and not self.held
        self.collisions += int(hit)
        self.ret += -0.1 * float(np.linalg.norm(self.obj[:2] - self.TRAY[:2])) - 0.5 * hit + 1.0 * self.success

    def ee_pose(self):
        return self.ee.copy(), self.quat.copy()

    def joint_positions(self) -> np.ndarray:
        q = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])  # not modelled
        return np.concatenate([q, [self.width / 2, self.width / 2]])

    def gripper_width(self) -> float:
        return self.width

    def task_obs(self) -> np.ndarray:
        return np.concatenate([self.ee, [self.width], self.obj, self.TRAY + [0, 0, self.CUBE / 2]]).astype(np.float32)

    def episode_info(self) -> dict[str, float]:
        done = self.success or self.steps >= self.max_episode_steps
        return {"success": float(self.success), "collision": float(self.collision), "steps": float(self.steps),
                "done": float(done), "return": self.ret, "collisions": float(self.collisions),
                "start_x": self.start_xy[0], "start_y": self.start_xy[1],
                "obj_x": self.obj[0], "obj_y": self.obj[1], "obj_z": self.obj[2]}

    def render(self):
        """A top-down synthetic frame: grey table, green tray, red cube; depth in metres from a camera 1 m up."""
        h, w = self.image_hw
        rgb = np.full((h, w, 3), 120, np.uint8)
        depth = np.full((h, w), 1.0, np.float32)

        def px(x, y):
            return int((y + 0.05) / 0.5 * h), int((x + 0.45) / 0.9 * w)

        r0, c0 = px(*(self.TRAY[:2] - self.TRAY_HALF))
        r1, c1 = px(*(self.TRAY[:2] + self.TRAY_HALF))
        rgb[max(r0, 0):r1, max(c0, 0):c1] = (40, 160, 40)
        r0, c0 = px(*(self.obj[:2] - self.CUBE / 2))
        r1, c1 = px(*(self.obj[:2] + self.CUBE / 2))
        rgb[max(r0, 0):max(r1, 1), max(c0, 0):max(c1, 1)] = (200, 30, 30)
        depth[max(r0, 0):max(r1, 1), max(c0, 0):max(c1, 1)] = 1.0 - (self.obj[2] - self.TABLE_Z) - self.CUBE / 2
        return rgb, depth


def make_backend(name: str, task: str, seed: int = 0, rate: float = 10.0, render: bool = True,
                 max_episode_steps: int | None = None, bench_profile: str = "") -> Any:
    if name == "kinematic":
        if task != "pick_place":
            raise ValueError("the kinematic backend only models pick_place")
        if bench_profile:
            raise ValueError("the kinematic backend models the default bench only: use backend rai with "
                             "bench_profile, or leave bench_profile empty")
        return KinematicBackend(max_speed=0.3 / rate, max_episode_steps=max_episode_steps or 150)
    if name == "rai":
        from .rai_backend import RaiBackend  # lazily: needs robotic + lpds_sim

        return RaiBackend(task, seed=seed, rate=rate, render=render, max_episode_steps=max_episode_steps,
                          bench_profile=bench_profile)
    raise ValueError(f"unknown sim backend {name!r}: use rai or kinematic")
