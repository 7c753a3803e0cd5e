"""Teleoperation without ROS: the operator's command stream -> the policy's own action -> a safe target.

The operator produces exactly what a policy emits, `[dx, dy, dz, (dyaw,) gripper]` in [-1, 1] per control tick
(position unit = `ActionMapping.action_scale` metres, gripper `gripper_open_value` = open), and the target is
built from it by the same code as the policy node's (`ActionMapping.raw_target`) and passed through the same
`SafetyFilter`. So a recorded teleop demo and a deployed policy drive the robot through one path.

Inputs: a SpaceMouse-style `sensor_msgs/Joy` (`JoyMapping`: axes -> velocity with a deadband, buttons -> gripper
toggle / start / save / discard on the press edge) or a leader pose (each tick: the leader's motion since the last
tick, scaled; motion beyond one tick's limit is carried over, so the follower never drifts off the leader).
The action returned with each target is the one the robot executed: the safe target's displacement over the tick
(a clipped or limited step is recorded as the step actually taken).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .policy_core import ActionMapping, RobotState
from .safety import SafeTarget, SafetyFilter, SafetyLimits
from .watchdog import StaleWatchdog

EVENTS = ("start", "save", "discard")


@dataclass(frozen=True)
class JoyMapping:
    """Which Joy axes/buttons do what (defaults: spacenav_node's SpaceMouse layout, axes x y z roll pitch yaw)."""
    axes: tuple[int, int, int] = (0, 1, 2)  # Joy axes giving x, y, z velocity
    signs: tuple[float, float, float] = (1.0, 1.0, 1.0)
    yaw_axis: int = 5  # Joy axis giving yaw velocity (5-D actions only; -1: none)
    yaw_sign: float = 1.0
    deadband: float = 0.1  # |axis| below this is 0; above it the output is rescaled to start at 0 (no jump)
    scale: float = 1.0  # action units at full deflection (1.0: the env's max speed)
    gripper_button: int = 0  # toggles open/closed on each press
    save_button: int = 1
    start_button: int = 2
    discard_button: int = 3  # -1 for any of them: not mapped

    def __post_init__(self) -> None:
        if not 0 <= self.deadband < 1:
            raise ValueError(f"deadband must be in [0, 1), got {self.deadband}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a positive number, got {self.scale}")
        if len(self.axes) != 3 or len(self.signs) != 3:
            raise ValueError("axes and signs need three entries (x, y, z)")


def apply_deadband(x: float, deadband: float) -> float:
    """0 inside the deadband; outside, linear from 0 at the edge to ±1 at full deflection (NaN -> 0)."""
    if not np.isfinite(x) or abs(x) <= deadband:
        return 0.0
    return float(np.sign(x) * (min(abs(x), 1.0) - deadband) / (1.0 - deadband))


class JoyInput:
    """Joy messages -> (action without gripper, events). Keeps the gripper toggle and the last button states."""

    def __init__(self, mapping: JoyMapping = JoyMapping()):
        self.mapping = mapping
        self.closed = False
        self._buttons: tuple[int, ...] = ()
        self._axes: tuple[float, ...] = ()

    def update(self, axes: Sequence[float], buttons: Sequence[int]) -> list[str]:
        """Take one Joy message; returns the events pressed in it ("gripper", "start", "save", "discard")."""
        m = self.mapping
        buttons = tuple(int(b) for b in buttons)
        prev = self._buttons
        pressed = [i for i, b in enumerate(buttons) if b and not (i < len(prev) and prev[i])]
        self._buttons, self._axes = buttons, tuple(float(a) for a in axes)
        events = []
        for name, idx in (("gripper", m.gripper_button), ("start", m.start_button), ("save", m.save_button),
                          ("discard", m.discard_button)):
            if idx >= 0 and idx in pressed:
                events.append(name)
        if "gripper" in events:
            self.closed = not self.closed
        return events

    def release(self) -> None:
        """Input lost: no motion until the next message (the gripper state is kept)."""
        self._axes = ()

    def motion(self, yaw: bool) -> np.ndarray:
        """Position (and yaw) part of the action from the newest axes, in action units."""
        m = self.mapping

        def axis(i: int) -> float:
            return apply_deadband(self._axes[i], m.deadband) if 0 <= i < len(self._axes) else 0.0

        out = [s * axis(i) * m.scale for i, s in zip(m.axes, m.signs)]
        if yaw:
            out.append(m.yaw_sign * axis(m.yaw_axis) * m.scale)
        return np.clip(np.array(out, float), -1.0, 1.0)


class LeaderInput:
    """Leader poses -> per-tick position deltas (scaled), with the part beyond one step carried to the next ticks."""

    def __init__(self, scale: float = 1.0, max_pending: float = 0.1):
        self.scale, self.max_pending = float(scale), float(max_pending)
        self._last: np.ndarray | None = None
        self._pending = np.zeros(3)

    def update(self, position: Sequence[float]) -> None:
        p = np.asarray(position, float).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            return
        if self._last is not None:
            self._pending += (p - self._last) * self.scale
            n = float(np.linalg.norm(self._pending))
            if n > self.max_pending:  # the follower was blocked: do not wind up
                self._pending *= self.max_pending / n
        self._last = p

    def release(self) -> None:
        """Re-engage: the next leader pose is the new reference (no jump towards where the leader went meanwhile)."""
        self._last, self._pending = None, np.zeros(3)

    def motion(self, action_scale: float) -> np.ndarray:
        a = np.clip(self._pending / action_scale, -1.0, 1.0)
        self._pending = self._pending - a * action_scale
        return a


@dataclass
class TeleopTick:
    action: np.ndarray | None  # the executed action (policy layout), None while holding
    command: SafeTarget | None
    reasons: list[str] = field(default_factory=list)


class TeleopController:
    """One tick: operator input + measured robot state -> the policy-layout action and its safe target."""

    def __init__(self, limits: SafetyLimits, mapping: ActionMapping, act_dim: int = 4,
                 joy: JoyMapping = JoyMapping(), leader_scale: float = 1.0, operator_timeout: float = 0.5,
                 max_state_age: float = 0.2):
        if act_dim not in (4, 5):
            raise ValueError(f"act_dim must be 4 (dx, dy, dz, gripper) or 5 (+ dyaw), got {act_dim}")
        self.safety = SafetyFilter(limits)
        self.mapping, self.act_dim = mapping, act_dim
        self.joy, self.leader = JoyInput(joy), LeaderInput(leader_scale)
        self.watchdog = StaleWatchdog(max_state_age, ("robot_state",))  # older robot state: hold
        self.operator_timeout = float(operator_timeout)  # no operator message for this long: stand still
        self._input_stamp: float | None = None

    def on_joy(self, stamp: float, axes: Sequence[float], buttons: Sequence[int]) -> list[str]:
        self._input_stamp = stamp
        return self.joy.update(axes, buttons)

    def on_leader(self, stamp: float, position: Sequence[float]) -> None:
        self._input_stamp = stamp
        self.leader.update(position)

    def restart(self) -> None:
        """Start again from the measured pose at the next tick (new episode, after a reset)."""
        self.safety.reset()
        self.leader.release()

    def tick(self, now: float, state: RobotState | None) -> TeleopTick:
        if state is not None:
            self.watchdog.feed("robot_state", state.stamp)
        reasons = self.watchdog.stale(now)
        if reasons:
            self.safety.reset()  # re-anchor on the measured pose when the state comes back
            return TeleopTick(None, None, reasons)
        lim = self.safety.limits
        last = self.safety.last
        if last is not None and np.linalg.norm(state.position - last.position) > max(lim.max_lead, lim.max_step):
            self.restart()  # the robot was moved (reset, homing): never pull it back towards the old target
        if not self.safety.anchored:
            try:
                self.safety.anchor(state.position, state.quaternion, 1.0 if state.gripper_width < 0.04 else 0.0)
            except ValueError as exc:
                return TeleopTick(None, None, [str(exc)])
            self.joy.closed = state.gripper_width < 0.04
        a = np.zeros(self.act_dim)
        fresh = self._input_stamp is not None and abs(now - self._input_stamp) <= self.operator_timeout
        if fresh:  # a silent operator device means: stand still
            a[: self.act_dim - 1] = self.joy.motion(yaw=self.act_dim == 5)
            a[:3] = np.clip(a[:3] + self.leader.motion(self.mapping.action_scale), -1.0, 1.0)
        else:
            self.joy.release()
            self.leader.release()
        m = self.mapping
        a[-1] = m.gripper_closed_value if self.joy.closed else m.gripper_open_value
        last = self.safety.last
        target, quat = m.raw_target(last.position, last.quaternion, a)
        safe = self.safety.filter(target, quat, m.gripper_command(a[-1]), measured=state.position)
        if not safe.accepted:
            return TeleopTick(None, None, safe.reasons)
        a[:3] = (safe.position - last.position) / m.action_scale  # what was executed (== a[:3] when unclipped)
        return TeleopTick(a, safe, list(safe.reasons) + ([] if fresh else ["no operator input: holding still"]))
