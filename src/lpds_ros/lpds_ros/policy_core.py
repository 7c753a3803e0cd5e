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


@dataclass
class TickResult:
    command: SafeTarget | None
    reasons: list[str] = field(default_factory=list)
    planned: bool = False


def rotate_z(q_xyzw: np.ndarray, angle: float) -> np.ndarray:
    """World-frame rotation about z applied to an (x, y, z, w) quaternion."""
    x, y, z, w = q_xyzw
    c, s = np.cos(angle / 2), np.sin(angle / 2)  # r = (0, 0, s, c); r * q
    return np.array([c * x - s * y, c * y + s * x, c * z + s * w, c * w - s * z])


MAX_POSE_OUTSIDE_BOX = 0.3  # a measured pose further than this outside the workspace box is not believed


class PolicyController:
    def __init__(self, runner: PolicyRunner, limits: SafetyLimits, replan_after: int = 4,
                 max_input_age: float = 0.2, mapping: ActionMapping = ActionMapping(),
                 obs_shape: Any = None):
        self.runner = runner
        self.safety = SafetyFilter(limits)
        self.scheduler = ChunkScheduler(replan_after)
        self.watchdog = StaleWatchdog(max_input_age)
        self.mapping = mapping
        self.obs_shape = obs_shape  # None: locked to the first good observation's shape
        self.streaming = False
        self._need_anchor = True
        self._lo, self._hi = np.asarray(limits.box_min, float), np.asarray(limits.box_max, float)

    # -- control ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.streaming = True
        self._hold()
        self.safety.reset()  # an explicit start (new episode, operator) always begins at the measured pose

    def stop(self) -> None:
        self.streaming = False
        self._hold()

    def set_runner(self, runner: PolicyRunner) -> None:
        self.runner = runner
        self._hold()

    def _hold(self) -> None:
        self.scheduler.clear()
        self._need_anchor = True

    # -- checks ----------------------------------------------------------------------------------------------
    def _check_obs(self, obs: Any) -> list[str]:
        arrays = obs if isinstance(obs, dict) else {"state": obs}
        shape = {k: np.shape(v) for k, v in arrays.items()}
        for k, v in arrays.items():
            a = np.asarray(v)
            if a.dtype.kind not in "fiu":
                return [f"observation {k} has non-numeric dtype {a.dtype}"]
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                return [f"observation {k} has NaN/Inf"]
            if a.dtype.kind == "f" and np.any(np.abs(a) > 1e4):
                return [f"observation {k} has implausible magnitude {float(np.max(np.abs(a))):.3g}"]
        if self.obs_shape is None:
            self.obs_shape = shape
        elif shape != self.obs_shape:
            return [f"observation shape {shape} differs from the expected {self.obs_shape}"]
        return []

    def _check_state(self, s: RobotState) -> list[str]:
        p, q = np.asarray(s.position, float), np.asarray(s.quaternion, float)
        if p.shape != (3,) or q.shape != (4,) or not np.all(np.isfinite(p)) or not np.all(np.isfinite(q)) \
                or not np.isfinite(s.gripper_width):
            return ["robot state has NaN/Inf or a wrong shape"]
        if np.linalg.norm(q) < 1e-6:
            return ["robot state has a zero quaternion"]
        outside = float(np.linalg.norm(p - np.clip(p, self._lo, self._hi)))
        if outside > MAX_POSE_OUTSIDE_BOX:
            return [f"measured pose {np.round(p, 3).tolist()} is {outside:.2f} m outside the workspace box"]
        return []

    # -- one control tick ------------------------------------------------------------------------------------
    def tick(self, now: float, obs: Any, obs_stamp: float, state: RobotState | None) -> TickResult:
        if not self.streaming:
            return TickResult(None, ["stopped"])
        if obs is not None:
            self.watchdog.feed("observation", obs_stamp)
        if state is not None:
            self.watchdog.feed("robot_state", state.stamp)
        reasons = self.watchdog.stale(now)
        if not reasons and obs is None:
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
        planned = False
        if self.scheduler.needs_plan():
            chunk = np.asarray(self.runner.act(obs), dtype=np.float64)
            if chunk.ndim != 2 or chunk.shape[1] < 4:
                self._hold()
                return TickResult(None, [f"policy returned a chunk of shape {chunk.shape}; need (H, >=4)"])
            self.scheduler.set_chunk(chunk)
            planned = True
        a = self.scheduler.pop()
        if a is None:
            self._hold()
            return TickResult(None, ["action chunk exhausted"])
        if self.mapping.action_clip > 0:
            a = np.clip(a, -self.mapping.action_clip, self.mapping.action_clip)  # NaN stays NaN: the filter rejects
        last = self.safety.last
        target = last.position + a[:3] * self.mapping.action_scale
        quat = last.quaternion
        if a.shape[0] == 5:  # yaw about the world z axis
            quat = rotate_z(quat, float(a[3]) * self.mapping.yaw_scale)
        safe = self.safety.filter(target, quat, self.mapping.gripper_command(a[-1]), measured=state.position)
        if not safe.accepted:
            self._hold()
            return TickResult(None, safe.reasons, planned)
        return TickResult(safe, list(safe.reasons), planned)
