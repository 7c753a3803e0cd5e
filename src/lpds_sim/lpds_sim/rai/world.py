"""The world an RAI task runs in: the nominal emulation (today's scene) or a held-out "reality" that differs from it
the way a real bench differs from its model.

Why: on the real bench the base policy fails from execution errors and sensor noise, not only from its own sampling
noise; a simulation where demos, training and grading share one scene cannot show that. A `World` names each way
the bench differs — camera extrinsics, RealSense depth noise and holes, the object's mass / friction / size, the
controller's gain and latency, the gripper's timing, the table height, the object-pose estimate a state policy
reads — as one setting with a default (= the emulation) and a one-line doc. Demos are recorded and policies are
graded in it; steering trains in the emulation, or in `randomised` (the emulation with domain randomisation).

Ranges: every drawn setting is a `[lo, hi]` pair; lo = hi is a fixed value. *Bench* settings (`table_offset_mm`,
`object_size_scale`: the scene is built with them) are drawn once per env from `world_seed`; all the others are
drawn per episode, from (world_seed, the reset's seed) for a seeded reset (so the same grid trial sees the same
reality in every run, whatever ran before) and from a running generator for unseeded resets. The draws of each
setting come from their own stream, so a setting takes the same value per episode whether it is on alone or with
the others (what `bench/reality_gaps.py` relies on).

`World()` (all defaults) is the emulation; `resolve_world` turns it into None so the env runs exactly today's
code path. Presets: `WORLDS` (`config/worlds/*.yaml` are written copies; a test keeps them equal). numpy only: the
CLI reads this schema to build its `--world` flag without importing the simulator.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lpds_core.bench_profile import profile_yaml
from lpds_core.config import build, doc_of, nested, read_yaml, setting, to_dict
from lpds_core.errors import ConfigError

from .sensor_noise import SensorNoise

EMULATION = "emulation"


@dataclass
class World:
    """How the bench differs from the nominal emulation (the defaults: it does not)."""
    world_name: str = setting(EMULATION, "what world this is (recorded with demos and grid results)")
    world_seed: int = setting(0, "seed of the world's draws (per env: bench settings; per episode: the rest)",
                              min=0)
    # camera (image observations)
    camera_shift_mm: tuple[float, float] = setting(
        (0.0, 0.0), "camera position error, mm: its length drawn per episode from [lo, hi], its direction uniform",
        min=0.0)
    camera_tilt_deg: tuple[float, float] = setting(
        (0.0, 0.0), "camera rotation error, degrees about a uniformly drawn axis, drawn per episode from [lo, hi]",
        min=0.0, max=45.0)
    sensor: SensorNoise = nested(SensorNoise, "RealSense-like noise on every image frame (all zero: the env's "
                                 "sensor_noise setting applies)", rgb_std=0.0, depth_std_per_m2=0.0, hole_frac=0.0,
                                 pose_pos_std=0.0, pose_rot_std=0.0, edge_hole_frac=0.0)
    # object-pose estimate (state observations: on a bench it comes from the camera, so the camera's extrinsics
    # error above moves it too, by where the miscalibrated camera puts the object)
    obj_pos_noise_mm: tuple[float, float] = setting(
        (0.0, 0.0), "per-step Gaussian noise std on the observed object position, mm, drawn per episode", min=0.0)
    # the object
    object_mass_scale: tuple[float, float] = setting((1.0, 1.0), "object mass / the emulation's, drawn per "
                                                     "episode (cube 0.1 kg, mug 0.2 kg)", above=0.0)
    object_friction: tuple[float, float] = setting((1.0, 1.0), "friction coefficient of the object's surfaces "
                                                   "(PhysX; the emulation's default 1), drawn per episode", above=0.0)
    object_size_scale: tuple[float, float] = setting((1.0, 1.0), "object size / the emulation's (cube edge 5 cm; "
                                                     "mug body radius and height), drawn once per env", above=0.0)
    # the controller
    controller_gain_scale: tuple[float, float] = setting(
        (1.0, 1.0), "joint position-controller stiffness / the emulation's (PhysX motorKp 1e4; damping kept), drawn "
        "per episode: lower = the arm lags its targets", above=0.0)
    command_latency_steps: tuple[int, int] = setting(
        (0, 0), "control steps between an action and its execution (0.1 s each at 10 Hz), drawn per episode", min=0)
    gripper_close_delay_steps: tuple[int, int] = setting(
        (0, 0), "extra control steps before the gripper starts closing after a close command, per episode", min=0)
    gripper_open_delay_steps: tuple[int, int] = setting(
        (0, 0), "extra control steps before the gripper starts opening after an open command, per episode", min=0)
    # the table
    table_offset_mm: tuple[float, float] = setting(
        (0.0, 0.0), "table top height / the model's, mm (tray, holder and objects move with it; the robot does "
        "not), drawn once per env", min=-100.0, max=100.0)

    def check(self) -> "World":
        for path, value in _range_values(self):
            if value[0] > value[1]:
                raise ConfigError(f"world {self.world_name}: {path} must be [lo, hi] with lo <= hi, got "
                                  f"{list(value)}")
        return self

    @property
    def nominal(self) -> bool:
        """Nothing differs from the emulation (name and seed aside)."""
        return dataclasses.replace(self, world_name=EMULATION, world_seed=0) == World()


def draws_physics(world: World) -> bool:
    """Whether the world draws the PhysX build settings (object mass/friction, controller gain) per episode: its
    envs then rebuild their Simulation on reset, which RAI allows only with one env per process."""
    return any(lo != hi for lo, hi in (world.object_mass_scale, world.object_friction, world.controller_gain_scale))


def per_env(world: World, index: int) -> World:
    """The world of training env `index`: its own world seed, so envs draw their own bench (table, size) and their
    own per-episode stream (an unseeded reset draws from a generator seeded by the world seed)."""
    return dataclasses.replace(world, world_seed=world.world_seed + index)


def _range_values(world: World) -> list[tuple[str, tuple]]:
    return [(f.name, getattr(world, f.name)) for f in fields(world)
            if isinstance(getattr(world, f.name), tuple) and len(getattr(world, f.name)) == 2]


# ---------------------------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------------------------
def reality() -> World:
    """The held-out reality: magnitudes of a carefully set-up Franka + D435i bench (docs/reality.md says why each),
    chosen so that the scripted operator, who corrects what it sees like the person teleoperating, still succeeds
    on ≥ 90 % of the pick-and-place grid, while an open-loop-ish policy feels every gap."""
    return World(
        world_name="reality", world_seed=0,
        camera_shift_mm=(3.0, 8.0), camera_tilt_deg=(0.5, 1.5),
        sensor=SensorNoise(rgb_std=3.0, depth_std_per_m2=0.004, hole_frac=0.02, pose_pos_std=0.0,
                           pose_rot_std=0.0, edge_hole_frac=0.5),
        obj_pos_noise_mm=(1.0, 2.0),
        object_mass_scale=(1.0, 1.5), object_friction=(0.4, 0.8), object_size_scale=(0.94, 1.0),
        controller_gain_scale=(0.07, 0.2), command_latency_steps=(1, 2),
        gripper_close_delay_steps=(1, 2), gripper_open_delay_steps=(0, 1), table_offset_mm=(-8.0, -8.0))


def randomised() -> World:
    """The emulation with its dynamics and state estimate randomised, for steering (domain randomisation): LP-DS's
    critic otherwise scores chunks on the stiff, prompt emulated arm, while a base fitted to bench demos has learned
    the bench's lag. Each range holds the nominal emulation (no latency, the nominal object and table) and a soft,
    late bench, and is wider than the reality preset's on every side, as a user who knows their bench only roughly
    would set it; it is not reality's draws (those stay held out: other ranges, other seeds). The controller gain
    alone leaves out the emulation's stiff PD (1): it spans soft impedance controllers up to half that stiffness,
    because a real Franka never runs the stiff PD that leads its targets."""
    return World(
        world_name="randomised", world_seed=0,
        camera_shift_mm=(0.0, 10.0), camera_tilt_deg=(0.0, 2.0), obj_pos_noise_mm=(0.0, 3.0),
        object_mass_scale=(0.8, 2.0), object_friction=(0.3, 1.0), object_size_scale=(0.9, 1.05),
        controller_gain_scale=(0.05, 0.5), command_latency_steps=(0, 3),
        gripper_close_delay_steps=(0, 3), gripper_open_delay_steps=(0, 2), table_offset_mm=(-15.0, 15.0))


WORLDS = {EMULATION: World, "reality": reality, "randomised": randomised}  # name -> preset; config/worlds/<name>.yaml is its written copy


def resolve_world(source: "str | os.PathLike | World | Mapping | None") -> World | None:
    """A preset name, a world YAML file, or a World -> the World, checked; None (also for every nominal world, e.g.
    'emulation') means the emulation: the env then runs today's code path unchanged."""
    if source is None or (isinstance(source, str) and source in ("", EMULATION)):
        return None
    if isinstance(source, World):
        world = dataclasses.replace(source)
        world.check()
    elif isinstance(source, Mapping):  # a world recorded with demos / results (settings())
        world = build(World, source, where="world")
    elif str(source) in WORLDS:
        world = WORLDS[str(source)]()
    elif str(source).endswith((".yaml", ".yml")):
        world = build(World, read_yaml(source), where=f"world file {source}")
    else:
        raise ConfigError(f"unknown world {str(source)!r}; choose {', '.join(WORLDS)} or a world YAML file "
                          f"(see config/worlds/reality.yaml)")
    return None if world.nominal else world


def world_label(source: "str | os.PathLike | World | None") -> str:
    """The name a grid result records for the world it was graded in."""
    world = resolve_world(source)
    return EMULATION if world is None else world.world_name


def world_yaml(world: World, header: str = "") -> str:
    """A world as commented YAML (each key with its one-line doc) that `resolve_world` reads back to the same
    numbers: the bench profile's writer, which writes any config of one nesting level."""
    return profile_yaml(world, header)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# draws
# ---------------------------------------------------------------------------------------------------------------
_BENCH_STREAM = 0xBE4C7  # stream ids: one per setting, so a setting's draw never depends on the others


def _stream(world: World, episode: int | None, name: str, running: np.random.Generator | None
            ) -> np.random.Generator:
    tag = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % (2 ** 63)
    if episode is None:  # unseeded reset: the env's running generator gives a fresh seed per setting
        assert running is not None
        return np.random.default_rng([int(running.integers(2 ** 63)), tag])
    return np.random.default_rng([world.world_seed, int(episode) % (2 ** 63), tag])


def episode_rng(world: World, seed: int | None, running: np.random.Generator | None = None) -> np.random.Generator:
    """The generator of an episode's per-step draws (observation noise), seeded like its settings."""
    return _stream(world, seed, "steps", running)


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def _integer(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
    lo, hi = lo_hi
    return int(lo) if lo == hi else int(rng.integers(lo, hi + 1))


def rotation(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (Rodrigues)."""
    rotvec = np.asarray(rotvec, float)
    th = float(np.linalg.norm(rotvec))
    if th < 1e-12:
        return np.eye(3)
    k = rotvec / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def _unit(rng: np.random.Generator, dims: int = 3) -> np.ndarray:
    v = rng.normal(size=dims)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class BenchDraw:
    """The settings the scene is built with (one per env)."""
    table_offset: float = 0.0       # m
    object_size_scale: float = 1.0


def draw_bench(world: World) -> BenchDraw:
    return BenchDraw(
        table_offset=_uniform(_stream(world, _BENCH_STREAM, "table", None), world.table_offset_mm) / 1000.0,
        object_size_scale=_uniform(_stream(world, _BENCH_STREAM, "size", None), world.object_size_scale))


@dataclass(frozen=True)
class EpisodeDraw:
    """The settings of one episode (metres, radians, steps)."""
    camera_shift: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))  # world-frame offset, m
    camera_rotvec: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))  # rotation vector, rad
    obj_pos_noise: float = 0.0                                                          # m, std per step
    object_mass_scale: float = 1.0
    object_friction: float = 1.0
    controller_gain_scale: float = 1.0
    command_latency: int = 0
    gripper_close_delay: int = 0
    gripper_open_delay: int = 0

    def estimated(self, p: np.ndarray, camera_position: np.ndarray) -> np.ndarray:
        """Where a camera believed at its calibrated pose (position `camera_position`, any rotation R) but really
        moved by `camera_shift` and turned by `camera_rotvec` (R_true = dR·R) sees the world point `p`: the point's
        camera coordinates R_trueᵀ(p − c − shift), mapped back with the calibration, give c + dRᵀ(p − c − shift)."""
        dR = rotation(self.camera_rotvec)
        c = np.asarray(camera_position, float)
        return c + dR.T @ (np.asarray(p, float) - c - self.camera_shift)

    def physics(self) -> tuple[float, float, float]:
        """What the PhysX Simulation is built with: a change needs a new Simulation."""
        return self.object_mass_scale, self.object_friction, self.controller_gain_scale


def draw_episode(world: World, seed: int | None, running: np.random.Generator | None = None) -> EpisodeDraw:
    """The episode's settings: from (world_seed, seed) when the reset is seeded, else from `running`."""
    def rng(name: str) -> np.random.Generator:
        return _stream(world, seed, name, running)

    r = rng("camera")
    shift = _unit(r) * _uniform(r, world.camera_shift_mm) / 1000.0
    rotvec = _unit(r) * np.deg2rad(_uniform(r, world.camera_tilt_deg))
    return EpisodeDraw(
        camera_shift=shift, camera_rotvec=rotvec,
        obj_pos_noise=_uniform(rng("objpos"), world.obj_pos_noise_mm) / 1000.0,
        object_mass_scale=_uniform(rng("mass"), world.object_mass_scale),
        object_friction=_uniform(rng("friction"), world.object_friction),
        controller_gain_scale=_uniform(rng("gain"), world.controller_gain_scale),
        command_latency=_integer(rng("latency"), world.command_latency_steps),
        gripper_close_delay=_integer(rng("close"), world.gripper_close_delay_steps),
        gripper_open_delay=_integer(rng("open"), world.gripper_open_delay_steps))


# ---------------------------------------------------------------------------------------------------------------
# the command-line / config setting
# ---------------------------------------------------------------------------------------------------------------
WORLD_DOC = (f"the world the RAI scene is: {EMULATION} (today's scene), reality (the held-out bench-like variant, "
             f"config/worlds/reality.yaml), randomised (the emulation with domain randomisation) or a world YAML file")


def world_field() -> Any:
    """The `world` setting, for any config that selects one (one doc, one check)."""
    return setting(EMULATION, WORLD_DOC)


@dataclass
class WorldSetting:
    """The world a command's envs are built in (`--world`)."""
    world: str = world_field()

    def env_kwargs(self) -> dict[str, Any]:
        """{'world': value} for `make_env`, checked now (one line if it is wrong); {} for the emulation, so an
        emulation env is built exactly as before the setting existed."""
        return {} if resolve_world(self.world) is None else {"world": self.world}

    @classmethod
    def add_flag(cls, parser: Any) -> None:
        """`--world NAME|FILE` on a command (its help and default are the field's)."""
        f = {g.name: g for g in fields(cls)}["world"]
        parser.add_argument("--world", default=f.default, metavar="|".join(WORLDS) + "|FILE.yaml", help=doc_of(f))


def preset_yaml_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """config/worlds/<name>.yaml of the repository (`root` defaults to this checkout)."""
    base = Path(root) if root else Path(__file__).resolve().parents[4]
    return base / "config" / "worlds" / f"{name}.yaml"


def world_dict(world: World | None) -> dict[str, Any]:
    """What the env records about its world (settings(), grid results)."""
    return to_dict(world if world is not None else World())


PRESET_HEADERS = {
    EMULATION: "The nominal emulation: today's RAI scene (every setting at its default). `--world emulation` is the\n"
               "same as giving no world. Written by `python -m lpds_sim.rai.world` from World() (a test keeps them "
               "equal).",
    "randomised": "The emulation with randomised dynamics and state estimate, for steering (`lpds train-steer --world\n"
                  "randomised`, `lpds pipeline --steer-world randomised`): ranges that bracket the nominal emulation and a\n"
                  "soft, late bench, wider than reality's on every side. Bench settings (table, size) are drawn per training\n"
                  "env, the rest per episode. Written by `python -m lpds_sim.rai.world` from randomised() (a test keeps them\n"
                  "equal).",
    "reality": "The held-out \"reality\": how a real Franka + D435i bench differs from the emulation (docs/reality.md:\n"
               "what each setting models, its magnitude and what it costs). Demos are recorded and policies graded in\n"
               "it (`--world reality`); steering trains in the emulation. Copy and edit it for your bench and pass\n"
               "`--world FILE.yaml`. [lo, hi] = drawn per episode (bench settings: per env); lo = hi = fixed.\n"
               "Written by `python -m lpds_sim.rai.world` from reality() (a test keeps them equal).",
}


def write_presets(root: str | os.PathLike | None = None) -> list[Path]:
    """config/worlds/<name>.yaml for every preset (run after changing one)."""
    paths = []
    for name, preset in WORLDS.items():
        path = preset_yaml_path(name, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(world_yaml(preset(), PRESET_HEADERS[name]))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_presets():
        print(f"wrote {p}")
