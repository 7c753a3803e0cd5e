"""Builds RAI scenes for the LP-DS Panda tasks.

All RAI pitfalls from `shared/reference/rai.md` are handled here once: the wrist-camera collision capsule is
deleted (it collides with grasped objects), PhysX motor gains are raised before any Simulation exists (tight
position tracking), and a stray `rai.cfg` in the working directory is refused (it silently changes parameters).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import robotic as ry

TABLE_TOP_Z = 0.65  # pandaSingle.g: table centre z=0.6, thickness 0.1 (a bench profile may move the table)
ROBOT_BASE_FRAME = "l_panda_base"  # a child of the table in pandaSingle.g
ROBOT_PREFIX = "l_"
EE_FRAME = "l_gripper"
GRIPPER_MAX_WIDTH = 0.08  # total opening, metres (moveGripper convention; getGripperWidth returns half)
# Box (world frame, metres) every object and target position lies in: the 2.5 x 2.5 m table (centred at the origin)
# plus 0.5 m on each side, from the floor (z = 0, minus penetration) to well above the robot's reach
SCENE_LOW = (-1.75, -1.75, -0.1)
SCENE_HIGH = (1.75, 1.75, 2.0)
PHYSX_PARAMS = {"physx/motorKp": 1e4, "physx/motorKd": 100.0}


def check_no_rai_cfg(cwd: str | os.PathLike | None = None) -> None:
    """RAI reads `rai.cfg` from the working directory silently; a stray one would change physics behind our back."""
    path = Path(cwd or os.getcwd()) / "rai.cfg"
    if path.exists():
        raise RuntimeError(f"found {path}: RAI reads it silently and it changes simulation parameters; "
                           "remove it or run from another directory")


def set_physx_params() -> None:
    """Raise motor gains so position targets are tracked to ~7 mrad (must run before creating a Simulation)."""
    ry.params_add(PHYSX_PARAMS)


def panda_config(table_height: float = TABLE_TOP_Z) -> ry.Config:
    """Table + Panda (`l_` prefix) from pandaSingle.g, without the wrist-camera collision capsule.

    `table_height` (world z of the table top, from the bench profile) moves the table; the robot stays where it is
    (its base is the frame the policy's actions live in), so the robot base is moved back by the same amount."""
    check_no_rai_cfg()
    C = ry.Config()
    C.addFile(ry.raiPath("scenarios/pandaSingle.g"))
    if "panda_collCameraWrist" in C.getFrameNames():
        C.delFrame("panda_collCameraWrist")  # robotic 0.4.1 API: delFrame(name)
    dz = float(table_height) - TABLE_TOP_Z
    if dz != 0.0:  # the default leaves the scene file's frames untouched (bit-identical to it)
        table, base = C.getFrame("table"), C.getFrame(ROBOT_BASE_FRAME)
        table.setPosition((table.getPosition() + [0.0, 0.0, dz]).tolist())
        base.setRelativePosition((base.getRelativePosition() - [0.0, 0.0, dz]).tolist())
    return C


def add_box(C: ry.Config, name: str, size: float, pos: np.ndarray, mass: float = 0.1,
            color: tuple[float, float, float] = (1.0, 0.5, 0.0)) -> ry.Frame:
    """A dynamic cube (root frame + mass + contact) that PhysX simulates as a rigid body."""
    return (C.addFrame(name).setShape(ry.ST.ssBox, [size, size, size, 0.005]).setPosition(list(pos))
            .setContact(1).setMass(mass).setColor(list(color)))


def add_tray(C: ry.Config, name: str, center_xy: tuple[float, float], inner: float = 0.2, wall_h: float = 0.04,
             wall_t: float = 0.01, color: tuple[float, float, float] = (0.3, 0.5, 0.8), yaw: float = 0.0) -> list[str]:
    """A static tray (plate + four walls) fixed to the table, turned by `yaw` about z; returns its frame names.

    `center_xy` is relative to the table centre, which is the world origin's x y (profiles move the table in z
    only)."""
    plate_t = 0.01
    plate = C.addFrame(name, "table").setShape(ry.ST.ssBox, [inner + 2 * wall_t, inner + 2 * wall_t, plate_t, 0.002]) \
        .setRelativePosition([center_xy[0], center_xy[1], 0.05 + plate_t / 2]).setContact(1).setColor(list(color))
    if yaw != 0.0:
        plate.setRelativeQuaternion([float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))])
    names = [name]
    off = inner / 2 + wall_t / 2
    z = plate_t / 2 + wall_h / 2
    walls = [([off, 0, z], [wall_t, inner + 2 * wall_t, wall_h]), ([-off, 0, z], [wall_t, inner + 2 * wall_t, wall_h]),
             ([0, off, z], [inner, wall_t, wall_h]), ([0, -off, z], [inner, wall_t, wall_h])]
    for i, (p, s) in enumerate(walls):
        wname = f"{name}_wall{i}"
        C.addFrame(wname, name).setShape(ry.ST.box, s).setRelativePosition(p).setContact(1).setColor(list(color))
        names.append(wname)
    return names
