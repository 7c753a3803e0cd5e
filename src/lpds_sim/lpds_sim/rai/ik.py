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
        """Joint target that moves the end effector towards (pos, yaw) with the gripper pointing down.

        Per iteration: dq = J⁺e + (I − J⁺J)v with J⁺ = Jᵀ(JJᵀ + λI)⁻¹ and v = k(q_rest − q). Written as
        dq = Jᵀ(A⁻¹e − A⁻¹Jv) + v with A = JJᵀ + λI, it needs one 9x9 solve with two right-hand sides instead of an
        explicit inverse and a 7x7 null-space projector (same result to rounding, ~3x less numpy overhead: the env
        calls this every control step).
        """
        w = self.orient_weight
        cy, sy = np.cos(yaw), np.sin(yaw)
        pos = np.asarray(pos, dtype=float)
        q = np.array(q, dtype=float)  # copy
        rhs = np.empty((9, 2))
        for _ in range(self.iters):
            self.C.setJointState(q)
            p, Jp = self.C.eval(ry.FS.position, [self.ee])
            vz, Jz = self.C.eval(ry.FS.vectorZ, [self.ee])
            vx, Jx = self.C.eval(ry.FS.vectorX, [self.ee])
            J = np.concatenate((Jp, w * Jz, w * Jx))
            rhs[0:3, 0] = pos - p
            rhs[3:6, 0] = (-w * vz[0], -w * vz[1], w * (1.0 - vz[2]))          # w·(z_t − vz), z_t = (0, 0, 1)
            rhs[6:9, 0] = (w * (cy - vx[0]), w * (sy - vx[1]), -w * vx[2])    # w·(x_t − vx), x_t = (cos, sin, 0)
            v = self.rest_gain * (self.q_rest - q)
            rhs[:, 1] = J @ v
            A = J @ J.T
            A.flat[::10] += self.damping
            y = np.linalg.solve(A, rhs)
            # damped pseudo-inverse for the task; the rest posture only acts in its null space, so it never
            # leaves a steady-state task error
            q = np.clip(q + J.T @ (y[:, 0] - y[:, 1]) + v, self.q_lo, self.q_hi)
        return q

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and rotation matrix at joint state q."""
        self.C.setJointState(np.asarray(q, dtype=float))
        f = self.C.getFrame(self.ee)
        return f.getPosition().copy(), f.getRotationMatrix().copy()


def home_joint_state(C_robot: ry.Config, ee_frame: str, pos: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """Joint state with the end effector at `pos`, pointing down, solved once with KOMO (exact, slower).

    KOMO's solver draws its start from RAI's global random generator, which every earlier solve in the process has
    advanced: the home pose (and so every episode) would depend on what ran before. Seeding it here makes the home
    pose the same for every env in every process (the arm is redundant, so the solutions differ by up to 0.015 rad).
    """
    ry.rnd_seed(0)
    K = ry.KOMO(C_robot, 1, 1, 0, False)
    K.addObjective([], ry.FS.position, [ee_frame], ry.OT.eq, [1e1], list(pos))
    K.addObjective([], ry.FS.vectorZ, [ee_frame], ry.OT.eq, [1e1], [0.0, 0.0, 1.0])
    K.addObjective([], ry.FS.vectorX, [ee_frame], ry.OT.eq, [1e1], [np.cos(yaw), np.sin(yaw), 0.0])
    K.addControlObjective([], 0, 1e-1)
    ret = ry.NLP_Solver(K.nlp(), verbose=0).solve()
    if not ret.feasible:
        raise RuntimeError(f"home pose {pos} is not reachable (KOMO eq={ret.eq:.3g})")
    return np.asarray(K.getPath()[0], dtype=float)
