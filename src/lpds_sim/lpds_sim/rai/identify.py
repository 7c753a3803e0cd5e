"""Identify the emulation from demos recorded on the bench: a world YAML to steer in (real-to-sim).

Why: a base trained on bench demos has learned the bench's lag and latency, and a critic trained on the stiff,
prompt nominal emulation scores its chunks under the wrong dynamics (docs/reality.md). Domain randomisation over
wide, guessed ranges did not fix that. The demos already hold what is needed to fit the dynamics a state policy
cannot observe: each one is a sequence of commands and the arm's answer to them. So each demo is replayed
open-loop in the emulation under candidate settings, and the settings whose replay tracks the recorded end
effector and gripper best are kept:

- `command_latency_steps` and `controller_gain_scale`: the end-effector path from the reset to the first close
  command (free motion: the arm answers only its commands there), a grid over the latency and a log-spaced grid
  over the gain, then the gain refined around the best point;
- `gripper_close_delay_steps`, `gripper_open_delay_steps`: the finger width after the first close and the
  first reopening, with that latency and gain;
- `obj_pos_noise_mm`: the frame-to-frame jitter of the observed object while it rests before the approach;
- `table_offset_mm`: the resting object's observed height against the emulation's.

Each setting becomes the range [min, max] of its per-demo fits (so the identified world draws every value the
demos showed). What the demos cannot tell apart (object mass and friction, the camera's extrinsics error, the
object's size) keeps the `randomised` preset's ranges, and so does a gripper delay no demo shows (a pick-and-place
demo ends on success a few steps after it opens the gripper, before the fingers move). The fit reads only what a bench log holds: the observations
and actions of the demos, never the world they were recorded in.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lpds_core.config import setting
from lpds_core.errors import ConfigError, RunError

from .world import World, randomised, world_yaml

EE_POS = slice(0, 3)   # proprio layout of every RAI state: ee position, ee quaternion, finger width
WIDTH = 7


@dataclass
class IdentifyConfig:
    """`lpds identify`: fit the emulation's unobservable dynamics to demos recorded on the bench."""
    demos: str = setting("", "demo file (robomimic HDF5 from `lpds demos`) recorded on the bench / in reality")
    task: str = setting("pick_place", "task the demos are of (its env is the emulation the demos are replayed in)")
    n_demos: int = setting(10, "demos to replay (the first N; each costs about 30 short replays, ~20 s)", min=1)
    latencies: list[int] = setting([0, 1, 2, 3], "command latencies tried, control steps", min=0)
    gains: list[float] = setting([0.03, 0.05, 0.1, 0.2, 0.5, 1.0],
                                 "controller gain scales tried before the refinement (log-spaced)", above=0.0)
    gripper_delays: list[int] = setting([0, 1, 2, 3], "gripper close/open delays tried, control steps", min=0)
    world_name: str = setting("identified", "name of the identified world (recorded with its grid results)")


@dataclass
class DemoFit:
    """What one demo says about the bench."""
    demo: str
    latency: int
    gain: float
    ee_error_mm: float       # mean end-effector distance, replay vs recording, over the free-motion segment
    nominal_ee_error_mm: float  # the same for the nominal emulation (latency 0, gain 1): what the fit explains
    close_delay: int | None  # None: the demo never closed / reopened the gripper
    open_delay: int | None
    obj_noise_mm: float | None
    obj_z_mm: float          # observed height of the resting object, mm


def load_demos(path: str | Path, n: int) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], dict[str, Any]]:
    """[(name, states (T, D), actions (T, A))] of the first `n` demos, and the file's attributes (the project's
    loader: one line for a missing, corrupt or foreign file)."""
    from lpds_sim.demos_io import load_demos as read

    demos = read(path)
    out = []
    for ep in list(demos)[:n]:
        if "state" not in ep.obs:
            raise ConfigError(f"--demos {path}: {ep.name} has no obs/state; identification replays state demos "
                              "(record them with `lpds demos --obs state`)")
        out.append((ep.name.rsplit("/", 1)[-1], np.asarray(ep.obs["state"], np.float64),
                    np.asarray(ep.actions, np.float64)))
    return out, dict(demos.meta)


def first_change(actions: np.ndarray, start: int, to_open: bool) -> int | None:
    """First step ≥ start whose gripper command is open (to_open) / closed; None if there is none."""
    idx = np.nonzero((actions[start:, -1] >= 0.0) == to_open)[0]
    return None if idx.size == 0 else int(start + idx[0])


def motion_onset(width: np.ndarray, start: int, closing: bool, tol: float = 0.002) -> int | None:
    """First step after `start` where the finger width has moved by more than `tol` (m) in that direction."""
    ref = width[start]
    moved = (ref - width[start + 1:] > tol) if closing else (width[start + 1:] - ref > tol)
    idx = np.nonzero(moved)[0]
    return None if idx.size == 0 else int(start + 1 + idx[0])


Replay = Callable[[np.ndarray, np.ndarray, World, int], np.ndarray]


def make_replay(task: str) -> Replay:
    """replay(states, actions, world, n) -> the observed states of n steps of the demo's actions replayed open-loop
    in the emulation under `world`, from the demo's start (the object where the demo observed it)."""
    from lpds_sim.evaluation import make_env

    def replay(states: np.ndarray, actions: np.ndarray, world: World, n: int) -> np.ndarray:
        env = make_env(task, "state", world=world)
        try:
            layout = env.unwrapped.state_layout
            obs, _ = env.reset(seed=0, options={"object_xy": states[0, layout["obj_pos"]][:2]})
            out = [obs]
            for t in range(n - 1):
                obs, *_ = env.step(actions[t])
                out.append(obs)
        finally:
            env.close()
        return np.asarray(out, np.float64)

    return replay


def _world(name: str, latency: int, gain: float, close: int = 0, open_: int = 0) -> World:
    return World(world_name=name, controller_gain_scale=(gain, gain), command_latency_steps=(latency, latency),
                 gripper_close_delay_steps=(close, close), gripper_open_delay_steps=(open_, open_))


def _ee_error(replayed: np.ndarray, states: np.ndarray) -> float:
    n = len(replayed)
    return float(np.linalg.norm(replayed[:, EE_POS] - states[:n, EE_POS], axis=1).mean() * 1000.0)


def fit_arm(replay: Replay, states: np.ndarray, actions: np.ndarray, n: int, latencies: Sequence[int],
            gains: Sequence[float]) -> tuple[int, float, float, float]:
    """(latency, gain, its error, the nominal world's error) that make the replayed free motion track the recorded
    one: a grid, then a golden-section refinement of the gain (in log space) between the best gain's neighbours."""
    gains = sorted(gains)
    errors = {(L, g): _ee_error(replay(states, actions, _world("fit", L, g), n), states)
              for L in latencies for g in gains}
    nominal = errors.get((0, 1.0))
    if nominal is None:
        nominal = _ee_error(replay(states, actions, _world("fit", 0, 1.0), n), states)
    (L, g), best = min(errors.items(), key=lambda kv: kv[1])
    i = gains.index(g)
    lo, hi = np.log(gains[max(i - 1, 0)]), np.log(gains[min(i + 1, len(gains) - 1)])

    def err(log_g: float) -> float:
        key = (L, float(np.exp(log_g)))
        if key not in errors:
            errors[key] = _ee_error(replay(states, actions, _world("fit", L, key[1]), n), states)
        return errors[key]

    r = (np.sqrt(5) - 1) / 2
    a, b = lo + (1 - r) * (hi - lo), lo + r * (hi - lo)
    for _ in range(8):  # the bracket shrinks to 0.02 of the neighbours' span (a few % of the gain)
        if err(a) < err(b):
            hi, b = b, a
            a = lo + (1 - r) * (hi - lo)
        else:
            lo, a = a, b
            b = lo + r * (hi - lo)
    (L, g), best = min(((k, v) for k, v in errors.items() if k[0] == L), key=lambda kv: kv[1])
    return L, float(g), float(best), float(nominal)


def fit_gripper(replay: Replay, states: np.ndarray, actions: np.ndarray, latency: int, gain: float,
                delays: Sequence[int], t_cmd: int, closing: bool) -> int | None:
    """The gripper delay whose replay moves the fingers when the recording did (first motion after the command
    at t_cmd); ties go to the smaller delay. None when the recording shows no finger motion after the command."""
    width = states[:, WIDTH]
    onset = motion_onset(width, t_cmd, closing)
    if onset is None:
        return None
    n = min(len(actions), onset + 4)
    best, best_err = None, np.inf
    for d in sorted(delays):
        w = _world("fit", latency, gain, close=d if closing else 0, open_=0 if closing else d)
        rep = replay(states, actions, w, n)[:, WIDTH]
        got = motion_onset(rep, t_cmd, closing)
        e = abs((got if got is not None else n + 5) - onset)
        if e < best_err:
            best, best_err = d, e
    return best


def resting_stats(states: np.ndarray, obj: slice, until: int) -> tuple[float | None, float]:
    """(per-step noise std of the observed object position in mm, its mean height in mm) while it rests: the steps
    before the end effector comes within 10 cm of it (and before `until`)."""
    p = states[:until, obj]
    near = np.linalg.norm(states[:until, EE_POS] - p, axis=1) < 0.10
    k = int(np.argmax(near)) if near.any() else len(p)
    p = p[:max(k, 2)]
    if len(p) < 4:
        return None, float(p[:, 2].mean() * 1000.0)
    noise = float(np.diff(p, axis=0).std(axis=0).mean() / np.sqrt(2.0) * 1000.0)
    return noise, float(p[:, 2].mean() * 1000.0)


def fit_demo(replay: Replay, name: str, states: np.ndarray, actions: np.ndarray, obj: slice,
             cfg: IdentifyConfig) -> DemoFit:
    t_close = first_change(actions, 0, to_open=False)
    n_free = t_close if t_close is not None else len(actions)
    if n_free < 5:
        raise RunError(f"demo {name} closes the gripper after {n_free} steps: too little free motion to fit the arm")
    L, g, err, nominal = fit_arm(replay, states, actions, n_free, cfg.latencies, cfg.gains)
    close = open_ = None
    if t_close is not None:
        close = fit_gripper(replay, states, actions, L, g, cfg.gripper_delays, t_close, closing=True)
        t_open = first_change(actions, t_close, to_open=True)
        if t_open is not None:
            open_ = fit_gripper(replay, states, actions, L, g, cfg.gripper_delays, t_open, closing=False)
    noise, z = resting_stats(states, obj, n_free)
    return DemoFit(name, L, g, err, nominal, close, open_, noise, z)


def _range(values: Iterable[float | int | None], cast: type = float) -> tuple:
    v = [x for x in values if x is not None]
    return (cast(min(v)), cast(max(v))) if v else None  # type: ignore[return-value]


def identified_world(fits: Sequence[DemoFit], nominal_obj_z_mm: float, name: str = "identified",
                     unknown: World | None = None) -> World:
    """The world to steer in: every fitted setting as the range of its per-demo values, the table offset as the
    mean height difference, and the settings the demos cannot tell (`unknown`, default the randomised preset's
    ranges) as they are there."""
    unknown = unknown or randomised()
    table = round(float(np.mean([f.obj_z_mm for f in fits]) - nominal_obj_z_mm), 1)
    keep = {k: getattr(unknown, k) for k in ("camera_shift_mm", "camera_tilt_deg", "object_mass_scale",
                                             "object_friction", "object_size_scale")}
    gains = _range(f.gain for f in fits)
    return World(world_name=name, world_seed=0, **keep,
                 obj_pos_noise_mm=tuple(round(v, 2) for v in _range(f.obj_noise_mm for f in fits) or (0.0, 0.0)),
                 controller_gain_scale=tuple(round(v, 4) for v in gains),
                 command_latency_steps=_range((f.latency for f in fits), int),
                 gripper_close_delay_steps=(_range((f.close_delay for f in fits), int)
                                            or unknown.gripper_close_delay_steps),
                 gripper_open_delay_steps=(_range((f.open_delay for f in fits), int)
                                           or unknown.gripper_open_delay_steps),
                 table_offset_mm=(table, table)).check()


def identify(cfg: IdentifyConfig, progress: Callable[[int, int, DemoFit], None] | None = None,
             replay: Replay | None = None) -> tuple[World, list[DemoFit], dict[str, Any]]:
    """Fit every demo, then the world; also returns the demo file's attributes."""
    from lpds_sim.evaluation import make_env

    demos, attrs = load_demos(cfg.demos, cfg.n_demos)
    replay = replay or make_replay(cfg.task)
    env = make_env(cfg.task, "state")  # the nominal emulation: its layout, and where it sees the resting object
    try:
        obj = env.unwrapped.state_layout["obj_pos"]
        act_dim = int(env.action_space.shape[0])
        obs, _ = env.reset(seed=0, options={"object_xy": demos[0][1][0, obj][:2]})
        nominal_z_mm = float(obs[obj][2] * 1000.0)
    finally:
        env.close()
    fits = []
    for i, (name, states, actions) in enumerate(demos):
        if actions.shape[1] != act_dim:
            raise ConfigError(f"--demos {cfg.demos}: {name} has actions of size {actions.shape[1]}, but task "
                              f"{cfg.task!r} takes {act_dim}; pass the --task the demos were recorded for")
        fits.append(fit_demo(replay, name, states, actions, obj, cfg))
        if progress:
            progress(i + 1, len(demos), fits[-1])
    world = identified_world(fits, nominal_z_mm, cfg.world_name)
    return world, fits, attrs


def check_out(out: str | Path) -> tuple[Path, Path]:
    """(OUT.yaml, OUT.json), refused before any replay runs if either exists or OUT is not a .yaml name."""
    out = Path(out)
    if out.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"--out {out} must end in .yaml (a world file for --world / --steer-world)")
    report = out.with_suffix(".json")
    for p in (out, report):
        if p.exists():
            raise RunError(f"{p} exists; choose another --out (identification never overwrites a file)")
    return out, report


def write_identified(world: World, fits: Sequence[DemoFit], cfg: IdentifyConfig, out: str | Path) -> Path:
    """OUT.yaml (the world, commented) and OUT.json beside it (every demo's fit); never over existing files."""
    out, report = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"Identified from {len(fits)} demos of {cfg.demos} by `lpds identify` (lpds_sim.rai.identify): "
              "latency, gain and\ngripper delays from open-loop replays, object noise and table height from the "
              "resting object;\nobject mass, friction, size and the camera's extrinsics error keep the "
              "randomised preset's ranges.\nPer-demo fits: " + report.name + "\n")
    out.write_text(world_yaml(world, header))
    report.write_text(json.dumps({"config": dataclasses.asdict(cfg), "fits": [dataclasses.asdict(f) for f in fits]},
                                 indent=1))
    return out
