"""One damped-least-squares IK step: end-effector pose target -> joint position target.

Why not KOMO: a single KOMO IK solve costs ~0.3 ms, this costs ~0.02 ms, and the env runs it every control step.
The step solves  dq = J⁺(e) + (I − J⁺J)·k(q_rest − q) (damped J⁺) for position, gripper z-axis (kept pointing
down) and gripper x-axis (yaw), on a private kinematic copy of the robot so the simulated scene is never touched.
"""
from __future__ import annotations

import numpy as np
import robotic as ry


class DLSIK:
    def __init__(self, C_robot: ry.Config, ee_frame: str, q_rest: np.ndarray, damping: float = 1e-3,
                 rest_gain: float = 0.1, orient_weight: float = 0.5, iters: int = 2) -> None:
        self.C = C_robot
        self.ee = ee_frame
        self.q_rest = np.asarray(q_rest, dtype=float)
        self.damping = damping
        self.rest_gain = rest_gain
        self.orient_weight = orient_weight
        self.iters = iters
        lim = C_robot.getJointLimits()
        self.q_lo, self.q_hi = lim[0] + 0.02, lim[1] - 0.02

    def solve(self, q: np.ndarray, pos: np.ndarray, yaw: float) -> np.ndarray:
        """Joint target that moves the end effector towards (pos, yaw) with the gripper pointing down."""
        z_t = np.array([0.0, 0.0, 1.0])
        x_t = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        w = self.orient_weight
        n = len(q)
        q = np.asarray(q, dtype=float).copy()
        for _ in range(self.iters):
            self.C.setJointState(q)
            p, Jp = self.C.eval(ry.FS.position, [self.ee])
            vz, Jz = self.C.eval(ry.FS.vectorZ, [self.ee])
            vx, Jx = self.C.eval(ry.FS.vectorX, [self.ee])
            J = np.vstack([Jp, w * Jz, w * Jx])
            e = np.concatenate([pos - p, w * (z_t - vz), w * (x_t - vx)])
            # damped pseudo-inverse for the task; the rest posture only acts in its null space, so it never
            # leaves a steady-state task error
            Jp_inv = J.T @ np.linalg.inv(J @ J.T + self.damping * np.eye(J.shape[0]))
            dq = Jp_inv @ e + (np.eye(n) - Jp_inv @ J) @ (self.rest_gain * (self.q_rest - q))
            q = np.clip(q + dq, self.q_lo, self.q_hi)
        return q

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and rotation matrix at joint state q."""
        self.C.setJointState(np.asarray(q, dtype=float))
        f = self.C.getFrame(self.ee)
        return f.getPosition().copy(), f.getRotationMatrix().copy()


def home_joint_state(C_robot: ry.Config, ee_frame: str, pos: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """Joint state with the end effector at `pos`, pointing down, solved once with KOMO (exact, slower)."""
    K = ry.KOMO(C_robot, 1, 1, 0, False)
    K.addObjective([], ry.FS.position, [ee_frame], ry.OT.eq, [1e1], list(pos))
    K.addObjective([], ry.FS.vectorZ, [ee_frame], ry.OT.eq, [1e1], [0.0, 0.0, 1.0])
    K.addObjective([], ry.FS.vectorX, [ee_frame], ry.OT.eq, [1e1], [np.cos(yaw), np.sin(yaw), 0.0])
    K.addControlObjective([], 0, 1e-1)
    ret = ry.NLP_Solver(K.nlp(), verbose=0).solve()
    if not ret.feasible:
        raise RuntimeError(f"home pose {pos} is not reachable (KOMO eq={ret.eq:.3g})")
    return np.asarray(K.getPath()[0], dtype=float)
