"""Safety filter between the policy and the robot: the model is never trusted with the workspace.

It keeps the last target it let through and only ever moves from there: non-finite input is rejected (the robot
holds the last safe target), positions are clipped to a workspace box, and the step from the last safe target is
limited in length. Every rejection or clip carries a reason so the node can log why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SafetyLimits:
    box_min: tuple[float, float, float] = (0.25, -0.35, 0.02)
    box_max: tuple[float, float, float] = (0.75, 0.35, 0.55)
    max_step: float = 0.02  # metres per control tick
    max_lead: float = 0.0  # > 0: a target never leads the measured pose by more than this (no wind-up when blocked)
    gripper_min: float = 0.0
    gripper_max: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.box_min, float), np.asarray(self.box_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)):
            raise ValueError(f"workspace box must be two finite xyz triples, got {self.box_min} / {self.box_max}")
        if np.any(lo >= hi):
            raise ValueError(f"workspace box_min {self.box_min} must be below box_max {self.box_max} on every axis")
        if not (np.isfinite(self.max_step) and self.max_step > 0):
            raise ValueError(f"max_step must be a positive finite distance in metres, got {self.max_step}")
        if not (np.isfinite(self.max_lead) and self.max_lead >= 0):
            raise ValueError(f"max_lead must be a finite distance >= 0 in metres (0: off), got {self.max_lead}")
        if not self.gripper_min < self.gripper_max:
            raise ValueError("gripper_min must be below gripper_max")


@dataclass
class SafeTarget:
    position: np.ndarray  # (3,) metres, inside the box
    quaternion: np.ndarray  # (4,) x y z w, unit
    gripper: float
    accepted: bool  # False: the input was rejected and this is the held last safe target
    reasons: list[str] = field(default_factory=list)


def _finite(x: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(x)))


class SafetyFilter:
    """Turns raw targets into safe ones; `anchor` must be called with the measured pose before the first target."""

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self._lo = np.asarray(limits.box_min, float)
        self._hi = np.asarray(limits.box_max, float)
        self._last: SafeTarget | None = None
        self._step_budget = limits.max_step  # the next step's limit (shorter right after anchoring outside the box)

    @property
    def anchored(self) -> bool:
        return self._last is not None

    @property
    def last(self) -> SafeTarget | None:
        return self._last

    def outside(self, position) -> float:
        """Distance (m) of a point from the workspace box; 0 inside."""
        p = np.asarray(position, float).reshape(-1)
        return float(np.linalg.norm(p - np.clip(p, self._lo, self._hi)))

    def anchor(self, position, quaternion, gripper: float = 0.0) -> SafeTarget:
        """Start from the measured pose (clipped into the box); refuses non-finite poses and poses more than one
        step outside the box. The first step after an anchor is shortened by the clipping distance, so the first
        target is never more than max_step from where the robot is."""
        p, q = np.asarray(position, float).reshape(-1), np.asarray(quaternion, float).reshape(-1)
        if p.shape != (3,) or q.shape != (4,) or not _finite(p) or not _finite(q) or np.linalg.norm(q) < 1e-6:
            raise ValueError(f"cannot anchor the safety filter on a bad pose: position={p}, quaternion={q}")
        d = self.outside(p)
        if d >= self.limits.max_step:
            raise ValueError(f"measured pose {np.round(p, 3).tolist()} is {d:.3f} m outside the workspace box "
                             f"(more than max_step {self.limits.max_step} m): move the robot into the box")
        g = float(np.clip(gripper, self.limits.gripper_min, self.limits.gripper_max)) if np.isfinite(gripper) else 0.0
        self._last = SafeTarget(np.clip(p, self._lo, self._hi), q / np.linalg.norm(q), g, True)
        self._step_budget = self.limits.max_step - d
        return self._last

    def reset(self) -> None:
        self._last = None

    def filter(self, position, quaternion, gripper: float, measured=None) -> SafeTarget:
        if self._last is None:
            raise RuntimeError("safety filter is not anchored: call anchor(measured pose) before filtering targets")
        last = self._last
        p = np.asarray(position, float).reshape(-1)
        q = np.asarray(quaternion, float).reshape(-1)
        reasons: list[str] = []
        if p.shape != (3,) or q.shape != (4,):
            reasons.append(f"wrong target shape position{p.shape} quaternion{q.shape}")
        elif not _finite(p) or not _finite(q) or not np.isfinite(gripper):
            reasons.append("non-finite target (NaN/Inf)")
        elif np.linalg.norm(q) < 1e-6:
            reasons.append("zero quaternion")
        if reasons:
            return SafeTarget(last.position.copy(), last.quaternion.copy(), last.gripper, False, reasons)
        q = q / np.linalg.norm(q)
        clipped = np.clip(p, self._lo, self._hi)
        if not np.array_equal(clipped, p):
            reasons.append(f"clipped to workspace box: {np.round(p, 4).tolist()} -> {np.round(clipped, 4).tolist()}")
        if self.limits.max_lead > 0 and measured is not None:
            m = np.asarray(measured, float)
            lead = clipped - m
            n = float(np.linalg.norm(lead))
            if n > self.limits.max_lead and np.all(np.isfinite(m)):
                clipped = np.clip(m + lead * (self.limits.max_lead / n), self._lo, self._hi)
                reasons.append(f"target led the measured pose by {n:.3f} m (limit {self.limits.max_lead} m)")
        step = clipped - last.position
        dist = float(np.linalg.norm(step))
        budget, self._step_budget = self._step_budget, self.limits.max_step
        if dist > budget:
            clipped = last.position + step * (budget / dist)
            clipped = np.clip(clipped, self._lo, self._hi)  # box is convex: stays inside, never longer
            reasons.append(f"step {dist:.4f} m limited to {budget:.4f} m")
        g = float(np.clip(gripper, self.limits.gripper_min, self.limits.gripper_max))
        self._last = SafeTarget(clipped, q, g, True, reasons)
        return self._last
