"""`lpds calibrate`: a bench profile (YAML) from a measured camera pose — printed, or written with --out.

The pose is the colour optical frame of the camera (RealSense `camera_color_optical_frame`: x right, y down,
z forward), as a hand-eye calibration or `ros2 run tf2_ros tf2_echo base camera_color_optical_frame` gives it:
`--camera-pose x,y,z,qx,qy,qz,qw` or `--camera-matrix FILE` (a 4x4 transform, .npy or text). `--frame base`
(default): measured in the robot base frame, mapped into the sim world frame of the profile; `--frame world`:
already in it. The quaternion is normalised when its norm is within 1e-3 of 1 (rounded printouts) and refused
otherwise.
"""
from __future__ import annotations

import argparse

import numpy as np


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="print a bench profile (YAML) from a measured camera pose",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera-pose", metavar="x,y,z,qx,qy,qz,qw",
                     help="camera optical-frame pose: position (m) and quaternion x y z w, comma separated")
    src.add_argument("--camera-matrix", metavar="FILE",
                     help="camera optical-frame pose as a 4x4 transform from a hand-eye calibration (.npy or text)")
    p.add_argument("--frame", choices=["base", "world"], default="base",
                   help="frame of the pose and --table-height: robot base, or the sim world of the profile")
    p.add_argument("--table-height", type=float, default=None,
                   help="z of the table top in --frame (base: 0 when the robot stands on the table); "
                        "none: keep --from's")
    p.add_argument("--tray-xy", metavar="x,y", default=None,
                   help="tray centre on the table in --frame (pick-and-place); none: keep --from's")
    p.add_argument("--holder-xy", metavar="x,y", default=None,
                   help="mug holder post centre in --frame (mug hanging); none: keep --from's")
    p.add_argument("--camera", choices=["camera", "mug_camera"], default="camera",
                   help="which camera of the profile to set: pick-and-place (camera) or mug hanging (mug_camera)")
    p.add_argument("--from", dest="base_profile", default="", metavar="PROFILE",
                   help="profile whose other values are kept (none: the default, today's RAI scene)")
    p.add_argument("--name", default=None, help="bench_name of the new profile (none: keep --from's)")
    p.add_argument("--out", default=None, help="write the YAML here (never over an existing file); none: print it")
    p.set_defaults(func=run)


def parse_numbers(text: str, n: int, flag: str, names: str) -> list[float]:
    """'a,b,...' -> n floats; one ConfigError for anything else."""
    from lpds_core.errors import ConfigError

    parts = [s for s in text.replace(" ", ",").split(",") if s]
    try:
        values = [float(s) for s in parts]
    except ValueError:
        values = []
    if len(values) != n or not all(np.isfinite(values)):
        raise ConfigError(f"{flag} {text!r} must be {n} comma-separated numbers {names}")
    return values


def parse_pose(text: str) -> tuple[list[float], list[float]]:
    """'x,y,z,qx,qy,qz,qw' -> (position, quaternion x y z w)."""
    values = parse_numbers(text, 7, "--camera-pose", "x,y,z,qx,qy,qz,qw (position in m, quaternion x y z w)")
    return values[:3], values[3:]


def _to_world_xy(text: str | None, flag: str, frame: str) -> list[float] | None:
    """A point on the table given in --frame, as world x y (the table plane is horizontal in both frames)."""
    from lpds_core import bench_profile as bench

    if text is None:
        return None
    xy = parse_numbers(text, 2, flag, "x,y (m)")
    if frame == "world":
        return xy
    return [float(v) for v in (bench.world_from_base() @ np.array([xy[0], xy[1], 0.0, 1.0]))[:2]]


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from pathlib import Path

    from lpds_core import bench_profile as bench
    from lpds_core.config import build, to_dict
    from lpds_core.errors import ConfigError, RunError

    out = Path(args.out) if args.out else None
    if out is not None and out.exists():
        raise RunError(f"--out {out} already exists; lpds calibrate never overwrites a file: choose a new name "
                       f"(or move the old profile away)")
    if args.camera_pose is not None:
        pos, quat = parse_pose(args.camera_pose)
        T = bench.pose_matrix(pos, bench.unit_quaternion(quat, "--camera-pose quaternion", "calibrate"))
    else:
        T = bench.read_pose_matrix(args.camera_matrix)
    table = args.table_height
    if args.frame == "base":
        T = bench.base_to_world(T)
        if table is not None:  # the base frame's z axis is the world's: only the origin's height differs
            table = float((bench.world_from_base() @ np.array([0.0, 0.0, table, 1.0]))[2])
    base = bench.load_profile(args.base_profile)
    try:
        profile = bench.calibrated_profile(base, T[:3, 3], bench.matrix_to_quat_xyzw(T[:3, :3]), which=args.camera,
                                           table_height=table, name=args.name)
    except ConfigError as exc:
        if args.frame == "base" and "table_height" in str(exc):  # say what the base-frame value became
            raise ConfigError(f"--table-height {args.table_height:g} (base frame) is {table:g} m in the sim world; "
                              f"{exc}") from None
        raise
    tray, holder = _to_world_xy(args.tray_xy, "--tray-xy", args.frame), \
        _to_world_xy(args.holder_xy, "--holder-xy", args.frame)
    if tray is not None or holder is not None:
        data = to_dict(profile)
        if tray is not None:
            data["tray"]["tray_xy"] = tray
        if holder is not None:
            data["holder"]["holder_xy"] = holder
        profile = build(bench.BenchProfile, data, where="calibrate")
    header = ("bench profile written by: lpds calibrate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
              if len(sys.argv) > 2 and sys.argv[1] == "calibrate" else "bench profile written by lpds calibrate")
    text = bench.profile_yaml(profile, header + "\nframe: sim world (origin under the table centre, z up; robot "
                              "base at 0 -0.2 0.65, turned 90 deg about z)")
    if out is None:
        sys.stdout.write(text)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "x") as fh:  # "x": fails rather than replace a file that appeared meanwhile
        fh.write(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0
