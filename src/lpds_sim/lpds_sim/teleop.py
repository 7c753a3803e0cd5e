"""Emulated teleoperation: a scripted operator that follows KOMO plans with human-like variation.

The operator emits the env's own action format (`[dx, dy, dz, (dyaw,) gripper]` in [-1, 1]) once per control step,
so recorded demos are (obs, action) pairs of the env, and the same object is a closed-loop policy for evaluation
(`policy(obs) -> action`, `policy.reset()` after `env.reset()`). It reads privileged simulator state (object poses,
commanded end-effector target) through `env.unwrapped`, as a human operator sees the scene.

Human-like variation (`OperatorStyle`, seeded): offsets on intermediate waypoints, a different speed per segment,
pauses at phase changes and short hesitations, a detour-then-correct on the final approach, and hand tremor
(small action noise away from contact). Closed loop: a missed grasp or a dropped object triggers a re-plan.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

OPEN, CLOSE = 1.0, -1.0


@dataclass
class OperatorStyle:
    waypoint_std: float = 0.01          # m, offset on intermediate (non-contact) waypoints
    speed_range: tuple[float, float] = (0.55, 1.0)  # fraction of the env's max speed, drawn per segment
    pause_prob: float = 0.35            # chance of a pause at each phase change
    pause_steps: tuple[int, int] = (1, 4)
    hesitate_prob: float = 0.03         # chance per step of a one-step stop mid-motion
    detour_prob: float = 0.35           # chance of aiming off target on the final approach, then correcting
    detour_std: float = 0.012           # m
    tremor_std: float = 0.04            # action-units noise on free-space motion
    enabled: bool = True

    @classmethod
    def exact(cls) -> "OperatorStyle":
        return cls(enabled=False)


@dataclass
class Segment:
    """Reach `waypoints` in order with the gripper held at `gripper`; then wait `wait_steps` (e.g. for the gripper)."""
    waypoints: np.ndarray               # (N, 3) world positions of the end effector
    gripper: float                      # OPEN or CLOSE while moving
    label: str
    tol: float = 0.01                   # m, distance at which an intermediate waypoint counts as reached
    final_tol: float = 0.006            # m, measured-EE tolerance for the last waypoint
    contact: bool = False               # no tremor / offsets near contact
    wait_steps: int = 0
    yaw: float | None = None            # target yaw (only for envs with use_yaw)
    speed: float = 1.0                  # filled in by the operator (style)


class ScriptedOperator:
    """Executes a plan of `Segment`s; subclasses build the plan (`make_plan`) and watch for failures (`monitor`)."""

    max_replans = 3

    def __init__(self, env: gym.Env, style: OperatorStyle | None = None, seed: int | None = None) -> None:
        self.env = env
        self.u = env.unwrapped
        self.style = style or OperatorStyle()
        self.seed = 0 if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.max_step = self.u.max_lin_speed / self.u.control_hz
        self.max_yaw_step = self.u.max_yaw_rate / self.u.control_hz
        self.plan: list[Segment] = []
        self.replans = 0
        self.planner = ""

    # ---- subclass API
    def make_plan(self) -> list[Segment]:
        raise NotImplementedError

    def monitor(self, seg: Segment) -> bool:
        """Return True when the current plan has failed and must be re-made (e.g. the object slipped)."""
        return False

    # ---- policy API
    def reset(self, seed: int | None = None) -> None:
        """Call after `env.reset()`. The variation is re-seeded from (operator seed, episode start), so every
        episode is reproducible on its own, whatever ran before it."""
        if seed is not None:
            self.seed = seed
        start = np.round(np.asarray(getattr(self.u, "start_xy", np.zeros(2))) * 1e6).astype(np.int64) % (2 ** 31)
        self.rng = np.random.default_rng([self.seed, *start.tolist()])
        self.replans = 0
        self._new_plan()

    def __call__(self, obs=None) -> np.ndarray:
        return self.act()

    # ---- execution
    def _new_plan(self) -> None:
        self.plan = self.make_plan()
        st = self.style
        for seg in self.plan:
            seg.speed = float(self.rng.uniform(*st.speed_range)) if st.enabled else 1.0
            if st.enabled and not seg.contact and len(seg.waypoints) > 1:
                seg.waypoints = seg.waypoints.copy()
                seg.waypoints[:-1] += self.rng.normal(0, st.waypoint_std, seg.waypoints[:-1].shape)
        self.seg_i, self.wp_i, self.wait, self.pause = 0, 0, 0, 0
        self.settle = 0
        self._maybe_pause()

    def _maybe_pause(self) -> None:
        st = self.style
        if st.enabled and self.rng.random() < st.pause_prob:
            self.pause = int(self.rng.integers(st.pause_steps[0], st.pause_steps[1] + 1))

    def _action(self, delta: np.ndarray, grip: float, yaw_target: float | None) -> np.ndarray:
        a = np.clip(delta / self.max_step, -1.0, 1.0)
        out = [a]
        if self.u.use_yaw:
            dyaw = 0.0 if yaw_target is None else (yaw_target - self.u.ee_target_yaw) / self.max_yaw_step
            out.append([np.clip(dyaw, -1.0, 1.0)])
        out.append([grip])
        return np.concatenate(out).astype(np.float32)

    def hold(self, grip: float | None = None) -> np.ndarray:
        g = grip if grip is not None else (OPEN if self.u.gripper_open_cmd else CLOSE)
        return self._action(np.zeros(3), g, None)

    def done(self) -> bool:
        return self.seg_i >= len(self.plan)

    def act(self) -> np.ndarray:
        if self.done():
            return self.hold(OPEN)
        seg = self.plan[self.seg_i]
        if self.monitor(seg):
            if self.replans < self.max_replans:
                self.replans += 1
                self._new_plan()
                seg = self.plan[self.seg_i] if not self.done() else None
                if seg is None:
                    return self.hold(OPEN)
            # else: keep going and let the episode run out
        st = self.style
        if self.pause > 0:
            self.pause -= 1
            return self.hold(seg.gripper)
        if self.wp_i >= len(seg.waypoints):  # moving done: waiting (gripper)
            if self.wait < seg.wait_steps:
                self.wait += 1
                return self._action(np.zeros(3), seg.gripper, seg.yaw)
            self.seg_i += 1
            self.wp_i, self.wait = 0, 0
            self._maybe_pause()
            return self.act() if not self.done() else self.hold(OPEN)
        if st.enabled and not seg.contact and self.rng.random() < st.hesitate_prob:
            return self.hold(seg.gripper)
        tgt = self.u.ee_target
        ee = self.u.ee_pose()[0]
        w = seg.waypoints[self.wp_i]
        last = self.wp_i == len(seg.waypoints) - 1
        d = w - tgt
        step = seg.speed * self.max_step
        n = np.linalg.norm(d)
        if n > step:
            d = d * (step / n)
        elif not last:
            self.wp_i += 1
        else:
            # commanded target is at the final waypoint: wait until the arm is there too (or give up waiting)
            self.settle += 1
            if np.linalg.norm(w - ee) < seg.final_tol or self.settle > 8:
                self.wp_i += 1
                self.settle = 0
        a = self._action(d, seg.gripper, seg.yaw)
        if st.enabled and not seg.contact and st.tremor_std > 0:
            a[:3] = np.clip(a[:3] + self.rng.normal(0, st.tremor_std, 3), -1, 1)
        return a


def path_to_waypoints(points: np.ndarray, spacing: float = 0.03) -> np.ndarray:
    """Thin a dense end-effector path to waypoints about `spacing` apart, always keeping the last point."""
    out = [points[0]]
    for p in points[1:]:
        if np.linalg.norm(p - out[-1]) >= spacing:
            out.append(p)
    if np.linalg.norm(points[-1] - out[-1]) > 1e-6:
        out.append(points[-1])
    return np.array(out[1:] if len(out) > 1 else out)
