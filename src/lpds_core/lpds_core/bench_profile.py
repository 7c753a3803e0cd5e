"""The bench calibration profile: what a lab measures on its bench (table height, tray / holder place, camera pose).

Why here: the simulator (lpds_sim.rai builds its scene from it) and the perception node on the robot PC (no torch,
no simulator) read the same YAML file, so this module needs only numpy and PyYAML. The schema is
`lpds_core.config`'s: unknown keys and wrong types are refused with one line.

Frame: every position is in the *sim world frame* of the RAI scene (pandaSingle.g): origin on the floor under the
table centre, z up; the robot base stands at `SIM_BASE_POSITION`, turned by `SIM_BASE_YAW` about z. A pose measured
in the robot base frame (hand-eye calibration) is mapped into it by `base_to_world`. Cameras: the pose of the colour
*optical* frame (x right, y down, z forward — RealSense `camera_color_optical_frame`, OpenCV), which is also how
the sim's RAI camera frame is oriented. Quaternions are (x, y, z, w), the ROS order.

The defaults are today's RAI scene exactly (`config/bench/default.yaml` is a written copy; a test keeps them equal).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import build, doc_of, is_config, nested, read_yaml, setting, to_dict
from .errors import ConfigError

# pandaSingle.g: table centre at z 0.6, 0.1 thick; `l_panda_base (table): t(0 -.2 .05) d(90 0 0 1)`
SIM_BASE_POSITION = (0.0, -0.2, 0.65)
SIM_BASE_YAW = math.pi / 2
PROFILE_FRAME = "world"  # name of the frame profiles are written in (the policy node's base_frame default too)
SIM_TABLE_HEIGHT = 0.65  # table top z in pandaSingle.g (the scene file's own value; profiles move the table from it)
# a quaternion whose norm is this close to 1 is accepted (rounded printouts) and normalised where it is used
QUAT_NORM_TOL = 1e-3
# RAI look-at rotations of today's cameras, as RAI stores them (eye -> target):
#   pick-and-place (0, 0.75, 1.2) -> (-0.02, 0.27, 0.68); mug hanging (0.07, 0.9, 1.25) -> (0.05, 0.28, 0.72)
_PICK_CAMERA_QUAT = (-0.01938874374872383, -0.931063456934387, 0.3642627838629206, 0.007585517099734863)
_MUG_CAMERA_QUAT = (-0.014642370505850408, -0.9080630772231473, 0.41852300409162485, 0.0067486158669423195)


@dataclass
class TableGeometry:
    """The table the objects stand on."""
    table_height: float = setting(SIM_TABLE_HEIGHT, "world z of the table top, m (robot base at z 0.65; measured "
                                  "in the base frame: add 0.65)", min=0.0, max=1.6)


@dataclass
class TrayGeometry:
    """Pick-and-place target tray (20 cm inside, 4 cm walls), standing on the table."""
    tray_xy: tuple[float, float] = setting((-0.25, 0.32), "tray centre, world x y, m", min=-1.2, max=1.2)
    tray_yaw: float = setting(0.0, "tray rotation about z, rad", min=-math.pi, max=math.pi)


@dataclass
class HolderGeometry:
    """Mug-hanging holder post; its peg points at the robot (-y)."""
    holder_xy: tuple[float, float] = setting((0.3, 0.42), "holder post centre, world x y, m", min=-1.2, max=1.2)
    peg_height: float = setting(0.22, "peg axis height above the table top, m", above=0.0, max=0.6)


@dataclass
class CameraGeometry:
    """The fixed RGB-D camera of the pick-and-place bench (colour optical frame, world)."""
    camera_position: tuple[float, float, float] = setting((0.0, 0.75, 1.2), "camera position, world x y z, m")
    camera_quat_xyzw: tuple[float, float, float, float] = setting(
        _PICK_CAMERA_QUAT, "camera orientation, quaternion x y z w (optical frame: x right, y down, z forward)")
    vfov_deg: float = setting(58.0, "vertical field of view of the rendered image, degrees", above=1.0, max=170.0)
    depth_range: tuple[float, float] = setting((0.1, 3.0), "near and far clip of the depth image, m", above=0.0)


@dataclass
class MugCameraGeometry:
    """The camera of the mug-hanging bench (a wider view: mug region and holder)."""
    mug_camera_position: tuple[float, float, float] = setting((0.07, 0.9, 1.25), "camera position, world x y z, m")
    mug_camera_quat_xyzw: tuple[float, float, float, float] = setting(
        _MUG_CAMERA_QUAT, "camera orientation, quaternion x y z w (optical frame: x right, y down, z forward)")


_CHECK_WHERE = "bench profile"  # prefix of the cross-field errors; load_profile puts the file name in


@dataclass
class BenchProfile:
    """Bench calibration: table, tray, holder and camera as measured on the bench (sim world frame)."""
    bench_name: str = setting("rai-default", "what bench this profile describes (free text)")
    table: TableGeometry = nested(TableGeometry)
    tray: TrayGeometry = nested(TrayGeometry)
    holder: HolderGeometry = nested(HolderGeometry)
    camera: CameraGeometry = nested(CameraGeometry)
    mug_camera: MugCameraGeometry = nested(MugCameraGeometry)

    def check(self) -> None:
        unit_quaternion(self.camera.camera_quat_xyzw, "camera_quat_xyzw", _CHECK_WHERE)
        unit_quaternion(self.mug_camera.mug_camera_quat_xyzw, "mug_camera_quat_xyzw", _CHECK_WHERE)
        near, far = self.camera.depth_range
        if not near < far:
            raise ConfigError(f"{_CHECK_WHERE}: depth_range must be near < far, got {list(self.camera.depth_range)}")

    def camera_pose(self, which: str = "camera") -> tuple[np.ndarray, np.ndarray]:
        """(position, unit quaternion x y z w) of `which` camera: 'camera' (pick-and-place) or 'mug_camera'."""
        if which == "camera":
            pos, quat = self.camera.camera_position, self.camera.camera_quat_xyzw
        elif which == "mug_camera":
            pos, quat = self.mug_camera.mug_camera_position, self.mug_camera.mug_camera_quat_xyzw
        else:
            raise ConfigError(f"bench camera must be 'camera' or 'mug_camera', got {which!r}")
        q = np.asarray(quat, np.float64)
        return np.asarray(pos, np.float64), q / np.linalg.norm(q)


@dataclass
class BenchSetting:
    """The bench the RAI scene is built for (table height, tray / holder place, camera pose)."""
    bench_profile: str = setting("", "bench calibration profile (YAML, see config/bench/default.yaml) the RAI scene "
                                 "is built from; empty: today's default scene")

    def env_kwargs(self) -> dict[str, Any]:
        """{'bench_profile': path} for `make_env`, checked now (one line if the file is wrong); {} for the default."""
        if not self.bench_profile:
            return {}
        load_profile(self.bench_profile)
        return {"bench_profile": self.bench_profile}

    @classmethod
    def add_flag(cls, parser: Any) -> None:
        """`--bench-profile PATH` on a command (its help is the field's doc)."""
        f = {g.name: g for g in fields(cls)}["bench_profile"]
        parser.add_argument("--bench-profile", default="", metavar="PATH", help=doc_of(f))


def unit_quaternion(q: Sequence[float], key: str, where: str) -> np.ndarray:
    """`q` normalised; refused (one line) when its norm is farther than QUAT_NORM_TOL from 1 — such a value is a
    typo or a wrong order, not rounding."""
    q = np.asarray(q, np.float64)
    if q.shape != (4,) or not np.isfinite(q).all():
        raise ConfigError(f"{where}: {key} must be 4 finite numbers x y z w, got {q.tolist()}")
    n = float(np.linalg.norm(q))
    if abs(n - 1.0) > QUAT_NORM_TOL:
        raise ConfigError(f"{where}: {key}={q.tolist()} has norm {n:.4g}, not 1; a rotation quaternion is unit "
                          f"length: check the digits and the order (x, y, z, w)")
    return q / n


def load_profile(source: "str | os.PathLike | BenchProfile | None" = None) -> BenchProfile:
    """A profile from a YAML file, an existing profile, or None / '' for the defaults (today's RAI scene)."""
    if isinstance(source, BenchProfile):
        return source
    if source is None or str(source) == "":
        return BenchProfile()
    where = f"bench profile {source}"
    try:
        return build(BenchProfile, read_yaml(source), where=where)
    except ConfigError as exc:  # the cross-field checks (`check`) cannot know the file: name it here
        msg = str(exc)
        if msg.startswith(_CHECK_WHERE + ": "):
            raise ConfigError(f"{where}: {msg[len(_CHECK_WHERE) + 2:]}") from None
        raise


def profile_yaml(profile: BenchProfile, header: str = "") -> str:
    """The profile as commented YAML (each key with its one-line doc) that `load_profile` reads back to the same
    numbers: floats are written with `repr`, which round-trips exactly."""
    import yaml

    def value(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, float):
            return repr(v)
        return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()

    lines = [f"# {ln}".rstrip() for ln in header.splitlines()]
    for f in fields(profile):
        v = getattr(profile, f.name)
        if is_config(v):
            lines.append(f"{f.name}:  # {doc_of(f)}")
            lines += [f"  {g.name}: {value(getattr(v, g.name))}  # {doc_of(g)}" for g in fields(v)]
        else:
            lines.append(f"{f.name}: {value(v)}  # {doc_of(f)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# rotations and frames (numpy only: the robot PC has no simulator)
# ---------------------------------------------------------------------------------------------------------------
def quat_xyzw_to_matrix(q: Sequence[float]) -> np.ndarray:
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w, w >= 0) of a rotation matrix (Shepperd's method: stable for every angle)."""
    R = np.asarray(R, np.float64)
    t = np.trace(R)
    if t > max(R[0, 0], R[1, 1], R[2, 2]):
        s = 2.0 * math.sqrt(1.0 + t)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0, 0.0, 0.0, (R[k, j] - R[j, k]) / s]
        q[i] = s / 4
        q[j] = (R[j, i] + R[i, j]) / s
        q[k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q)
    q = q / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def pose_matrix(position: Sequence[float], quat_xyzw: Sequence[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quat_xyzw_to_matrix(quat_xyzw)
    T[:3, 3] = position
    return T


def world_from_base() -> np.ndarray:
    """4x4 pose of the robot base in the sim world frame (fixed by the scene, pandaSingle.g)."""
    c, s = math.cos(SIM_BASE_YAW), math.sin(SIM_BASE_YAW)
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    T[:3, 3] = SIM_BASE_POSITION
    return T


def base_to_world(T_base: np.ndarray) -> np.ndarray:
    """A pose measured in the robot base frame, expressed in the sim world frame."""
    return world_from_base() @ np.asarray(T_base, np.float64)


def check_pose_matrix(T: Any, where: str) -> np.ndarray:
    """A 4x4 rigid transform (rotation orthonormal to 1e-3, det +1, last row 0 0 0 1), else one ConfigError."""
    T = np.asarray(T, np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ConfigError(f"{where}: expected a 4x4 matrix of finite numbers, got shape {T.shape}")
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
        raise ConfigError(f"{where}: the last row must be 0 0 0 1, got {T[3].tolist()} (is the matrix transposed?)")
    R = T[:3, :3]
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    if err > 1e-3 or np.linalg.det(R) < 0:
        raise ConfigError(f"{where}: the upper-left 3x3 is not a rotation (|R^T R - I| = {err:.3g}, det "
                          f"{np.linalg.det(R):.3g}); pass the camera pose as a rigid transform")
    return T


def read_pose_matrix(path: "str | os.PathLike") -> np.ndarray:
    """A 4x4 pose from a hand-eye calibration: .npy, or text (4 rows of 4 numbers, spaces or commas)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"camera matrix file {path} does not exist")
    try:
        if path.suffix == ".npy":
            T = np.load(path, allow_pickle=False)
        else:
            T = np.loadtxt(path, delimiter="," if "," in path.read_text() else None, ndmin=2)
    except ValueError as exc:
        raise ConfigError(f"camera matrix file {path} is not a 4x4 matrix of numbers: {exc}") from None
    return check_pose_matrix(T, f"camera matrix file {path}")


def calibrated_profile(base: BenchProfile, position: Sequence[float], quat_xyzw: Sequence[float], *,
                       which: str = "camera", table_height: float | None = None, name: str | None = None
                       ) -> BenchProfile:
    """`base` with `which` camera's pose (sim world frame) and optionally the table height replaced, checked."""
    data = to_dict(base)
    q = unit_quaternion(quat_xyzw, "camera quaternion", "calibrate")
    pos = [float(v) for v in position]
    if which == "camera":
        data["camera"].update(camera_position=pos, camera_quat_xyzw=[float(v) for v in q])
    elif which == "mug_camera":
        data["mug_camera"].update(mug_camera_position=pos, mug_camera_quat_xyzw=[float(v) for v in q])
    else:
        raise ConfigError(f"bench camera must be 'camera' or 'mug_camera', got {which!r}")
    if table_height is not None:
        data["table"]["table_height"] = float(table_height)
    if name is not None:
        data["bench_name"] = name
    return build(BenchProfile, data, where="calibrate")
