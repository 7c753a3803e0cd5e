"""The Franka adapter's decisions, without ROS: gripper hysteresis, homing at start, goal timeouts, holds, error
recovery after a reflex, cancelling on stop. The node (franka_adapter_node) only turns ROS events into calls here
and executes the returned commands, so every robot-side branch is testable with plain numbers and a fake clock.

Holding = forwarding nothing (arm targets, gripper commands): the controller keeps the last target. A hold ends by
`resume()` (the node's ~/start) or, for a reflex, after a successful automatic error recovery.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ROBOT_MODE_REFLEX = 4  # franka_msgs/msg/FrankaRobotState.ROBOT_MODE_*
ROBOT_MODE_USER_STOPPED = 5
GRIPPER_KINDS = ("grasp", "move", "homing")


class GripperHysteresis:
    """0..1 command -> 'close' / 'open' transitions only (franka_gripper actions take ~1 s; never spam them)."""

    def __init__(self, close_above: float = 0.6, open_below: float = 0.4):
        if not open_below < close_above:
            raise ValueError("gripper_open_below must be below gripper_close_above")
        self.close_above, self.open_below, self.closed = close_above, open_below, False

    def update(self, cmd: float) -> str | None:
        if not self.closed and cmd > self.close_above:
            self.closed = True
            return "close"
        if self.closed and cmd < self.open_below:
            self.closed = False
            return "open"
        return None


@dataclass(frozen=True)
class Send:
    kind: str  # grasp | move | homing | recovery | trajectory
    goal_id: int


@dataclass(frozen=True)
class Cancel:
    kind: str
    goal_id: int


@dataclass(frozen=True)
class Log:
    level: str  # info | warning | error
    text: str


@dataclass
class _Goal:
    kind: str
    goal_id: int
    sent_at: float
    accepted_at: float | None = None


@dataclass
class Timeouts:
    response: float = 2.0  # seconds for a server to accept/reject a goal
    gripper: float = 5.0  # grasp / move result
    homing: float = 15.0
    recovery: float = 10.0
    trajectory: float = 1.0  # result of the newest trajectory goal, after its own duration


@dataclass
class AdapterCore:
    close_above: float = 0.6
    open_below: float = 0.4
    home_at_start: bool = False
    auto_recover: bool = True
    max_recoveries: int = 3  # automatic recoveries before the operator must call ~/start
    trajectory_time: float = 0.1
    timeouts: Timeouts = field(default_factory=Timeouts)
    names: dict[str, str] = field(default_factory=dict)  # kind -> action name, for log lines

    def __post_init__(self) -> None:
        self.hyst = GripperHysteresis(self.close_above, self.open_below)
        self.hold_reason: str | None = None
        self.goals: dict[str, _Goal] = {}  # channel (gripper | arm | recovery) -> the goal in flight
        self.recoveries = 0
        self._next_id = 0
        self._reflex = False  # a reflex was seen and is not yet recovered
        self._recovered = False  # recovery succeeded; waiting for a non-reflex robot mode to resume

    # ------------------------------------------------------------------ helpers
    def _name(self, kind: str) -> str:
        return self.names.get(kind, kind)

    @staticmethod
    def _channel(kind: str) -> str:
        return "gripper" if kind in GRIPPER_KINDS else ("arm" if kind == "trajectory" else "recovery")

    def _send(self, kind: str, now: float) -> Send:
        self._next_id += 1
        self.goals[self._channel(kind)] = _Goal(kind, self._next_id, now)
        return Send(kind, self._next_id)

    def _current(self, kind: str, goal_id: int) -> _Goal | None:
        g = self.goals.get(self._channel(kind))
        return g if g is not None and g.goal_id == goal_id else None

    def _cancel_motion(self) -> list:
        out = []
        for ch in ("gripper", "arm"):
            g = self.goals.pop(ch, None)
            if g is not None:
                out.append(Cancel(g.kind, g.goal_id))
        return out

    def _hold(self, reason: str) -> list:
        first = self.hold_reason is None
        if first:
            self.hold_reason = reason
        return [Log("error", f"{reason}: holding; call ~/start to resume")] if first else [Log("error", reason)]

    @property
    def holding(self) -> bool:
        return self.hold_reason is not None

    # ------------------------------------------------------------------ events
    def start(self, now: float) -> list:
        """Node start: home the gripper first if asked (gripper commands are ignored until it is done)."""
        return [self._send("homing", now)] if self.home_at_start else []

    def on_gripper_command(self, cmd: float, now: float) -> list:
        if self.holding or "gripper" in self.goals or cmd != cmd:  # NaN: ignored
            return []  # decide again on the next command once the running goal is done
        action = self.hyst.update(float(cmd))
        if action is None:
            return []
        return [self._send("grasp" if action == "close" else "move", now)]

    def on_target(self, now: float, use_action: bool) -> list:
        """A new arm target: forward it (a new trajectory goal replaces the running one) unless holding."""
        if self.holding:
            return []
        return [self._send("trajectory", now)] if use_action else [Send("trajectory", 0)]

    def on_response(self, kind: str, goal_id: int, accepted: bool, now: float) -> list:
        g = self._current(kind, goal_id)
        if g is None:  # an answer for a goal already replaced, cancelled or timed out: it must not run
            return [Cancel(kind, goal_id)] if accepted else []
        if accepted:
            g.accepted_at = now
            return []
        del self.goals[self._channel(kind)]
        if kind == "recovery":
            return self._hold(f"{self._name(kind)} rejected the recovery goal; clear the error on the robot")
        return self._hold(f"{self._name(kind)} rejected the {kind} goal")

    def on_result(self, kind: str, goal_id: int, success: bool, error: str, now: float) -> list:
        g = self._current(kind, goal_id)
        if g is None:
            return []
        del self.goals[self._channel(kind)]
        if kind == "recovery":
            if not success:
                return self._hold(f"error recovery failed ({error or 'aborted'}); clear the error on the robot")
            self.recoveries += 1
            self._recovered = True
            return [Log("info", f"error recovery {self.recoveries}/{self.max_recoveries} succeeded")]
        if kind == "homing":
            if not success:
                return self._hold(f"gripper homing failed ({error or 'aborted'})")
            return [Log("info", "gripper homed")]
        if kind == "trajectory":
            return [] if success else self._hold(f"{self._name(kind)} aborted the trajectory ({error})")
        if not success:  # a grasp that missed the object (width outside epsilon) is not a fault: keep going
            return [Log("warning", f"gripper {kind} did not succeed: {error or 'no reason given'}")]
        return []

    def on_robot_mode(self, mode: int, now: float) -> list:
        if mode == ROBOT_MODE_REFLEX:
            if self._reflex:
                return []
            self._reflex, self._recovered = True, False
            out = self._cancel_motion()
            if self.hold_reason is None:
                self.hold_reason = "reflex"
            if not self.auto_recover:
                return out + [Log("error", "robot reflex (auto_recover off): holding; recover on the robot, "
                                           "then call ~/start")]
            if self.recoveries >= self.max_recoveries:
                return out + [Log("error", f"robot reflex again after {self.recoveries} automatic recoveries: "
                                           "holding; check the robot and call ~/start")]
            return out + [Log("warning", "robot reflex: cancelling goals, calling error recovery"),
                          self._send("recovery", now)]
        if mode == ROBOT_MODE_USER_STOPPED and self.hold_reason != "user stop":
            out = self._cancel_motion()
            self.hold_reason = "user stop"
            return out + [Log("error", "user stop pressed: holding; release it, then call ~/start")]
        if not self._reflex or "recovery" in self.goals:
            return []  # no reflex, or the recovery's result is still on its way
        recovered, self._reflex, self._recovered = self._recovered, False, False
        if not recovered:
            return [Log("warning", "robot left the reflex outside the adapter: still holding; call ~/start")]
        if self.hold_reason == "reflex":
            self.hold_reason = None
            return [Log("info", "robot recovered from the reflex: resuming")]
        return []

    def tick(self, now: float) -> list:
        """Goal timeouts: a server that never accepts, or a goal that never finishes -> cancel + hold."""
        out: list = []
        for ch, g in list(self.goals.items()):
            if g.accepted_at is None:
                if now - g.sent_at > self.timeouts.response:
                    del self.goals[ch]
                    out.append(Cancel(g.kind, g.goal_id))  # not sent yet: dropped; answered later: cancelled
                    out += self._hold(f"{self._name(g.kind)}: no answer to the {g.kind} goal within "
                                      f"{self.timeouts.response:g} s (is the server running?)")
                continue
            limit = {"grasp": self.timeouts.gripper, "move": self.timeouts.gripper, "homing": self.timeouts.homing,
                     "recovery": self.timeouts.recovery,
                     "trajectory": self.trajectory_time + self.timeouts.trajectory}[g.kind]
            if now - g.accepted_at > limit:
                del self.goals[ch]
                out.append(Cancel(g.kind, g.goal_id))
                out += self._hold(f"{self._name(g.kind)}: {g.kind} goal not done within {limit:g} s, cancelled")
        return out

    def stop(self, now: float) -> list:
        """~/stop: cancel the gripper and arm goals in flight and hold until ~/start."""
        out = self._cancel_motion()
        self.hold_reason = "stopped"
        return out + [Log("warning", f"stopped ({len(out)} goal(s) cancelled): holding; call ~/start to resume")]

    def resume(self, now: float) -> tuple[bool, str]:
        """~/start: end a hold (not while a reflex is unrecovered or a recovery is running)."""
        if "recovery" in self.goals:
            return False, "error recovery still running"
        if self._reflex and not self._recovered:
            return False, "robot is in a reflex: recover it first (auto_recover or the robot's error recovery)"
        self.hold_reason, self.recoveries = None, 0
        self._reflex = self._recovered = False
        return True, "resumed"
