"""Robot base frame <-> policy (sim world) frame for poses: one home for the policy, teleop and recorder nodes.

Why: the policy acts in the RAI scene's world frame, while franka_ros2 reports the end-effector pose and takes
equilibrium poses in the robot base frame (fr3_link0). In today's scene the base stands at (0, -0.2, 0.65) turned
+90 deg about z (lpds_core.bench_profile.SIM_BASE_POSITION / SIM_BASE_YAW), so an offset alone would send the arm
along the wrong axes. The base is level on the table, so its pose is an offset plus a yaw about z:

    world = Rz(yaw) @ base + offset          q_world = r(yaw) * q_base      (r: rotation about z, x y z w)

Parameters (policy_node, teleop_node, recorder_node): `base_offset` [x, y, z] m and `base_yaw` rad, the base's pose
in the world frame; both 0 in the sim graphs, whose robot already publishes in the world frame. numpy only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


def rotate_z(q_xyzw: Sequence[float], angle: float) -> np.ndarray:
    """World-frame rotation about z applied to an (x, y, z, w) quaternion: r * q with r = (0, 0, sin a/2, cos a/2).
    The sign of q is kept (a controller interpolating between consecutive targets sees no flip)."""
    x, y, z, w = np.asarray(q_xyzw, float)
    c, s = np.cos(angle / 2), np.sin(angle / 2)
    return np.array([c * x - s * y, c * y + s * x, c * z + s * w, c * w - s * z])


@dataclass(frozen=True)
class BaseFrame:
    """Pose of the robot base in the policy's world frame: `offset` (m) and `yaw` (rad about z)."""
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw: float = 0.0

    def __post_init__(self) -> None:
        offset = np.asarray(self.offset, float)
        if offset.shape != (3,) or not np.all(np.isfinite(offset)):
            raise ValueError(f"base_offset must be [x, y, z] (finite, m), got {np.asarray(self.offset).tolist()}")
        if not math.isfinite(float(self.yaw)):
            raise ValueError(f"base_yaw must be a finite angle in radians, got {self.yaw}")
        if abs(float(self.yaw)) > 2 * math.pi:
            raise ValueError(f"base_yaw must be an angle in radians within +-2 pi, got {self.yaw} (degrees? "
                             f"+90 deg is 1.5707963267948966)")
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "yaw", float(self.yaw))

    @classmethod
    def from_parameters(cls, p: dict[str, Any]) -> "BaseFrame":
        """From a node's `base_offset` and `base_yaw` parameters."""
        return cls(np.asarray(p["base_offset"], float), float(p["base_yaw"]))

    def rotation(self) -> np.ndarray:
        """3x3 world_R_base."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def position_to_world(self, p_base: Sequence[float]) -> np.ndarray:
        return self.rotation() @ np.asarray(p_base, float) + self.offset

    def position_to_base(self, p_world: Sequence[float]) -> np.ndarray:
        return self.rotation().T @ (np.asarray(p_world, float) - self.offset)

    def to_world(self, p_base: Sequence[float], q_base: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """A pose measured in the base frame (position, quaternion x y z w) in the world frame."""
        return self.position_to_world(p_base), rotate_z(q_base, self.yaw)

    def to_base(self, p_world: Sequence[float], q_world: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """A world-frame pose (position, quaternion x y z w) in the base frame: what the robot is sent."""
        return self.position_to_base(p_world), rotate_z(q_world, -self.yaw)
