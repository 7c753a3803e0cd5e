"""`PandaTaskEnv`: the Gymnasium base class for the RAI Franka Panda tasks (pick-and-place, mug hanging).

One class owns everything the tasks share, so the reward, the action interface and the collision test are the same
for every task and auditable in one place:

* scene: pandaSingle.g table + Panda; subclasses add their objects in `_build_task(C)`.
* physics: RAI PhysX, motor gains raised, position control at `sim_dt` substeps, `control_hz` env steps per second
  (with `coarse_free_motion`, steps where nothing can be squeezed use half as many 2·sim_dt substeps: the gripper is
  open and at rest, or no robot part is within `free_margin` of any other body and the object is at rest).
* action: `a ∈ [-1, 1]^A`, A = 4 `[dx, dy, dz, gripper]` or A = 5 `[dx, dy, dz, dyaw, gripper]` (`use_yaw`).
  Δposition = a[:3] · `max_lin_speed` / `control_hz` metres (world frame), Δyaw = a[3] · `max_yaw_rate` / `control_hz`
  rad; gripper: a[-1] ≥ 0 opens to 0.08 m, a[-1] < 0 closes (grasps). The integrated end-effector target is clipped
  to the workspace box `ee_low..ee_high` and kept within `max_lead` of the measured end effector, then one
  damped-least-squares IK step (`ik.DLSIK`) turns it into a joint position target. The gripper always points down.
* reward: `r = −0.1·‖obj_xy − target_xy‖ − 0.5·collision + 1.0·success`; `info` carries `obj_xy`, `target_xy`,
  `collision`, `success` so anyone can recompute it.
* collision: any robot frame (`l_…`) within `collision_margin` (5 mm) of an environment frame (table, tray, holder, …),
  never counting the manipulated objects (`held_frames`).
* observations: `obs_mode="state"` → flat float32 vector (layout in `state_layout`); `obs_mode="image"` →
  `{"rgb": uint8 (3,S,S), "depth": float32 metres (1,S,S), "proprio": float32 (8,)}` from a fixed D435i-like camera;
  `privileged_state=True` adds `"state"` (the state vector) for training-time critics that the robot never runs.
  Every observation space is bounded (`observation_bounds`): positions by the scene box, quaternions by [-1, 1],
  the gripper width by [0, 0.08] m, rgb by [0, 255], depth by [0, camera far plane]; observations are clipped into
  it, so they always lie inside their space.
* episodes: `reset(seed, options={"cell": (row, col)})` puts the object in a grid cell (seeded jitter), or
  `options={"object_xy": (x, y)}`, or uniformly over `object_region`; success terminates; `max_episode_steps`
  truncates. An unseeded reset restores the PhysX Simulation's initial state (setState + push poses, ~1 ms); a
  seeded reset rebuilds the Simulation, so the same seed and actions give bit-identical observations (see `reset`).
"""
from __future__ import annotations

import dataclasses
import os
import weakref
from collections import deque
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import robotic as ry
from gymnasium import spaces

from lpds_core.bench_profile import BenchProfile, load_profile
from lpds_core.config import to_dict
from lpds_core.errors import RunError

from . import scene
from .camera import CameraSpec, RGBDCamera, SensorNoise
from .cpu_pin import CpuPin, resolve_cpu
from .ik import DLSIK, home_joint_state
from .world import EpisodeDraw, World, draw_bench, draw_episode, episode_rng, resolve_world, world_dict

PROPRIO_DIM = 8  # ee_pos(3) + ee_quat(4, w>=0) + gripper_width(1, total opening in metres)
EE_MARGIN = 0.05  # m: the measured end effector may lag its target (clipped to the workspace box) by this much

# Envs of this process that hold a live PhysX Simulation. RAI's Simulation destructor releases *every* PhysX
# material of the process, also those of other live Simulations (i_Physx.cpp, ~PhysXInterface_self); a Simulation
# that lives through two such releases segfaults when it is destroyed. So a Simulation is only rebuilt when it is
# the only one alive (the grid evaluator, `lpds demos` and every vector-env worker run one env per process).
_LIVE_SIMULATIONS: "weakref.WeakSet[PandaTaskEnv]" = weakref.WeakSet()


def _canon_quat(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return -q if q[0] < 0 else q


class PandaTaskEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    # ---- task configuration: subclasses override these class attributes ----
    task_name: str = "panda"
    use_yaw: bool = False
    object_frame: str = ""                 # frame whose xy enters the reward
    held_frames: tuple[str, ...] = ()      # frames the robot may touch without it counting as a collision
    home_ee_pos: tuple[float, float, float] = (0.05, 0.3, 0.95)
    home_yaw: float = 0.0
    ee_low: tuple[float, float, float] = (-0.45, -0.05, scene.TABLE_TOP_Z - 0.01)
    ee_high: tuple[float, float, float] = (0.45, 0.6, 1.25)
    yaw_limit: float = np.pi / 2
    object_region: tuple[tuple[float, float], tuple[float, float]] = ((-0.05, 0.35), (0.22, 0.42))  # (x, y) ranges
    grid_shape: tuple[int, int] = (2, 4)   # rows along y (away from the robot), cols along x
    cell_jitter: float = 0.6               # jitter inside a cell, as a fraction of the half cell size
    default_max_episode_steps: int = 150
    extra_state_dim: int = 0               # subclasses may append task features to the state vector

    def __init__(self, obs_mode: str = "state", control_hz: float = 10.0, sim_dt: float = 0.01,
                 max_lin_speed: float = 0.3, max_yaw_rate: float = 1.0, max_episode_steps: int | None = None,
                 image_size: int = 84, sensor_noise: bool | SensorNoise = False, camera: CameraSpec | None = None,
                 terminate_on_success: bool = True, collision_margin: float = 0.005, render_mode: str | None = None,
                 coarse_free_motion: bool = True, fast_render: bool = True, free_space_substeps: bool = True,
                 physx_cpu: int | str | None = "auto", privileged_state: bool = False,
                 bench_profile: str | os.PathLike | BenchProfile | None = None,
                 world: str | os.PathLike | World | Mapping | None = None):
        if obs_mode not in ("state", "image"):
            raise ValueError(f"obs_mode must be 'state' or 'image', got {obs_mode!r}")
        if privileged_state and obs_mode != "image":
            raise ValueError("privileged_state adds the state vector to image observations; with obs_mode='state' "
                             "the observation already is the state: drop privileged_state")
        self.privileged_state = bool(privileged_state)
        n_sub = round(1.0 / (control_hz * sim_dt))
        if n_sub < 1 or abs(n_sub * sim_dt * control_hz - 1.0) > 1e-6:
            raise ValueError(f"1/control_hz ({1 / control_hz:.4g} s) must be a whole multiple of sim_dt ({sim_dt} s)")
        self.obs_mode, self.control_hz, self.sim_dt, self.n_substeps = obs_mode, float(control_hz), float(sim_dt), n_sub
        self.max_lin_speed, self.max_yaw_rate = float(max_lin_speed), float(max_yaw_rate)
        self.max_lead = 2.0 * self.max_lin_speed / self.control_hz
        self.max_episode_steps = int(max_episode_steps or self.default_max_episode_steps)
        self.terminate_on_success = terminate_on_success
        self.coarse_free_motion = coarse_free_motion and self.n_substeps % 2 == 0
        self._grip_settled = True
        # coarse substeps also while the gripper moves or is closed, as long as the robot is far from every other body
        # (nothing to squeeze or tunnel through); `free_space_substeps=False` restores the open-and-at-rest-only rule
        self.free_space_substeps = free_space_substeps and self.coarse_free_motion
        self.free_margin = 2.0 * self.max_lead   # > the farthest the end effector can move in one control step
        self._free = False                       # result of the last proximity query (robot far from everything)
        self._grip_dt = self.sim_dt              # substep length the gripper's closing speed was set for
        self._width = scene.GRIPPER_MAX_WIDTH     # gripper width after the last physics step (one RAI call per step)
        self.collision_margin = collision_margin
        # PhysX's worker thread and the thread stepping it share one CPU (see cpu_pin: ~1.8x on an idle VM)
        self.physx_cpu = physx_cpu
        self._pin = CpuPin(None)
        self.render_mode = render_mode
        # bench calibration (table, tray/holder, camera): a lab's YAML profile, or the defaults (today's scene)
        self.bench = load_profile(bench_profile)
        self.bench_profile = None if bench_profile is None or isinstance(bench_profile, BenchProfile) \
            else (str(bench_profile) or None)
        # the world (lpds_sim.rai.world): None = the emulation, today's code path; else a held-out "reality"
        self.world = resolve_world(world)
        self.world_source = None if self.world is None else (
            world_dict(self.world) if isinstance(world, (World, Mapping)) else str(world))
        self._bench_draw = draw_bench(self.world) if self.world is not None else None
        if self._bench_draw is not None and self._bench_draw.table_offset != 0.0:  # the table is not where modelled
            t = self.bench.table
            self.bench = dataclasses.replace(self.bench, table=dataclasses.replace(
                t, table_height=t.table_height + self._bench_draw.table_offset))
        self.table_z = self.bench.table.table_height
        # the workspace floor follows the table (the class attributes are for the default table height)
        self._ee_low = np.array(self.ee_low) + np.array([0.0, 0.0, self.table_z - scene.TABLE_TOP_Z])
        self._ee_high = np.array(self.ee_high)
        self._configure_bench(self.bench)
        if self._bench_draw is not None and self._bench_draw.object_size_scale != 1.0:
            self._scale_object(self._bench_draw.object_size_scale)

        # physics scene
        scene.set_physx_params()
        self.C = scene.panda_config(self.table_z)
        self.C_ik = scene.panda_config(self.table_z)  # private kinematic robot for IK (never simulated)
        self.q_home = home_joint_state(self.C_ik, scene.EE_FRAME, np.array(self.home_ee_pos), self.home_yaw)
        self.ik = DLSIK(self.C_ik, scene.EE_FRAME, self.q_home)
        self._build_task(self.C)
        self.C.setJointState(self.q_home)
        self.S: ry.Simulation | None = None  # created in reset()
        self._frames0: np.ndarray | None = None  # frame state every Simulation is built from (saved at the first)
        self.sim_builds = 0  # Simulations built so far (1 + the seeded resets that rebuilt it)
        self._ee = self.C.getFrame(scene.EE_FRAME)
        self._obj = self.C.getFrame(self.object_frame) if self.object_frame else None
        self._non_env = set(self.held_frames) | {"world"}
        self._lin_step = self.max_lin_speed / self.control_hz

        # camera (image mode, or rgb_array rendering) is created lazily and only after ensure_display()
        self._cam_spec = camera or CameraSpec.from_profile(self.bench, self.bench_camera, size=image_size)
        self._cam_spec.size = image_size
        if sensor_noise is True:
            self._cam_spec.noise = SensorNoise()
        elif isinstance(sensor_noise, SensorNoise):
            self._cam_spec.noise = sensor_noise
        if self.world is not None and self.world.sensor != SensorNoise.off():
            self._cam_spec.noise = dataclasses.replace(self.world.sensor)
        self._camera: RGBDCamera | None = None
        self.fast_render = fast_render
        self._skip_render = False   # see skip_render
        self._images: tuple[np.ndarray, np.ndarray] | None = None  # the last rendered (rgb, depth)
        if obs_mode == "image":
            self._camera = RGBDCamera(self.C, self._cam_spec, fast=fast_render)

        A = 5 if self.use_yaw else 4
        self.action_space = spaces.Box(-1.0, 1.0, (A,), np.float32)
        self.state_layout = self._make_state_layout()
        self._state_low, self._state_high = self.observation_bounds()
        state_space = spaces.Box(self._state_low, self._state_high, dtype=np.float32)
        if obs_mode == "state":
            self.observation_space = state_space
        else:
            S_ = image_size
            p = slice(0, PROPRIO_DIM)  # proprio = the first entries of the state vector (same bounds)
            parts = {
                "rgb": spaces.Box(0, 255, (3, S_, S_), np.uint8),
                "depth": spaces.Box(0.0, np.float32(self._cam_spec.z_range[1]), (1, S_, S_), np.float32),
                "proprio": spaces.Box(self._state_low[p], self._state_high[p], dtype=np.float32),
            }
            if self.privileged_state:
                parts["state"] = state_space
            self.observation_space = spaces.Dict(parts)
        self._steps = 0
        self._grip_open = True
        self._tgt_pos = np.array(self.home_ee_pos, dtype=float)
        self._tgt_yaw = float(self.home_yaw)
        self._prev_obj_pos = np.zeros(3)
        self._obj_speed = 0.0
        self.cell: tuple[int, int] | None = None
        self.start_xy = np.zeros(2)
        # world state: this episode's draw, the physics the Simulation was built with, the delayed commands
        self._world_running = np.random.default_rng(self.world.world_seed) if self.world is not None else None
        self.world_episode: EpisodeDraw | None = None
        self._world_steps: np.random.Generator | None = None
        self._sim_physics: tuple[float, float, float] | None = None
        self._body_mass0: dict[str, float] = {}
        self._cmd_queue: deque | None = None
        self._grip_pending: bool | None = None
        self._grip_wait = 0

    def settings(self) -> dict[str, Any]:
        """Everything needed to rebuild this env and interpret its data (stored with demos and eval results)."""
        return {
            "task": self.task_name, "env_class": f"{type(self).__module__}:{type(self).__name__}",
            "env_kwargs": {"obs_mode": self.obs_mode, "control_hz": self.control_hz, "sim_dt": self.sim_dt,
                           "max_lin_speed": self.max_lin_speed, "max_yaw_rate": self.max_yaw_rate,
                           "max_episode_steps": self.max_episode_steps, "image_size": self._cam_spec.size,
                           "sensor_noise": self._cam_spec.noise.rgb_std > 0 or self._cam_spec.noise.hole_frac > 0,
                           "terminate_on_success": self.terminate_on_success,
                           "collision_margin": self.collision_margin,
                           "coarse_free_motion": self.coarse_free_motion, "fast_render": self.fast_render,
                           "free_space_substeps": self.free_space_substeps, "physx_cpu": self.physx_cpu,
                           "privileged_state": self.privileged_state, "bench_profile": self.bench_profile,
                           **({"world": self.world_source} if self.world is not None else {})},
            "action": {"dim": int(self.action_space.shape[0]),
                       "names": ["dx", "dy", "dz", "dyaw", "gripper"] if self.use_yaw else ["dx", "dy", "dz", "gripper"],
                       "low": -1.0, "high": 1.0, "pos_step_m": self.max_lin_speed / self.control_hz,
                       "yaw_step_rad": self.max_yaw_rate / self.control_hz if self.use_yaw else 0.0,
                       "gripper": "a>=0 open (0.08 m), a<0 close", "frame": "world"},
            "state_layout": {k: [v.start, v.stop] for k, v in self.state_layout.items()},
            "proprio": ["ee_pos(3)", "ee_quat_wxyz(4)", "gripper_width_m(1)"],
            "camera": {"position": list(self._cam_spec.position), "quat_xyzw": list(self._cam_spec.quat_xyzw),
                       "vfov_deg": self._cam_spec.vfov_deg, "size": self._cam_spec.size},
            "bench": to_dict(self.bench),
            **({"world": world_dict(self.world)} if self.world is not None else {}),
            "reward": "-0.1*||obj_xy-target_xy|| - 0.5*collision + 1.0*success",
        }

    # ------------------------------------------------------------------ task hooks
    bench_camera: str = "camera"           # which camera of the bench profile this task's images come from

    def _configure_bench(self, bench: BenchProfile) -> None:
        """Take the task's geometry (tray, holder, ...) from the bench profile; runs before the scene is built."""

    def _scale_object(self, scale: float) -> None:
        """Make the task's object `scale` times its size (a world's `object_size_scale`); runs before the scene is
        built."""
        raise NotImplementedError(f"{self.task_name}: object_size_scale is not supported by this task")

    def _build_task(self, C: ry.Config) -> None:
        """Add task objects (dynamic: root frame + mass; static: child of 'table') to the scene."""
        raise NotImplementedError

    def _place_task(self, C: ry.Config, xy: np.ndarray, rng: np.random.Generator) -> None:
        """Put the task's movable objects at their start pose for an object start position `xy` (world x, y)."""
        raise NotImplementedError

    def _target_pos(self) -> np.ndarray:
        """World position of the goal; its xy enters the reward."""
        raise NotImplementedError

    def _is_success(self) -> bool:
        raise NotImplementedError

    def _extra_state(self) -> np.ndarray:
        """Task features appended to the state vector (length `extra_state_dim`)."""
        return np.zeros(0)

    # ------------------------------------------------------------------ layout helpers
    def _make_state_layout(self) -> dict[str, slice]:
        sizes = [("ee_pos", 3), ("ee_quat", 4), ("gripper_width", 1), ("obj_pos", 3), ("obj_quat", 4),
                 ("target_pos", 3)]
        if self.extra_state_dim:
            sizes.append(("extra", self.extra_state_dim))
        layout, i = {}, 0
        for name, n in sizes:
            layout[name] = slice(i, i + n)
            i += n
        return layout

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) float32 of the state vector: what every entry can physically be.

        End effector: the workspace box (`ee_low..ee_high`, where its target is clipped) widened by `EE_MARGIN`;
        object and target: the scene box (`scene.SCENE_LOW..SCENE_HIGH`); quaternions: [-1, 1]; gripper width:
        [0, 0.08] m; task extras: unbounded unless a subclass narrows them (`extra_bounds`)."""
        lo, hi = {}, {}
        lo["ee_pos"], hi["ee_pos"] = self._ee_low - EE_MARGIN, self._ee_high + EE_MARGIN
        lo["gripper_width"], hi["gripper_width"] = np.zeros(1), np.full(1, scene.GRIPPER_MAX_WIDTH)
        for k in ("obj_pos", "target_pos"):
            lo[k], hi[k] = np.array(scene.SCENE_LOW), np.array(scene.SCENE_HIGH)
        for k in ("ee_quat", "obj_quat"):
            lo[k], hi[k] = -np.ones(4), np.ones(4)
        if self.extra_state_dim:
            lo["extra"], hi["extra"] = self.extra_bounds()
        n = max(sl.stop for sl in self.state_layout.values())
        low, high = np.empty(n, np.float32), np.empty(n, np.float32)
        for k, sl in self.state_layout.items():
            low[sl], high[sl] = lo[k], hi[k]
        return low, high

    def extra_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the task features (`_extra_state`); unbounded by default."""
        return np.full(self.extra_state_dim, -np.inf), np.full(self.extra_state_dim, np.inf)

    def cell_bounds(self, row: int, col: int, grid: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(low_xy, high_xy) of a grid cell over `object_region`; rows run along y, cols along x."""
        rows, cols = grid or self.grid_shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise ValueError(f"cell ({row}, {col}) is outside the {rows}x{cols} grid")
        (x0, x1), (y0, y1) = self.object_region
        dx, dy = (x1 - x0) / cols, (y1 - y0) / rows
        lo = np.array([x0 + col * dx, y0 + row * dy])
        return lo, lo + np.array([dx, dy])

    def _sample_object_xy(self, options: dict) -> np.ndarray:
        rng = self.np_random
        if "object_xy" in options:
            self.cell = None
            return np.asarray(options["object_xy"], dtype=float)
        if "cell" in options and options["cell"] is not None:
            row, col = (int(v) for v in options["cell"])
            lo, hi = self.cell_bounds(row, col, options.get("grid"))
            c, half = (lo + hi) / 2, (hi - lo) / 2
            self.cell = (row, col)
            return c + rng.uniform(-1, 1, 2) * half * self.cell_jitter
        self.cell = None
        (x0, x1), (y0, y1) = self.object_region
        return np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        xy = self._sample_object_xy(options)
        self.start_xy = np.asarray(xy, dtype=float).copy()
        # An unseeded reset restores the Simulation's initial state and pushes the new object poses (~1 ms), but
        # PhysX keeps contact and solver warm-start data (and RAI the gripper reference) through setState, so repeated
        # episodes drift apart by 1e-7..1e-3. A seeded reset rebuilds the Simulation from the scene as built, so the
        # same seed and actions give bit-identical observations across resets and env instances. It is skipped
        # while another env of this process holds a Simulation (see _LIVE_SIMULATIONS): then the reset is the
        # unseeded one, and repeatable only to ~1e-3.
        rebuild = False
        if self.world is not None:
            self.world_episode = draw_episode(self.world, seed, self._world_running)
            self._world_steps = episode_rng(self.world, seed, self._world_running)
            rebuild = self.S is not None and self.world_episode.physics() != self._sim_physics
            if rebuild and not self._only_live_simulation():
                raise RunError(f"{self.task_name}: world {self.world.world_name!r} draws new object/controller "
                                   "physics per episode, which needs a new PhysX Simulation, but another env of this "
                                   "process holds one (RAI cannot rebuild then): run one env per process, or fix "
                                   "object_mass_scale, object_friction and controller_gain_scale (lo = hi)")
        if self.S is None or rebuild or (seed is not None and self._only_live_simulation()):
            self._new_simulation()
        self.S.setState(self._st0)
        self.S.resetSplineRef()
        self.C.setJointState(self.q_home)
        self._place_task(self.C, xy, self.np_random)
        self.S.pushConfigToSim()
        self.S.moveGripper(scene.EE_FRAME, scene.GRIPPER_MAX_WIDTH, 1.0)
        self._grip_open = True
        self._grip_settled = True
        self._grip_dt = self.sim_dt
        with self._pin:
            for _ in range(200):  # let the gripper open and objects settle, holding the home pose
                self.S.step(self.q_home, self.sim_dt, ry.ControlMode.position)
                if self.S.gripperIsDone(scene.EE_FRAME):
                    break
            for _ in range(3):
                self.S.step(self.q_home, self.sim_dt, ry.ControlMode.position)
        self._tgt_pos = self._ee.getPosition().copy()
        self._tgt_yaw = float(self.home_yaw)
        self._steps = 0
        self._prev_obj_pos = self._obj_frame().getPosition().copy()
        self._obj_speed = 0.0
        self._width = self.gripper_width()
        self._contacts()  # sets `_free` for the first step
        if self.world is not None:
            self._reset_world_episode()
        elif self._camera is not None and self._cam_spec.noise.pose_pos_std + self._cam_spec.noise.pose_rot_std > 0:
            self._camera.jitter_pose(self.np_random)
        return self._obs(), self._info(collision=False, success=False)

    def _reset_world_episode(self) -> None:
        """The episode's draw where it acts after the reset: the camera's pose, the command queue, the gripper."""
        ep = self.world_episode
        if self._camera is not None:
            n = self._cam_spec.noise  # a world's own pose jitter adds to its extrinsics error
            shift = ep.camera_shift + (self.np_random.normal(0, n.pose_pos_std, 3) if n.pose_pos_std > 0 else 0.0)
            rot = ep.camera_rotvec + (self.np_random.normal(0, n.pose_rot_std, 3) if n.pose_rot_std > 0 else 0.0)
            self._camera.place(shift, rot)
        hold = np.zeros(self.action_space.shape, np.float64)
        hold[-1] = 1.0  # the gripper is open after a reset
        self._cmd_queue = deque([hold] * ep.command_latency) if ep.command_latency > 0 else None
        self._grip_pending, self._grip_wait = None, 0

    def _world_gripper(self, want_open: bool) -> bool:
        """The gripper command the hardware acts on now: a change of command waits the world's close/open delay
        (a command flipped back while waiting is dropped)."""
        if want_open == self._grip_open:
            self._grip_pending = None
            return want_open
        if self._grip_pending != want_open:
            self._grip_pending = want_open
            ep = self.world_episode
            self._grip_wait = ep.gripper_open_delay if want_open else ep.gripper_close_delay
        if self._grip_wait <= 0:
            self._grip_pending = None
            return want_open
        self._grip_wait -= 1
        return self._grip_open

    def _only_live_simulation(self) -> bool:
        return all(e is self for e in _LIVE_SIMULATIONS)

    def _new_simulation(self) -> None:
        """(Re)create the PhysX Simulation from the scene as `_build_task` left it (saved at the first call)."""
        if self._frames0 is None:
            self.C.setJointState(self.q_home)
            self._frames0 = self.C.getFrameState()
            self._pin = CpuPin(resolve_cpu(self.physx_cpu))
        else:
            self.C.setFrameState(self._frames0)
        self._drop_simulation()
        if self.world is not None:
            self._apply_world_physics()
        with self._pin:  # PhysX's worker thread starts here and inherits the pinned CPU
            self.S = ry.Simulation(self.C, ry.SimulationEngine.physx, verbose=0)  # verbose=0: never open a window
        if self.world is not None:
            scene.set_physx_params()  # the gains are process-global: the next Simulation starts from the nominal
        _LIVE_SIMULATIONS.add(self)
        self.sim_builds += 1
        self._st0 = self.S.getState()

    def _apply_world_physics(self) -> None:
        """Object mass and friction and the controller gain of this episode's draw, set where PhysX reads them when
        the Simulation is built (frame attributes; the process-global motor gain)."""
        ep = self.world_episode or draw_episode(self.world, 0)
        frames = [self.C.getFrame(n) for n in self.held_frames]
        if not self._body_mass0:
            self._body_mass0 = {f.name: float(f.getMass()) for f in frames if f.getMass() > 0}
        for f in frames:
            if f.name in self._body_mass0:
                f.setMass(self._body_mass0[f.name] * ep.object_mass_scale)
            f.setAttributes({"friction": float(ep.object_friction)})
        ry.params_add({**scene.PHYSX_PARAMS,
                       "physx/motorKp": scene.PHYSX_PARAMS["physx/motorKp"] * ep.controller_gain_scale})
        self._sim_physics = ep.physics()

    def _drop_simulation(self) -> None:
        """Free the PhysX Simulation now, at a known point (one freed later by the cycle collector segfaulted)."""
        self.S = None
        _LIVE_SIMULATIONS.discard(self)

    def validate_action(self, action: Any) -> np.ndarray:
        """Shape and finiteness check with a message that says what to fix; returns the clipped action."""
        a = np.asarray(action, dtype=np.float64)
        shape = self.action_space.shape
        if a.shape != shape:
            names = "[dx, dy, dz, dyaw, gripper]" if self.use_yaw else "[dx, dy, dz, gripper]"
            raise ValueError(f"{self.task_name}: action has shape {a.shape}, expected {shape} = {names} in [-1, 1] "
                             "(one action per step; for an action chunk, step its rows one by one)")
        if not np.isfinite(a).all():
            raise ValueError(f"{self.task_name}: action contains NaN or inf: {a.tolist()}; the policy produced a "
                             "non-finite output (check its inputs/normalisation); the robot was not moved")
        return np.minimum(np.maximum(a, -1.0), 1.0)  # = np.clip, without its dispatch overhead

    def step(self, action):
        a = self.validate_action(action)
        if self._cmd_queue is not None:  # the world's command latency: this step executes an older action
            self._cmd_queue.append(a)
            a = self._cmd_queue.popleft()
        ee = self._ee.getPosition()
        tgt = np.minimum(np.maximum(self._tgt_pos + a[:3] * self._lin_step, self._ee_low), self._ee_high)
        lead = tgt - ee
        n = np.sqrt(lead @ lead)
        if n > self.max_lead:  # no wind-up when the arm is blocked (e.g. pressed into the table)
            tgt = ee + lead * (self.max_lead / n)
        self._tgt_pos = tgt
        if self.use_yaw:
            self._tgt_yaw = float(np.clip(self._tgt_yaw + a[3] * self.max_yaw_rate / self.control_hz,
                                          -self.yaw_limit, self.yaw_limit))
        want_open = bool(a[-1] >= 0.0)
        if self.world is not None:
            want_open = self._world_gripper(want_open)
        grip_changed = want_open != self._grip_open
        if grip_changed:
            self._grip_open = want_open
            self._grip_settled = False
        q_cmd = self.ik.solve(self.S.get_q(), tgt, self._tgt_yaw)
        n, dt = self._substeps()
        if grip_changed or (not self._grip_settled and dt != self._grip_dt):
            # RAI caps the finger reference change per *substep* (0.01·speed), so the speed is rescaled for coarse
            # substeps to keep the gripper closing/opening at the same rate in time
            scale = 1.0 if dt == self.sim_dt else self.coarse_gripper_speed_scale
            self.S.moveGripper(scene.EE_FRAME, scene.GRIPPER_MAX_WIDTH if want_open else 0.0,
                               self.gripper_speed * scale)
            self._grip_dt = dt
        with self._pin:
            for _ in range(n):
                self.S.step(q_cmd, dt, ry.ControlMode.position)
        self._width = self.gripper_width()
        self._grip_settled = self._grip_open and self._width > scene.GRIPPER_MAX_WIDTH - 0.004
        self._steps += 1
        p = self._obj.getPosition()
        d = p - self._prev_obj_pos
        self._obj_speed = float(np.sqrt(d @ d) * self.control_hz)
        self._prev_obj_pos = p.copy()
        collision = self._contacts()
        success = bool(self._is_success())
        info = self._info(collision, success)
        d = info["obj_xy"] - info["target_xy"]
        reward = -0.1 * float(np.sqrt(d @ d)) - 0.5 * collision + 1.0 * success
        terminated = success and self.terminate_on_success
        truncated = self._steps >= self.max_episode_steps and not terminated
        return self._obs(render=not self._skip_render or terminated or truncated), reward, terminated, truncated, info

    def skip_render(self, on: bool) -> None:
        """While on, a step that does not end the episode returns the last rendered camera images (proprio and
        state stay current) instead of rendering new ones, ~10 ms each: what a chunk policy never reads between
        its replans (`lpds_core.chunking.render_skipper` sets it; reset and an episode's last step always render)."""
        self._skip_render = bool(on)

    gripper_speed: float = 0.3    # moveGripper speed at sim_dt substeps (RAI units: 0.01·speed per substep)
    free_obj_speed: float = 0.02  # m/s: the object counts as at rest below this (free-space substeps)
    # gripper speed factor at 2·sim_dt substeps, calibrated so the width seen after each control step matches the
    # sim_dt substeps (within 1.4 mm over a close/open cycle); the nominal 2x overshoots by 13 mm because the finger
    # drive lags its reference by about one substep, which is a shorter time at sim_dt
    coarse_gripper_speed_scale: float = 1.5

    def _substeps(self) -> tuple[int, float]:
        """(number, length) of PhysX substeps for the next control step.

        Fine (`sim_dt`) whenever something may be squeezed: closing or holding at 2·sim_dt lets the finger drive
        tunnel through the object. Coarse (half as many 2·sim_dt substeps) when the gripper is open and at rest, or
        when the last proximity query found no robot part within `free_margin` of any other body and the object is
        at rest (the arm then only tracks its joint targets, which 2·sim_dt does to a few mm)."""
        if self.coarse_free_motion and ((self._grip_open and self._grip_settled) or (
                self.free_space_substeps and self._free and self._obj_speed < self.free_obj_speed)):
            return self.n_substeps // 2, self.sim_dt * 2
        return self.n_substeps, self.sim_dt

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._camera is None:
            self._camera = RGBDCamera(self.C, self._cam_spec, fast=self.fast_render)
        rgb, _ = self._camera.render(None)
        return rgb.transpose(1, 2, 0)

    def close(self):
        if self._camera is not None:
            self._camera.release()
        self._camera = None
        # Free the PhysX simulation now, at a known point: an env freed later by the cycle collector
        # (e.g. one an operator closure keeps in a reference cycle) segfaulted inside RAI. RAI bug, not ours to
        # fix here: a Simulation survives one other Simulation's destruction during its life, not two (see
        # _LIVE_SIMULATIONS), so a long-lived env must not outlive two closed envs that had reset.
        self._drop_simulation()

    # ------------------------------------------------------------------ state readers
    def _obj_frame(self) -> ry.Frame:
        return self._obj

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self._ee.getPosition().copy(), _canon_quat(self._ee.getQuaternion())

    def ee_yaw(self) -> float:
        R = self._ee.getRotationMatrix()
        return float(np.arctan2(R[1, 0], R[0, 0]))

    def gripper_width(self) -> float:
        return 2.0 * float(self.S.getGripperWidth(scene.EE_FRAME))  # RAI returns one finger

    @property
    def gripper_open_cmd(self) -> bool:
        return self._grip_open

    @property
    def ee_target(self) -> np.ndarray:
        """The commanded (integrated) end-effector position target, world frame. With a world's command latency:
        the target once the actions still in flight have arrived (what a teleoperator's leader device shows; the
        arm is driven towards `executed_ee_target` meanwhile)."""
        if self._cmd_queue is None:
            return self._tgt_pos.copy()
        return self._sent_targets()[0]

    @property
    def ee_target_yaw(self) -> float:
        if self._cmd_queue is None or not self.use_yaw:
            return float(self._tgt_yaw)
        return self._sent_targets()[1]

    @property
    def executed_ee_target(self) -> np.ndarray:
        """The end-effector target the arm is driven towards now (= `ee_target` without command latency)."""
        return self._tgt_pos.copy()

    def _sent_targets(self) -> tuple[np.ndarray, float]:
        tgt, yaw = self._tgt_pos.copy(), float(self._tgt_yaw)
        for a in self._cmd_queue:
            tgt = np.minimum(np.maximum(tgt + a[:3] * self._lin_step, self._ee_low), self._ee_high)
            if self.use_yaw:
                yaw = float(np.clip(yaw + a[3] * self.max_yaw_rate / self.control_hz, -self.yaw_limit,
                                    self.yaw_limit))
        return tgt, yaw

    def _proprio(self) -> np.ndarray:
        """Called right after a physics step or reset, so the width read there (`_width`) is current."""
        pos, quat = self.ee_pose()
        p = np.concatenate([pos, quat, [self._width]]).astype(np.float32)
        return np.minimum(np.maximum(p, self._state_low[:PROPRIO_DIM]), self._state_high[:PROPRIO_DIM])

    def _state(self) -> np.ndarray:
        f = self._obj_frame()
        parts = [self._proprio(), f.getPosition(), _canon_quat(f.getQuaternion()), self._target_pos()]
        if self.extra_state_dim:
            parts.append(self._extra_state())
        # inside the observation space by construction (a flung object or a lagging arm must not leave it)
        return np.minimum(np.maximum(np.concatenate(parts).astype(np.float32), self._state_low), self._state_high)

    def _obs(self, render: bool = True):
        if self.obs_mode == "state":
            return self._state() if self.world is None else self._world_state()
        if render or self._images is None:
            self._images = self._camera.render(self.np_random)
        # new arrays every step, as Gymnasium asks: a caller may keep or modify what it got
        rgb, depth = (x.copy() for x in self._images)
        obs = {"rgb": rgb, "depth": depth, "proprio": self._proprio()}
        if self.privileged_state:
            obs["state"] = self._state()
        return obs

    def _world_state(self) -> np.ndarray:
        """The state vector with the object position as the bench estimates it: on a bench it comes from the
        camera, so it is where the camera with this episode's extrinsics error puts the object, plus per-step noise
        (the world's obj_pos_noise_mm)."""
        s = self._state()
        ep = self.world_episode
        moved = ep is not None and (ep.camera_shift.any() or ep.camera_rotvec.any())
        if ep is None or (not moved and ep.obj_pos_noise == 0.0):
            return s
        sl = self.state_layout["obj_pos"]
        p = s[sl].astype(np.float64)
        if moved:
            p = ep.estimated(p, np.asarray(self._cam_spec.position))
        if ep.obj_pos_noise > 0:
            p = p + self._world_steps.normal(0.0, ep.obj_pos_noise, 3)
        s[sl] = p.astype(np.float32)
        return np.minimum(np.maximum(s, self._state_low), self._state_high)

    def _collision(self) -> bool:
        """Robot frame within `collision_margin` of an environment frame (held objects excluded)."""
        for a, b, _ in self.C.getCollisions(self.collision_margin):
            ra, rb = a.startswith(scene.ROBOT_PREFIX), b.startswith(scene.ROBOT_PREFIX)
            if ra != rb and (b if ra else a) not in self._non_env:
                return True
        return False

    def _contacts(self) -> bool:
        """`_collision()` and, from the same query, whether the robot is far from every other body (`_free`).

        One `getCollisions` call with the larger margin returns every pair the collision margin would, with the
        same signed distances, so the collision flag is unchanged."""
        if not self.free_space_substeps:
            self._free = False
            return self._collision()
        prefix, cm, free, collision = scene.ROBOT_PREFIX, self.collision_margin, True, False
        for a, b, dist in self.C.getCollisions(max(self.free_margin, cm)):
            ra, rb = a.startswith(prefix), b.startswith(prefix)
            if ra != rb:
                free = False
                if dist < cm and (b if ra else a) not in self._non_env:
                    collision = True
                    break
        self._free = free
        return collision

    def _info(self, collision: bool, success: bool) -> dict:
        return {"obj_xy": self._obj_frame().getPosition()[:2].copy(), "target_xy": self._target_pos()[:2].copy(),
                "collision": bool(collision), "success": bool(success), "cell": self.cell}
