"""The policy node's logic without ROS: inputs in, one safe command (or a reason to hold) out per tick.

Per tick: watchdog (inputs fresh?) -> input checks (finite, right shape) -> plan a chunk when the scheduler asks
(runner.act) -> pop one step -> integrate the position delta onto the last safe target -> safety filter.
Any failure clears the chunk and holds (nothing is published, so the impedance controller keeps the last target);
the next good tick resumes from the last safe target if the robot is still near it, else from the measured pose.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base_frame import rotate_z  # noqa: F401 - also imported from here
from .chunk_scheduler import ChunkScheduler
from .runner import PolicyRunner
from .safety import SafeTarget, SafetyFilter, SafetyLimits
from .watchdog import StaleWatchdog


@dataclass
class RobotState:
    stamp: float
    position: np.ndarray  # (3,)
    quaternion: np.ndarray  # (4,) x y z w
    gripper_width: float  # metres, total opening


@dataclass(frozen=True)
class ActionMapping:
    action_scale: float = 1.0
    gripper_open_value: float = -1.0
    gripper_closed_value: float = 1.0
    yaw_scale: float = 0.1  # rad per unit of a[3] when actions are (dx, dy, dz, dyaw, gripper)
    action_clip: float = 1.0  # actions are clipped to [-clip, clip] first, as the env does (0: no clipping)

    def gripper_command(self, a: float) -> float:
        """0 = open .. 1 = closed."""
        return float(np.clip((a - self.gripper_open_value) / (self.gripper_closed_value - self.gripper_open_value),
                             0.0, 1.0))

    def raw_target(self, position: np.ndarray, quaternion: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One action applied to a target pose (before the safety filter): the position delta a[:3] * action_scale,
        and for 5-D actions a yaw of a[3] * yaw_scale about the world z axis. Shared by the policy and teleop."""
        target = np.asarray(position, float) + a[:3] * self.action_scale
        quat = np.asarray(quaternion, float)
        if a.shape[0] == 5:
            quat = rotate_z(quat, float(a[3]) * self.yaw_scale)
        return target, quat


@dataclass
class TickResult:
    command: SafeTarget | None
    reasons: list[str] = field(default_factory=list)
    planned: bool = False
    # what the model asked for, before the safety filter (for the episode record): the chunk planned this tick,
    # and the step's target (position, quaternion, gripper 0..1) integrated from the raw action
    chunk: np.ndarray | None = None
    raw_target: tuple[np.ndarray, np.ndarray, float] | None = None


STOPPED = "stopped: call ~/start to stream"
NO_MODEL = "no policy loaded yet: set model_dir and call ~/reload"
MAX_OBS_MAGNITUDE = 1e4  # a float observation element beyond this is a broken sensor or message, not a state
QUAT_NORM_TOL = 0.1  # a measured orientation must be a unit quaternion to within this


@dataclass(frozen=True)
class RunnerSpec:
    """What a runner consumes and emits: obs {key: (shape, dtype)} (None: the runner does not say) and act_dim."""
    obs: dict[str, tuple[tuple[int, ...], str]] | None
    act_dim: int
    horizon: int


def runner_spec(runner: PolicyRunner) -> RunnerSpec:
    """The runner's declared spec: `obs_spec` ({key: {"shape", "dtype"}}, as lpds exports write it) if it has one."""
    raw = getattr(runner, "obs_spec", None)
    obs = None if raw is None else {k: (tuple(int(d) for d in v["shape"]), str(v["dtype"])) for k, v in raw.items()}
    return RunnerSpec(obs, int(runner.act_dim), int(runner.horizon))


def spec_mismatch(new: RunnerSpec, running: RunnerSpec | None) -> list[str]:
    """Why a runner cannot replace the running one (empty: it can). act_dim must be 4 (xyz, gripper) or 5 (+yaw)."""
    out = []
    if new.act_dim not in (4, 5):
        out.append(f"the model's act_dim is {new.act_dim}; the node drives (dx, dy, dz[, dyaw], gripper): 4 or 5")
    if new.horizon < 1:
        out.append(f"the model's horizon is {new.horizon}; need >= 1")
    if running is None:
        return out
    if new.act_dim != running.act_dim:
        out.append(f"the model's act_dim {new.act_dim} differs from the running model's {running.act_dim}")
    if new.obs is not None and running.obs is not None and new.obs != running.obs:
        out.append(f"the model's observation spec {new.obs} differs from the running model's {running.obs}")
    return out


class PolicyController:
    """One tick: fresh, well-formed inputs -> at most one safe target, else a hold with its reasons.

    The expected observation is the runner's `obs_spec` when it declares one (onnx, scripted); a runner without one
    gets every finite numeric observation (locking to the first one seen would let a malformed first message lock
    the node up). Nothing here keeps state that a bad message can poison: every hold clears the chunk, and the next
    good tick plans afresh."""

    def __init__(self, runner: PolicyRunner | None, limits: SafetyLimits, replan_after: int = 4,
                 max_input_age: float = 0.2, mapping: ActionMapping = ActionMapping()):
        self.safety = SafetyFilter(limits)
        self.scheduler = ChunkScheduler(replan_after)
        self.watchdog = StaleWatchdog(max_input_age)
        self.mapping = mapping
        self.runner: PolicyRunner | None = None
        self.spec: RunnerSpec | None = None
        self.streaming = False
        self._need_anchor = True
        self._chunk: np.ndarray | None = None  # the last planned chunk
        if runner is not None:
            self.set_runner(runner)

    @property
    def limits(self) -> SafetyLimits:
        return self.safety.limits

    # -- control ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.streaming = True
        self._hold()
        self.safety.reset()  # an explicit start (new episode, operator) always begins at the measured pose

    def stop(self) -> None:
        self.streaming = False
        self._hold()

    def set_runner(self, runner: PolicyRunner, check_running: bool = True) -> None:
        """Serve `runner` from the next tick; ValueError (and the old runner kept) when its spec does not fit the
        running one (check_running=False: only that it is drivable, e.g. the scripted operator rebuilt for new
        state names)."""
        spec = runner_spec(runner)
        running = self.spec if check_running else None
        bad = spec_mismatch(spec, running)
        if bad:
            raise ValueError("; ".join(bad))
        self.runner, self.spec = runner, spec
        self._hold()

    def set_limits(self, limits: SafetyLimits) -> None:
        """New box/step limits apply from the next tick: the filter restarts from the measured pose."""
        self.safety = SafetyFilter(limits)
        self._hold()

    def set_max_input_age(self, max_age: float) -> None:
        old = self.watchdog
        self.watchdog = StaleWatchdog(max_age)
        for name, stamp in old.stamps.items():
            if stamp is not None:
                self.watchdog.feed(name, stamp)

    def _hold(self) -> None:
        self.scheduler.clear()
        self._need_anchor = True

    # -- checks ----------------------------------------------------------------------------------------------
    def _check_obs(self, obs: Any) -> list[str]:
        arrays = obs if isinstance(obs, dict) else {"state": obs}
        got = {}
        for k, v in arrays.items():
            a = np.asarray(v)
            if a.dtype.kind not in "fiu":
                return [f"observation {k} has non-numeric dtype {a.dtype}"]
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                return [f"observation {k} has NaN/Inf"]
            if a.dtype.kind == "f" and a.size and np.max(np.abs(a)) > MAX_OBS_MAGNITUDE:
                return [f"observation {k} has implausible magnitude {float(np.max(np.abs(a))):.3g}"]
            got[k] = (tuple(a.shape), "uint8" if a.dtype == np.uint8 else "float32" if a.dtype.kind == "f"
                      else str(a.dtype))
        want = self.spec.obs if self.spec is not None else None
        if want is not None and got != want:
            return [f"observation shape {got} differs from the expected {want}"]
        return []

    def _check_state(self, s: RobotState) -> list[str]:
        p, q = np.asarray(s.position, float), np.asarray(s.quaternion, float)
        if p.shape != (3,) or q.shape != (4,) or not np.all(np.isfinite(p)) or not np.all(np.isfinite(q)):
            return ["robot state has NaN/Inf or a wrong shape"]
        if not np.isfinite(s.gripper_width) or not -0.01 <= s.gripper_width <= 1.0:
            return [f"robot state has NaN/Inf or an implausible gripper width {s.gripper_width:.3g} m"]
        n = float(np.linalg.norm(q))
        if n < 1e-6:
            return ["robot state has a zero quaternion"]
        if abs(n - 1.0) > QUAT_NORM_TOL:
            return [f"robot state quaternion has norm {n:.3g}, not a unit quaternion"]
        outside = self.safety.outside(p)
        if outside >= self.limits.max_step:
            return [f"measured pose {np.round(p, 3).tolist()} is {outside:.2f} m outside the workspace box "
                    f"(more than max_step {self.limits.max_step} m): move the robot into the box"]
        return []

    def _plan(self, obs: Any) -> str | None:
        """A new chunk into the scheduler, or the reason there is none (a raising runner is a hold, not a crash)."""
        try:
            chunk = np.asarray(self.runner.act(obs), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - a failing model must never take the safety layer down
            return f"policy step failed: {type(exc).__name__}: {exc}"
        if chunk.ndim != 2 or chunk.shape[0] < 1 or chunk.shape[1] != self.spec.act_dim:
            return f"policy returned a chunk of shape {chunk.shape}; need (H, {self.spec.act_dim})"
        self.scheduler.set_chunk(chunk)
        self._chunk = chunk
        return None

    def status(self, now: float) -> list[str]:
        """Why the node would hold now, without ticking (for the node's supervision when no input arrives)."""
        if not self.streaming:
            return [STOPPED]
        if self.runner is None:
            return [NO_MODEL]
        return self.watchdog.stale(now)

    # -- one control tick ------------------------------------------------------------------------------------
    def tick(self, now: float, obs: Any, obs_stamp: float, state: RobotState | None) -> TickResult:
        if not self.streaming:
            return TickResult(None, [STOPPED])
        if self.runner is None:
            return TickResult(None, [NO_MODEL])
        if obs is not None:
            self.watchdog.feed("observation", obs_stamp)
        if state is not None:
            self.watchdog.feed("robot_state", state.stamp)
        reasons = self.watchdog.stale(now)
        if not reasons and (obs is None or state is None):
            reasons = ["no observation"]
        if not reasons:
            reasons = self._check_obs(obs) + self._check_state(state)
        if reasons:
            self._hold()
            return TickResult(None, reasons)
        if self._need_anchor:
            # after a short hold the robot is still near the last safe target: continue from it (the target stays
            # continuous, like the env's integrated target); otherwise start again from the measured pose
            last = self.safety.last
            lim = self.safety.limits
            if last is None or np.linalg.norm(state.position - last.position) > max(lim.max_lead, lim.max_step):
                self.safety.anchor(state.position, state.quaternion,
                                   1.0 if state.gripper_width < 0.5 * 0.08 else 0.0)
            self._need_anchor = False
        planned, chunk = False, None
        if self.scheduler.needs_plan():
            why = self._plan(obs)
            if why is not None:
                self._hold()
                return TickResult(None, [why])
            planned, chunk = True, self._chunk
        a = self.scheduler.pop()
        if a is None:
            self._hold()
            return TickResult(None, ["action chunk exhausted"])
        if self.mapping.action_clip > 0:
            a = np.clip(a, -self.mapping.action_clip, self.mapping.action_clip)  # NaN stays NaN: the filter rejects
        last = self.safety.last
        target, quat = self.mapping.raw_target(last.position, last.quaternion, a)
        gripper = self.mapping.gripper_command(a[-1])
        safe = self.safety.filter(target, quat, gripper, measured=state.position)
        raw = (np.asarray(target, float), np.asarray(quat, float), gripper)
        if not safe.accepted:
            self._hold()
            return TickResult(None, ["model output: " + "; ".join(safe.reasons)], planned, chunk, raw)
        return TickResult(safe, list(safe.reasons), planned, chunk, raw)
