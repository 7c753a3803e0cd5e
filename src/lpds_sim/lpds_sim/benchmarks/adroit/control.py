"""The Adroit hand as a scripted operator drives it: actuator layout, servo, inverse kinematics, smooth motions.

Everything is read from the env's MuJoCo model, not hard-coded: which actuator drives which joint (the arm's
slide joints ART*, its rotations ARR*, the wrist WR*, the fingers FF/MF/RF/LF/TH), the control ranges and the
actuators' affine gains. An Adroit action is the normalised control `(ctrl - mid) / half_range` in [-1, 1], and each
actuator pushes `gain·ctrl + bias·q` (gainprm[0], biasprm[1]): a spring towards `q = -gain/bias · ctrl`. The arm's
springs are soft (damping 20, a period of ~1 s under the arm's mass) and ARTy carries the arm's weight, so a plain
target lags and sags. `Hand.servo` therefore asks, like a human on a tracker leading the motion, for the control that
holds the planned joint trajectory: gravity (MuJoCo's qfrc_bias), the spring's rest point, a proportional
correction of the remaining error and (scaled by the caller, see `script.FF_VEL`) the mass-matrix term of the
planned acceleration and the joint damping of the planned velocity. It reads positions only (no measured
velocity), so the demos stay close to a function of what a policy sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import mujoco
import numpy as np

KP = 2.0  # the servo's extra stiffness on the position error, in multiples of the actuator's own spring
DT_FALLBACK = 0.01  # s per env step when the env does not say (Adroit: frame_skip 5 × 2 ms)


def min_jerk(s: float) -> tuple[float, float, float]:
    """Position, velocity and acceleration (per unit of s) of the minimum-jerk blend 0→1 at phase s ∈ [0, 1]."""
    s = float(np.clip(s, 0.0, 1.0))
    return s**3 * (10 - 15 * s + 6 * s * s), 30 * s * s * (1 - s) ** 2, 60 * s * (1 - s) * (1 - 2 * s)


@dataclass
class Motion:
    """A minimum-jerk move of some joints from `q0` to `q1` over `steps` env steps (a human's smooth reach)."""

    q0: np.ndarray
    q1: np.ndarray
    steps: int

    def at(self, t: float, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qdot, qddot) `t` steps into the move; held at q1 afterwards."""
        s, sd, sdd = min_jerk(t / max(self.steps, 1))
        span, dur = self.q1 - self.q0, max(self.steps, 1) * dt
        return self.q0 + s * span, sd * span / dur, sdd * span / dur**2


class Hand:
    """Actuators, joints and sites of one Adroit env, with the servo and inverse kinematics a script needs."""

    def __init__(self, env: Any):
        u = env.unwrapped
        self.model, self.data = u.model, u.data
        m = self.model
        self.dt = float(getattr(u, "dt", DT_FALLBACK))
        joints = m.actuator_trnid[:, 0]
        self.names = [m.joint(int(j)).name for j in joints]  # the joint each actuator drives
        self.qadr = m.jnt_qposadr[joints].copy()
        self.dadr = m.jnt_dofadr[joints].copy()
        self.gain = m.actuator_gainprm[:, 0].copy()
        self.bias = m.actuator_biasprm[:, 1].copy()
        self.lo, self.hi = m.actuator_ctrlrange[:, 0].copy(), m.actuator_ctrlrange[:, 1].copy()
        self.jrange = m.jnt_range[joints].copy()
        self.damping = m.dof_damping[self.dadr].copy()
        self._scratch = mujoco.MjData(m)
        self._M = np.zeros((m.nv, m.nv))

    # --- layout ---------------------------------------------------------------------------------------------
    def index(self, *prefixes: str) -> np.ndarray:
        """Actuator indices whose joint name starts with one of `prefixes` (e.g. "ART" for the arm's slides)."""
        return np.array([i for i, n in enumerate(self.names) if n.startswith(prefixes)], dtype=int)

    def joint(self, name: str) -> int:
        """The actuator index of joint `name`."""
        return self.names.index(name)

    def q(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.data.qpos[self.qadr[np.asarray(idx)]].copy()

    def site(self, name: str) -> np.ndarray:
        return self.data.site_xpos[self.model.site(name).id].copy()

    def body(self, name: str) -> np.ndarray:
        return self.data.xpos[self.model.body(name).id].copy()

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A body's world position and rotation matrix now."""
        b = self.model.body(name).id
        return self.data.xpos[b].copy(), self.data.xmat[b].reshape(3, 3).copy()

    def clip_joints(self, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.jrange[idx, 0], self.jrange[idx, 1])

    # --- control --------------------------------------------------------------------------------------------
    def servo(self, idx: np.ndarray, q: np.ndarray, qd: np.ndarray | float = 0.0, qdd: np.ndarray | float = 0.0,
              kp: float = KP) -> np.ndarray:
        """Controls of actuators `idx` that hold/move their joints along (q, qd, qdd) (see the module doc)."""
        idx = np.asarray(idx)
        m, d = self.model, self.data
        mujoco.mj_fullM(m, self._M, d.qM)
        dof = self.dadr[idx]
        qdd = np.broadcast_to(np.asarray(qdd, float), q.shape)
        qd = np.broadcast_to(np.asarray(qd, float), q.shape)
        force = (self._M[np.ix_(dof, dof)] @ qdd + self.damping[idx] * qd + d.qfrc_bias[dof]
                 - self.bias[idx] * q - kp * self.bias[idx] * (q - self.q(idx)))
        return force / self.gain[idx]

    def target(self, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Controls that put the actuators' springs' rest points at joint positions `q` (the fingers' way)."""
        idx = np.asarray(idx)
        return -self.bias[idx] * np.asarray(q, float) / self.gain[idx]

    def action(self, ctrl: np.ndarray) -> np.ndarray:
        """Controls → the env's normalised action in [-1, 1]."""
        mid, half = (self.hi + self.lo) / 2, (self.hi - self.lo) / 2
        return np.clip((ctrl - mid) / half, -1.0, 1.0).astype(np.float32)

    # --- kinematics -----------------------------------------------------------------------------------------
    def ik(self, site: str, target: np.ndarray, idx: np.ndarray, fixed: dict[int, float] | None = None,
           iters: int = 30, damping: float = 1e-3) -> np.ndarray:
        """Joint positions of actuators `idx` that put `site` at `target` (damped least squares on a scratch copy
        of the current state, within the joint ranges); `fixed` maps actuator indices to values held meanwhile."""
        m, s = self.model, self._scratch
        s.qpos[:] = self.data.qpos
        for i, v in (fixed or {}).items():
            s.qpos[self.qadr[i]] = v
        idx = np.asarray(idx)
        sid = m.site(site).id
        jac = np.zeros((3, m.nv))
        for _ in range(iters):
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            err = np.asarray(target, float) - s.site_xpos[sid]
            if np.linalg.norm(err) < 1e-4:
                break
            mujoco.mj_jacSite(m, s, jac, None, sid)
            J = jac[:, self.dadr[idx]]
            dq = J.T @ np.linalg.solve(J @ J.T + damping * np.eye(3), err)
            s.qpos[self.qadr[idx]] = self.clip_joints(idx, s.qpos[self.qadr[idx]] + dq)
        return s.qpos[self.qadr[idx]].copy()

    def site_at(self, site: str, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Where `site` would be with actuators `idx` at `q` (the rest of the state as it is)."""
        return self._posed(idx, q).site_xpos[self.model.site(site).id].copy()

    def body_pose_at(self, name: str, idx: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where body `name` would be (position, rotation matrix) with actuators `idx` at `q` (the rest as it is):
        for placing points of a held tool, which moves with the palm."""
        s = self._posed(idx, q)
        b = self.model.body(name).id
        return s.xpos[b].copy(), s.xmat[b].reshape(3, 3).copy()

    def _posed(self, idx: np.ndarray, q: np.ndarray) -> mujoco.MjData:
        """The scratch state: now, with actuators `idx` at `q`, its kinematics computed."""
        s = self._scratch
        s.qpos[:] = self.data.qpos
        s.qpos[self.qadr[np.asarray(idx)]] = q
        mujoco.mj_kinematics(self.model, s)
        return s
