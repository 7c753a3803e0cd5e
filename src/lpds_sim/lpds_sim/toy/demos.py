"""Emulated, imperfect human demonstrations for the multi-goal task.

Each demo picks one of the four goals uniformly and drives there like a hesitant operator: a speed
that changes every few steps (slow to brisk bursts), a heading wobble, an overshoot past the goal and
back, pauses ("hesitation"), and jitter on arrival. So the behaviour-cloned base reaches all four goals
(multimodal) but slowly and sloppily: clearly below the best achievable return.
"""
from __future__ import annotations

import numpy as np

from .multigoal import MultiGoalEnv

DEMO_VERSION = 3  # bump whenever the operator model changes: it is part of the base-policy cache key


def operator_episode(env: MultiGoalEnv, rng: np.random.Generator, goal: int) -> tuple[np.ndarray, np.ndarray]:
    """One demo: observations (T, 2) and actions (T, 2) in the env's action units."""
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    target = env.goals[goal]
    speed = rng.uniform(0.15, 1.0)                      # the operator moves in bursts: speed per segment
    overshoot = target * (1.0 + rng.uniform(0.0, 0.35))  # aim past the goal first
    heading_bias = rng.normal(0.0, 0.35)                 # curved path
    aim, pause = overshoot, 0
    observations, actions = [], []
    for t in range(env.max_steps):
        pos = env.pos
        if t % 4 == 0 and t > 0:
            speed = rng.uniform(0.15, 1.0)
        if np.linalg.norm(aim - pos) < 0.08:
            aim = target                                 # reached the overshoot point: come back
        if pause > 0:
            a = rng.normal(0.0, 0.05, 2)
            pause -= 1
        else:
            if rng.random() < 0.06:
                pause = int(rng.integers(1, 5))          # hesitation
            d = aim - pos
            dist = np.linalg.norm(d)
            ang = heading_bias * min(1.0, dist / env.goal_distance)
            rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
            v = rot @ d / max(dist, 1e-6) * min(speed, dist / env.max_step)
            a = v + rng.normal(0.0, 0.12, 2)
        a = np.clip(a, -1.0, 1.0)
        observations.append(np.array(obs, dtype=np.float32))
        actions.append(a.astype(np.float32))
        obs, _, _, trunc, _ = env.step(a)
        if trunc:
            break
    return np.stack(observations), np.stack(actions)


def make_demos(n: int = 200, seed: int = 0, env: MultiGoalEnv | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` demos, goals balanced (n/4 each, shuffled)."""
    if n < 4:
        raise ValueError(f"need at least 4 demos (one per goal), got {n}")
    env = env or MultiGoalEnv()
    rng = np.random.default_rng(seed)
    goals = rng.permutation(np.arange(n) % 4)
    return [operator_episode(env, rng, int(g)) for g in goals]
