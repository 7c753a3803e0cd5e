"""Demonstration recorder without ROS: stamped streams of one episode -> robomimic demo on the control-rate grid.

Every stream is buffered as (stamp, value) as it arrives (any order; a repeated stamp keeps the later message).
On save, the episode is resampled onto the policy's control grid `t_k = t_0 + k / rate`, with t_0 half a period
after the first end-effector pose of the episode (so a sensor whose stamps jitter by less than half a period is
always sampled at the same tick):

- observations (every stream but the actions): zero-order hold — the latest sample stamped at or before t_k;
- the action of step k: the operator's executed actions stamped in (sigma_k, sigma_{k+1}], where sigma_k is the
  stamp of the pose sample used at t_k (the commands sent after that observation and before the next): position
  (and yaw) parts summed (they are deltas, so the sum is how far the target moved) and clipped to [-1, 1], gripper
  the last one sent (held from earlier steps when none was sent).

The grid starts at the first tick where every required stream has a sample and stops before the first tick where
one of them is older than `max_gap` (a stream that stopped) or at the last pose: the episode is cut there, and the
reason is kept. An optional stream whose first sample comes after the first tick is back-filled with that sample.
Streams: "ee_pose" (position (3,), quaternion xyzw (4,)), "gripper" (width m), "joints",
"task_state" (the sim's state vector), "target" (commanded position), "rgb" (3,H,W uint8), "depth" (1,H,W
float32 m), "action".
The files are written with lpds_core.demos_io (numpy + h5py): no torch and no simulator on the robot PC.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lpds_core.demos_io import Episode, append_demos, read_meta, write_demos
from lpds_core.errors import DataError, RunError

TASK_ENV_IDS = {"pick_place": "lpds_sim/PickPlace-v0", "mug_hang": "lpds_sim/MugHang-v0"}  # as lpds_sim registers
TASK_ACT_DIMS = {"pick_place": 4, "mug_hang": 5}
IMAGE_KEYS = ("rgb", "depth", "proprio")  # lpds_core.encoders.IMAGE_KEYS (that module needs torch)
WRITER = "lpds record"


@dataclass(frozen=True)
class RecordLayout:
    """What a recording holds; a file can only take more episodes of the same layout."""
    task: str = "pick_place"
    obs: str = "state"  # state: obs/state is the sim's task_state; image: obs/rgb, obs/depth, obs/proprio
    rate: float = 10.0  # the policy's control rate (Hz): the grid, and env_kwargs.control_hz of the file
    act_dim: int = 4
    action_names: tuple[str, ...] = ("dx", "dy", "dz", "gripper")
    pos_step_m: float = 0.03  # metres per unit of position action (the policy's action_scale)

    def required(self) -> tuple[str, ...]:
        return ("ee_pose", "gripper", "task_state") if self.obs == "state" else ("ee_pose", "gripper", "rgb", "depth")

    def env_args(self) -> dict[str, Any]:
        """env_args as `lpds demos` writes them (the keys `lpds train-base` and `lpds pipeline` read)."""
        keys = ["state"] if self.obs == "state" else list(IMAGE_KEYS)
        return {"task": self.task, "env_id": TASK_ENV_IDS.get(self.task, ""), "obs_keys": sorted(keys),
                "env_kwargs": {"obs_mode": self.obs, "control_hz": float(self.rate)},
                "action": {"dim": self.act_dim, "names": list(self.action_names), "low": -1.0, "high": 1.0,
                           "pos_step_m": self.pos_step_m, "gripper": "a>=0 open, a<0 close", "frame": "world"},
                "recorded_with": WRITER}


def check_out_file(path: str | Path, layout: RecordLayout) -> int:
    """Before recording: how many episodes `path` already holds (0: a new file). RunError/DataError (one line)
    for a folder, a file not written by the recorder, or one of another task or observation layout."""
    path = Path(path)
    if path.is_dir():
        raise RunError(f"--out {path} is a folder; pass a file name such as {path / 'demos.hdf5'}")
    if not path.exists():
        return 0
    try:
        meta = read_meta(path)
    except DataError as exc:
        raise RunError(f"--out {path} exists and is not a demo file ({exc}); it is never overwritten: choose "
                       f"another --out") from exc
    env_args = meta.get("env_args") or {}
    if env_args.get("recorded_with") != WRITER:
        raise RunError(f"--out {path} exists and was not written by `lpds record`; it is never overwritten: "
                       f"choose another --out")
    want = layout.env_args()
    got = {k: env_args.get(k) for k in ("task", "obs_keys")}
    got["control_hz"] = (env_args.get("env_kwargs") or {}).get("control_hz")
    got["act_dim"] = (env_args.get("action") or {}).get("dim")
    exp = {"task": want["task"], "obs_keys": want["obs_keys"], "control_hz": float(layout.rate),
           "act_dim": layout.act_dim}
    if got != exp:
        diff = ", ".join(f"{k} {got[k]!r} (this recording: {exp[k]!r})" for k in exp if got[k] != exp[k])
        raise DataError(f"--out {path} holds demos of another layout: {diff}; record into another --out")
    return int(meta.get("n_episodes", 0))


def _sorted(samples: list[tuple[float, Any]]) -> tuple[np.ndarray, list[Any]]:
    """Samples by stamp; of two with the same stamp the later-received one wins."""
    order = sorted(range(len(samples)), key=lambda i: (samples[i][0], i))
    keep: dict[float, int] = {}
    for i in order:
        keep[samples[i][0]] = i
    idx = [keep[s] for s in sorted(keep)]
    return np.array([samples[i][0] for i in idx], float), [samples[i][1] for i in idx]


def zoh_index(stamps: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per grid time, the index of the latest sample stamped at or before it (-1: none yet)."""
    return np.searchsorted(stamps, t, side="right") - 1


@dataclass
class Resampled:
    grid: np.ndarray  # (T,) tick times
    obs: dict[str, np.ndarray]
    actions: np.ndarray  # (T, A)
    cut: str = ""  # why the grid ended before the last pose ("" : it did not)
    held: int = 0  # ticks whose pose sample was the one of the tick before (the robot's stream was late)


@dataclass
class EpisodeBuffer:
    """One episode's stamped samples per stream (plain lists; capped by the node's episode length limit)."""
    streams: dict[str, list[tuple[float, Any]]] = field(default_factory=dict)

    def add(self, name: str, stamp: float, value: Any) -> None:
        if np.isfinite(stamp):
            self.streams.setdefault(name, []).append((float(stamp), value))

    def count(self, name: str) -> int:
        return len(self.streams.get(name, ()))

    def __len__(self) -> int:
        return self.count("ee_pose")

    def resample(self, layout: RecordLayout, max_gap: float, gripper_open: float = 1.0) -> Resampled:
        period = 1.0 / layout.rate
        missing = [n for n in layout.required() + ("action",) if not self.streams.get(n)]
        if missing:
            raise DataError(f"the episode has no {', '.join(missing)} messages: check that those topics are "
                            f"published (`ros2 topic list`) and that the recorder's topic parameters name them")
        data = {n: _sorted(s) for n, s in self.streams.items()}
        pose_t = data["ee_pose"][0]
        k_max = int(np.floor((pose_t[-1] - pose_t[0]) / period + 1e-9))
        grid = pose_t[0] + (np.arange(k_max + 1) + 0.5) * period  # grid[k_max] only closes the last action window
        idx = {n: zoh_index(st, grid) for n, (st, _) in data.items()}
        ok = np.ones(len(grid), bool)
        why = [""] * len(grid)
        for n in layout.required():
            st = data[n][0]
            i = idx[n]
            age = np.where(i >= 0, grid - st[np.maximum(i, 0)], np.inf)
            bad = (i < 0) | (age > max_gap)
            for k in np.flatnonzero(bad & ok):
                why[k] = (f"{n} has no sample yet" if i[k] < 0 else
                          f"{n} stopped: its last sample is {age[k]:.3f} s old at step {k} (max_gap {max_gap} s)")
            ok &= ~bad
        valid = np.flatnonzero(ok)
        if len(valid) == 0:
            raise DataError(f"no control tick of the episode has all of {', '.join(layout.required())}: "
                            f"{next((w for w in why if w), 'too short')}")
        k0 = int(valid[0])
        after = np.flatnonzero(~ok[k0:])
        k1 = k0 + int(after[0]) if len(after) else len(grid)  # first tick past the end (or none)
        cut = why[k1] if k1 < len(grid) else ""
        steps = np.arange(k0, k1 - 1)  # step k's action window ends at tick k + 1, which must be good too
        if len(steps) == 0:
            raise DataError(f"the episode is shorter than one control tick of {period:.3f} s with every stream "
                            f"present{': ' + cut if cut else ''}")
        # optional streams (joints, target, ...) that start a little after the grid: their first sample back-fills
        obs = {}
        for n in data:
            if n in ("action", "ee_pose"):
                continue
            try:
                obs[n] = np.stack([np.asarray(data[n][1][j]) for j in np.maximum(idx[n][steps], 0)])
            except ValueError as exc:  # messages of changing size
                if n in layout.required():
                    raise DataError(f"the {n} messages of the episode change shape ({exc}); fix the publisher "
                                    f"(e.g. one camera resolution) and record again") from exc
        pose = [data["ee_pose"][1][j] for j in idx["ee_pose"][steps]]
        obs["ee_pos"] = np.array([p[0] for p in pose], np.float32)
        obs["ee_quat"] = np.array([p[1] for p in pose], np.float32)
        sigma = pose_t[idx["ee_pose"]]
        act_t, act_v = data["action"]
        acts = np.asarray(act_v, float)
        out = np.zeros((len(steps), layout.act_dim))
        last_grip = gripper_open
        before = act_t <= sigma[steps[0]]
        if np.any(before):
            last_grip = float(acts[np.flatnonzero(before)[-1], -1])
        for r, k in enumerate(steps):
            sel = (act_t > sigma[k]) & (act_t <= sigma[k + 1])
            if np.any(sel):
                out[r, :-1] = np.clip(acts[sel, :-1].sum(axis=0), -1.0, 1.0)
                last_grip = float(acts[np.flatnonzero(sel)[-1], -1])
            out[r, -1] = last_grip
        held = int(np.sum(np.diff(idx["ee_pose"][steps]) == 0))
        return Resampled(grid[steps], obs, out.astype(np.float32), cut, held)


def to_episode(res: Resampled, layout: RecordLayout,
               proprio: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None,
               attrs: dict[str, Any] | None = None) -> Episode:
    """A resampled episode in the file layout `lpds train-base` reads (obs/state, or obs/rgb + depth + proprio),
    plus the raw robot streams (ee_pos, ee_quat (xyzw), gripper_width, joint_positions, the commanded target_pos)
    for review."""
    T = len(res.actions)
    o = res.obs
    obs: dict[str, np.ndarray] = {"ee_pos": o["ee_pos"], "ee_quat": o["ee_quat"],
                                  "gripper_width": np.asarray(o["gripper"], np.float32).reshape(T, 1)}
    if "joints" in o:
        obs["joint_positions"] = np.asarray(o["joints"], np.float32)
    if "target" in o:
        obs["target_pos"] = np.asarray(o["target"], np.float32)
    if "task_state" in o:
        obs["state"] = np.asarray(o["task_state"], np.float32)
    if layout.obs == "image":
        if proprio is None:
            raise ValueError("image recordings need the proprio function (the policy node's layout)")
        obs["rgb"] = np.asarray(o["rgb"], np.uint8)
        obs["depth"] = np.asarray(o["depth"], np.float32)
        obs["proprio"] = np.stack([proprio(p, q, float(w)) for p, q, w in
                                   zip(o["ee_pos"], o["ee_quat"], obs["gripper_width"][:, 0])]).astype(np.float32)
    dones = np.zeros(T, bool)
    dones[-1] = True
    meta = {"rate_hz": layout.rate, "t0": float(res.grid[0]), "cut": res.cut, "held_ticks": res.held,
            "resampling": "zero-order hold per stream; actions summed per pose interval"}
    return Episode(obs, res.actions, np.zeros(T, np.float32), dones, {**meta, **(attrs or {})})


def save_episode(path: str | Path, episode: Episode, layout: RecordLayout) -> int:
    """Write a new file or append to one the recorder wrote (same layout, checked again: another process may have
    written it since). Returns the number of episodes in the file."""
    n = check_out_file(path, layout)
    if n == 0 and not Path(path).exists():
        write_demos(path, [episode], layout.env_args(), {"task": layout.task, "n_demos": 1, "recorded_with": WRITER})
        return 1
    append_demos(path, [episode], {"n_demos": n + 1})
    return n + 1


def layout_for(task: str, obs: str, rate: float, pos_step_m: float) -> RecordLayout:
    if task not in TASK_ACT_DIMS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASK_ACT_DIMS)}")
    dim = TASK_ACT_DIMS[task]
    names = ("dx", "dy", "dz", "gripper") if dim == 4 else ("dx", "dy", "dz", "dyaw", "gripper")
    return dataclasses.replace(RecordLayout(), task=task, obs=obs, rate=float(rate), act_dim=dim,
                               action_names=names, pos_step_m=float(pos_step_m))
