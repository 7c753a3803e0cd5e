"""FR3/Panda forward kinematics (Franka's modified DH parameters) and a damped-least-squares IK step.

Used by the franka adapter when the robot runs a JointTrajectoryController instead of a Cartesian impedance
controller. TCP = flange + Franka Hand offset (0.1034 m, rotated -45 deg about z).
"""
from __future__ import annotations

import numpy as np

# (a, d, alpha) per joint, Craig convention: T = RotX(alpha) TransX(a) RotZ(theta) TransZ(d)
DH = [(0.0, 0.333, 0.0), (0.0, 0.0, -np.pi / 2), (0.0, 0.316, np.pi / 2), (0.0825, 0.0, np.pi / 2),
      (-0.0825, 0.384, -np.pi / 2), (0.0, 0.0, np.pi / 2), (0.088, 0.0, np.pi / 2)]
FLANGE_D = 0.107
HAND_D = 0.1034
Q_MIN = np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159])
Q_MAX = np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159])
HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
JOINT_NAMES = [f"fr3_joint{i}" for i in range(1, 8)]


def _link(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])


def fk(q: np.ndarray, tcp: bool = True) -> np.ndarray:
    """4x4 pose of the TCP (or the flange) in the base frame."""
    T = np.eye(4)
    for (a, d, alpha), th in zip(DH, q):
        T = T @ _link(a, d, alpha, th)
    T = T @ _link(0.0, FLANGE_D, 0.0, 0.0)
    if tcp:
        T = T @ _link(0.0, HAND_D, 0.0, -np.pi / 4)
    return T


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _pose_error(T: np.ndarray, p: np.ndarray, R: np.ndarray) -> np.ndarray:
    dR = R @ T[:3, :3].T
    rot = 0.5 * np.array([dR[2, 1] - dR[1, 2], dR[0, 2] - dR[2, 0], dR[1, 0] - dR[0, 1]])
    return np.concatenate([p - T[:3, 3], rot])


def ik(position: np.ndarray, quaternion: np.ndarray, q0: np.ndarray, iters: int = 50, damping: float = 1e-2,
       tol: float = 1e-4) -> tuple[np.ndarray, float]:
    """Joint positions reaching the pose, starting from q0 (the measured joints); returns (q, residual norm)."""
    q = np.clip(np.asarray(q0, float).copy(), Q_MIN, Q_MAX)
    R = quat_to_matrix(quaternion)
    p = np.asarray(position, float)
    err = _pose_error(fk(q), p, R)
    for _ in range(iters):
        if np.linalg.norm(err) < tol:
            break
        J = np.zeros((6, 7))
        for j in range(7):
            dq = np.zeros(7)
            dq[j] = 1e-6
            J[:, j] = -(_pose_error(fk(q + dq), p, R) - err) / 1e-6
        step = J.T @ np.linalg.solve(J @ J.T + damping ** 2 * np.eye(6), err)
        q = np.clip(q + step, Q_MIN, Q_MAX)
        err = _pose_error(fk(q), p, R)
    return q, float(np.linalg.norm(err))
