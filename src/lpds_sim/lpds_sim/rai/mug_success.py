"""When does a mug count as hung on the peg? Pure functions on poses, so the rule is testable without a simulator.

The rule (as a person on a real bench would judge it, with a narrow tolerance):
1. the peg's axis passes through the closed handle loop: the point where the axis crosses the handle's plane lies
   inside the hole (up to the bar centre lines, 5 mm slack for contact penetration) and on the peg itself;
2. the mug is off the table: its lowest point is at least `clearance` above the table top, and the simulator
   reports no mug-table contact;
3. the gripper has let go (no finger-mug contact);
4. 1-3 hold for `hold_steps` consecutive control steps (`HangTimer`).
A hung mug keeps swinging slowly about the peg (period ~4 s, see the reference note), so stability is "stays on
the peg", never "velocity below a threshold".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mug_scene import MugScene


def handle_crossing(mug_pos: np.ndarray, mug_rot: np.ndarray, peg_root: np.ndarray,
                    peg_axis: np.ndarray) -> tuple[float, float, float] | None:
    """Where the peg axis crosses the handle plane (the mug's local x-z plane).

    Returns (x, z, t): x, z in the mug frame (the hole centre is at x = handle offset, z = 0) and t, the distance
    from the peg root along the axis. None when the axis is (nearly) parallel to the handle plane.
    """
    R = np.asarray(mug_rot, float)
    p_local = R.T @ (np.asarray(peg_root, float) - np.asarray(mug_pos, float))
    a_local = R.T @ np.asarray(peg_axis, float)
    if abs(a_local[1]) < 1e-3:
        return None
    t = -p_local[1] / a_local[1]
    hit = p_local + t * a_local
    return float(hit[0]), float(hit[2]), float(t)


def handle_on_peg(mug_pos: np.ndarray, mug_rot: np.ndarray, scene: MugScene) -> bool:
    """True when the peg runs through the closed handle loop (rule 1)."""
    m, h = scene.mug, scene.holder
    crossing = handle_crossing(mug_pos, mug_rot, h.root, h.axis)
    if crossing is None:
        return False
    x, z, t = crossing
    return (abs(x - m.handle_offset) < m.hole_w / 2 + m.bar_radius
            and abs(z) < m.hole_h / 2 + m.bar_radius
            and 0.0 <= t <= h.peg_length)


def mug_lowest_z(mug_pos: np.ndarray, mug_rot: np.ndarray, scene: MugScene) -> float:
    """Height of the mug's lowest point: the bottom rim of the body or an end of the handle's outer bar."""
    m = scene.mug
    R = np.asarray(mug_rot, float)
    pos = np.asarray(mug_pos, float)
    axis_z = R[2, 2]  # z component of the mug's axis
    rim = pos[2] - abs(axis_z) * m.height / 2 - np.sqrt(max(0.0, 1.0 - axis_z ** 2)) * m.radius
    zb = m.hole_h / 2 + m.bar_radius
    x_out = m.radius + m.hole_w + m.bar_radius
    bar_ends = [pos[2] + R[2] @ np.array([x_out, 0.0, s * zb]) - m.bar_radius for s in (-1.0, 1.0)]
    return float(min(rim, *bar_ends))


def mug_is_hanging(mug_pos: np.ndarray, mug_rot: np.ndarray, scene: MugScene, *, touching_table: bool,
                   held: bool, table_z: float | None = None, clearance: float = 0.01) -> bool:
    """Rules 1-3 for one instant. `touching_table`/`held`: contacts mug-table / mug-fingers reported by the sim."""
    table_z = scene.table_z if table_z is None else table_z
    return (not held and not touching_table
            and mug_lowest_z(mug_pos, mug_rot, scene) > table_z + clearance
            and handle_on_peg(mug_pos, mug_rot, scene))


@dataclass
class HangTimer:
    """Rule 4: success once the mug has been hanging for `hold_steps` consecutive control steps."""

    hold_steps: int = 10
    count: int = 0

    def __post_init__(self) -> None:
        if self.hold_steps < 1:
            raise ValueError(f"hold_steps must be >= 1, got {self.hold_steps}")

    def reset(self) -> None:
        self.count = 0

    def update(self, hanging: bool) -> bool:
        self.count = self.count + 1 if hanging else 0
        return self.count >= self.hold_steps
