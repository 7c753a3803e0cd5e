"""`lpds_sim/PickPlace-v0`: move a 5 cm cube from the table into a walled tray.

Success = the cube rests inside the tray: its centre is over the tray floor (clear of the walls), it lies on the
floor (not held up), it is still (< 5 cm/s) and the gripper has been commanded open.
"""
from __future__ import annotations

import numpy as np
import robotic as ry

from lpds_core.bench_profile import BenchProfile

from . import scene
from .panda_env import PandaTaskEnv


class PickPlaceEnv(PandaTaskEnv):
    task_name = "pick_place"
    use_yaw = False
    object_frame = "cube"
    held_frames = ("cube",)
    cube_size = 0.05
    tray_center_xy = (-0.25, 0.32)   # world xy (= relative to the table centre); set from the bench profile
    tray_yaw = 0.0
    tray_inner = 0.2
    tray_wall_h = 0.04
    tray_frames: tuple[str, ...] = ()
    object_region = ((-0.05, 0.35), (0.22, 0.42))
    grid_shape = (2, 4)
    default_max_episode_steps = 150
    max_cube_yaw = 0.2  # rad, start yaw jitter (top-down grasps without yaw control stay reliable)

    def _configure_bench(self, bench: BenchProfile) -> None:
        self.tray_center_xy, self.tray_yaw = tuple(bench.tray.tray_xy), bench.tray.tray_yaw

    def _scale_object(self, scale: float) -> None:
        self.cube_size = type(self).cube_size * scale

    def _build_task(self, C: ry.Config) -> None:
        self.tray_frames = tuple(scene.add_tray(C, "tray", self.tray_center_xy, self.tray_inner, self.tray_wall_h,
                                                yaw=self.tray_yaw))
        xy = np.mean(self.object_region, axis=1)
        scene.add_box(C, "cube", self.cube_size, np.array([xy[0], xy[1], self.table_z + self.cube_size / 2]))
        self._floor_z = self.table_z + 0.01  # tray plate top

    def _place_task(self, C: ry.Config, xy: np.ndarray, rng: np.random.Generator) -> None:
        yaw = rng.uniform(-self.max_cube_yaw, self.max_cube_yaw)
        f = C.getFrame("cube")
        f.setPosition([float(xy[0]), float(xy[1]), self.table_z + self.cube_size / 2 + 0.001])
        f.setQuaternion([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])

    def _target_pos(self) -> np.ndarray:
        return np.array([self.tray_center_xy[0], self.tray_center_xy[1], self._floor_z + self.cube_size / 2])

    def _is_success(self) -> bool:
        # plain floats: the same comparisons as on numpy arrays, without their per-call overhead (runs every step)
        x, y, z = self._obj_frame().getPosition().tolist()
        tx, ty, tz = self._target_pos().tolist()
        half = self.tray_inner / 2 - self.cube_size / 2 + 0.01
        dx, dy = x - tx, y - ty
        if self.tray_yaw != 0.0:  # into the tray's own axes
            c, s = np.cos(self.tray_yaw), np.sin(self.tray_yaw)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        inside = abs(dx) <= half and abs(dy) <= half
        resting = z < tz + 0.015
        return bool(inside and resting and self._obj_speed < 0.05 and self.gripper_open_cmd)
