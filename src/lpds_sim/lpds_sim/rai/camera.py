"""A fixed RGB-D camera placed like the RealSense D435i on the real bench, with optional sensor-noise emulation.

The image observation layout is fixed for the whole project (the backbone encoder expects it):
`{"rgb": uint8 (3,H,W), "depth": float32 metres (1,H,W), "proprio": float32 (P,)}`.
Rendering goes through `display.ensure_display()` first, so a missing X server is a clear error, not a SIGABRT.
A rendered frame becomes an observation exactly as a real camera frame does on the robot: sensor-noise emulation on
the raw frame, then lpds_core.image_preprocess (crop/resize, depth holes, hole filling) — `observation_from_frame`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import robotic as ry

from lpds_core.bench_profile import BenchProfile, matrix_to_quat_xyzw
from lpds_core.image_preprocess import PreprocessConfig, Preprocessor

from .display import ensure_display
from .sensor_noise import SensorNoise, edge_holes  # noqa: F401  (SensorNoise: re-exported, it lived here)
from .world import rotation


_DEFAULT_BENCH = BenchProfile()


@dataclass
class CameraSpec:
    """Pose (colour optical frame in the world: position, quaternion x y z w) and intrinsics. The defaults are the
    default bench profile's pick-and-place camera (58 deg vertical FOV like the D435i depth stream);
    `from_profile` takes them from a lab's profile, `look_at` from an eye and a target point."""
    position: tuple[float, float, float] = _DEFAULT_BENCH.camera.camera_position
    quat_xyzw: tuple[float, float, float, float] = _DEFAULT_BENCH.camera.camera_quat_xyzw
    size: int = 84
    vfov_deg: float = _DEFAULT_BENCH.camera.vfov_deg
    z_range: tuple[float, float] = _DEFAULT_BENCH.camera.depth_range
    noise: SensorNoise = field(default_factory=SensorNoise.off)

    @classmethod
    def from_profile(cls, profile: BenchProfile, which: str = "camera", **kw) -> "CameraSpec":
        """`which` camera ('camera': pick-and-place, 'mug_camera') of a profile; the quaternion is passed on as
        written (RAI normalises it), so the default profile gives today's camera exactly."""
        if which == "camera":
            pos, quat = profile.camera.camera_position, profile.camera.camera_quat_xyzw
        else:
            pos, quat = profile.mug_camera.mug_camera_position, profile.mug_camera.mug_camera_quat_xyzw
        return cls(position=tuple(pos), quat_xyzw=tuple(quat), vfov_deg=profile.camera.vfov_deg,
                   z_range=tuple(profile.camera.depth_range), **kw)

    @classmethod
    def look_at(cls, eye, target, **kw) -> "CameraSpec":
        R = look_at_rotation(np.asarray(eye, float), np.asarray(target, float))
        return cls(position=tuple(float(v) for v in eye), quat_xyzw=tuple(float(v) for v in matrix_to_quat_xyzw(R)),
                   **kw)


def preprocess_config(spec: CameraSpec) -> PreprocessConfig:
    """The shared preprocessing for this camera: its output size, holes beyond the far plane."""
    return PreprocessConfig(spec.size, spec.size, depth_max=float(spec.z_range[1]))


def observation_from_frame(rgb: np.ndarray, depth: np.ndarray, spec: CameraSpec,
                           rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw frame (rgb uint8 (h,w,3), depth metres (h,w), negative = nothing hit) -> (rgb (3,S,S), depth (1,S,S)).

    The training-time transform: with `rng`, the spec's sensor noise is applied to the raw frame
    (`noisy_frame`); then the same Preprocessor the robot's perception node runs on a RealSense frame."""
    rgb, depth = noisy_frame(rgb, depth, spec.noise, rng)
    # holes (0, or noise pushed past the far plane) are filled by the shared preprocessing, as on the robot
    return Preprocessor(preprocess_config(spec))(rgb, depth)


def noisy_frame(rgb: np.ndarray, depth: np.ndarray, n: SensorNoise, rng: np.random.Generator | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A raw frame as the emulated D435i delivers it: RAI's 'nothing hit' (negative) as 0, then with `rng` the
    colour noise, the depth noise and the holes (0) of `n` (still unfilled: the shared preprocessing fills them)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    depth = np.asarray(depth, dtype=np.float32)
    depth = np.where(depth < 0, 0.0, depth).astype(np.float32)  # RAI marks 'nothing' negative; RealSense uses 0
    if rng is not None:
        if n.rgb_std > 0:
            rgb = np.clip(rgb.astype(np.float32) + rng.normal(0, n.rgb_std, rgb.shape), 0, 255).astype(np.uint8)
        if n.depth_std_per_m2 > 0:
            depth = (depth + rng.normal(0, 1, depth.shape) * n.depth_std_per_m2 * depth ** 2).astype(np.float32)
        if n.hole_frac > 0:
            depth[rng.random(depth.shape) < n.hole_frac] = 0.0
        if n.edge_hole_frac > 0:
            depth = edge_holes(depth, n.edge_hole_frac, rng)
    return rgb, depth


def look_at_rotation(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """RAI cameras look along +z with image y pointing down (OpenCV-like); columns are the camera axes."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 0.0, -1.0], z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], 1)




class RGBDCamera:
    """Renders (rgb uint8 3xHxW, depth float32 1xHxW) of a live RAI Config from a fixed camera frame."""

    def __init__(self, C: ry.Config, spec: CameraSpec, frame_name: str = "d435i", fast: bool = False) -> None:
        ensure_display()  # must come before any CameraView exists
        self.src, self.spec, self.name = C, spec, frame_name
        # Render from a private copy whose frame poses are synced from the simulated config before every image:
        # the physics scene is never touched, and the copy may use convex-hull meshes (`fast`, ~2x faster).
        self.C = ry.Config()
        self.C.addConfigurationCopy(C)
        self._src_frames = C.getFrameNames()
        if fast:
            self.C.makeMeshesSSCvx(0.0)
        x, y, z, w = spec.quat_xyzw
        self.frame = self.C.addFrame(frame_name).setShape(ry.ST.marker, [0.05]).setPosition(list(spec.position))
        self.frame.setQuaternion([w, x, y, z])  # RAI: w x y z, normalised on the way in
        self._R0 = self.frame.getRotationMatrix().copy()
        focal = 0.5 / np.tan(np.deg2rad(spec.vfov_deg) / 2)  # RAI focalLength is relative to the image height
        self.frame.setAttributes({"width": spec.size, "height": spec.size, "focalLength": float(focal),
                                  "zRange": list(spec.z_range)})
        self.view = ry.CameraView(self.C, offscreen=True)
        self.view.setCamera(self.frame)

    def release(self) -> None:
        """Destroy the GL view now (before the X server goes away)."""
        self.view = None

    def jitter_pose(self, rng: np.random.Generator) -> None:
        """Move the camera slightly (per episode), as a re-mounted real camera would be."""
        n = self.spec.noise
        pos = np.array(self.spec.position)
        if n.pose_pos_std > 0:
            pos = pos + rng.normal(0, n.pose_pos_std, 3)
        R = rotation(rng.normal(0, n.pose_rot_std, 3)) @ self._R0 if n.pose_rot_std > 0 else self._R0
        self.frame.setPosition(list(pos))
        self.frame.setRotationMatrix(R)
        self.view.setCamera(self.frame)

    def place(self, shift: np.ndarray, rotvec: np.ndarray) -> None:
        """Put the camera at its spec pose moved by `shift` (world frame, m) and turned by the rotation vector
        `rotvec` (world axes, rad): a camera whose extrinsics are off from the calibration a policy was trained with."""
        self.frame.setPosition(list(np.asarray(self.spec.position, float) + np.asarray(shift, float)))
        self.frame.setRotationMatrix(rotation(np.asarray(rotvec, float)) @ self._R0)
        self.view.setCamera(self.frame)

    def render(self, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.view is None:
            raise RuntimeError("camera was released (env closed); create a new env to render again")
        self.C.setFrameState(self.src.getFrameState(), self._src_frames)
        rgb, depth = self.view.computeImageAndDepth(self.C)
        return observation_from_frame(rgb, depth, self.spec, rng)
