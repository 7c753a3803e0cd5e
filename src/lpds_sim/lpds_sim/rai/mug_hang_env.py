"""`lpds_sim/MugHang-v0`: grasp a mug from the table and hang it on a holder peg by its (closed) handle.

Action `[dx, dy, dz, dyaw, gripper]` (yaw is needed: the mug starts at any yaw and must hang with its handle across
the peg). The reward is the shared `PandaTaskEnv` formula with the *handle centre* as the object and the point of
the peg where the handle should end up as the target. Success (`mug_success`): the peg runs through the handle
loop, the mug is off the table and out of the gripper, for `hold_steps` control steps in a row.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import robotic as ry

from .mug_scene import MUG, MUG_HANDLE_CENTRE, MUG_HANDLE_FRAMES, MugScene, axis_angle_quat
from .mug_success import HangTimer, mug_is_hanging
from .panda_env import PandaTaskEnv
from .scene import ROBOT_PREFIX


def _yaw(R: np.ndarray) -> float:
    """Heading of a frame's x axis in the table plane."""
    R = np.asarray(R)
    return float(np.arctan2(R[1, 0], R[0, 0]))


class MugHangEnv(PandaTaskEnv):
    task_name = "mug_hang"
    use_yaw = True
    object_frame = MUG_HANDLE_CENTRE
    held_frames = (MUG, *MUG_HANDLE_FRAMES, MUG_HANDLE_CENTRE)
    home_ee_pos = (0.0, 0.25, 0.95)
    home_yaw = 0.0
    # +-(90 + 20) deg: the hang poses need the gripper at +-90 deg plus whatever the mug turned in the hand
    yaw_limit = np.pi / 2 + 0.35
    # mug start region (x, y of the body centre): in front of and left of the holder, kept >= 20 cm from the post
    object_region = ((-0.25, 0.1), (0.1, 0.35))
    grid_shape = (2, 2)        # 2x2 cells x 5 trials = the 20 mug trials of the grid protocol
    default_max_episode_steps = 200
    mug_yaw_range = (-np.pi, np.pi)  # the handle may point anywhere at the start, as on a real bench
    hold_steps = 10            # 1 s at 10 Hz hanging in a row = success
    contact_margin = 0.002     # mug-table / mug-finger distance that counts as touching
    scene_spec = MugScene()  # replaced per env by the bench profile's (table height, holder place)
    # the D435i faces the robot across the table, centred between the mug region and the holder, so both are in view:
    # the profile's `mug_camera` (default: eye (0.07, 0.9, 1.25) looking at (0.05, 0.28, 0.72); eye x != target x on
    # purpose: a view direction exactly in the y-z plane renders a blank image in RAI 0.4.1). The pick-and-place
    # view would cut the holder off at the image edge.
    bench_camera = "mug_camera"
    # the grasp's yaw as the state's task features: sin, cos of 2(yaw(ee) - yaw(mug)). The operator closes the
    # fingers at +-90 deg to the mug's x axis; read off two quaternions that is a wrapped, nonlinear target the BC
    # base missed by 10-90 deg (15 of 20 grasps failed); doubled, the gripper's half-turn symmetry is built in.
    extra_state_dim = 2

    def __init__(self, *args, **kwargs):
        # PhysX substeps of 10 ms (the base's default too) are required: at 20 ms the closing fingers tunnel into the
        # mug's body (the gripper closes to 5 mm around a 6 cm mug and drops it on the first acceleration).
        kwargs.setdefault("sim_dt", 0.01)
        self._hang_timer = HangTimer(self.hold_steps)
        self.mug_yaw0 = 0.0
        self._pose_override = None
        super().__init__(*args, **kwargs)

    # ---- PandaTaskEnv hooks
    def _extra_state(self) -> np.ndarray:
        d = 2.0 * (_yaw(self._ee.getRotationMatrix()) - _yaw(self.C.getFrame(MUG).getRotationMatrix()))
        return np.array([np.sin(d), np.cos(d)])

    def extra_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return -np.ones(2), np.ones(2)

    def _configure_bench(self, bench) -> None:
        self.scene_spec = MugScene.from_profile(bench, self.scene_spec.mug)

    def _scale_object(self, scale: float) -> None:
        """The mug body (radius, height) `scale` times the emulation's; the handle loop keeps its size (the hole the
        peg passes through is the same mug model)."""
        m = self.scene_spec.mug
        self.scene_spec = dataclasses.replace(self.scene_spec, mug=dataclasses.replace(
            m, radius=m.radius * scale, height=m.height * scale))

    def _build_task(self, C: ry.Config) -> None:
        xy = np.mean(self.object_region, axis=1)
        self.scene_spec.build(C, xy, 0.0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Extra option `mug_pose=(position, quaternion wxyz)` puts the mug at an exact pose (e.g. hung on the peg)."""
        options = dict(options or {})
        self._pose_override = options.pop("mug_pose", None)
        return super().reset(seed=seed, options=options)

    def _place_task(self, C: ry.Config, xy: np.ndarray, rng: np.random.Generator) -> None:
        self.mug_yaw0 = float(rng.uniform(*self.mug_yaw_range))
        pos = [float(xy[0]), float(xy[1]), self.scene_spec.mug_rest_z()]
        quat = axis_angle_quat([0, 0, 1], self.mug_yaw0)
        if self._pose_override is not None:
            pos, quat = (np.asarray(v, float) for v in self._pose_override)
            if pos.shape != (3,) or quat.shape != (4,):
                raise ValueError("options['mug_pose'] must be (position (3,), quaternion wxyz (4,)), got shapes "
                                 f"{pos.shape}, {quat.shape}")
            self.start_xy = pos[:2].copy()
        C.getFrame(MUG).setPosition(list(pos)).setQuaternion(list(quat))
        self._hang_timer.reset()

    def _target_pos(self) -> np.ndarray:
        """Where the handle centre sits when hung: on the peg axis, `insert_depth` of the way from the root."""
        h = self.scene_spec.holder
        return h.root + h.axis * h.insert_depth * h.peg_length

    def _is_success(self) -> bool:
        return self._hang_timer.update(self.mug_hanging_now())

    # ---- mug-specific readers (the operator and the tests use them too)
    def mug_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation matrix of the mug body."""
        f = self.C.getFrame(MUG)
        return f.getPosition().copy(), f.getRotationMatrix().copy()

    def mug_contacts(self) -> tuple[bool, bool]:
        """(touching_table, held): is any mug part within `contact_margin` of the table / of a robot frame?"""
        mug_parts = set(self.held_frames)
        table = held = False
        for a, b, _ in self.C.getCollisions(self.contact_margin):
            if a in mug_parts or b in mug_parts:
                other = b if a in mug_parts else a
                table |= other == "table"
                held |= other.startswith(ROBOT_PREFIX)
        return table, held

    def mug_hanging_now(self) -> bool:
        """The instantaneous hang rule (without the hold time)."""
        pos, R = self.mug_pose()
        touching_table, held = self.mug_contacts()
        return mug_is_hanging(pos, R, self.scene_spec, touching_table=touching_table, held=held)
