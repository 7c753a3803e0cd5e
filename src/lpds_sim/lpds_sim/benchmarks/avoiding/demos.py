"""A scripted, human-like operator for Avoiding and its demonstrations covering all 24 paths.

D3IL's Avoiding data are human teleoperation; here an operator drives the desired position through the gaps of a
chosen path: per row it approaches the gap's crossing point (a lateral offset drawn per row), passes the row
nearly straight ("threading the needle") and moves diagonally through the free lane to the next row. Human-like
variation: a speed per segment (60-100 % of the action limit), a per-episode heading wobble, hand tremor on
every step, hesitations (a few steps of no motion) and the odd jerk of a slightly wrong direction that is then
corrected. Only successful episodes are kept (a failed try of a mode is repeated with fresh randomness, so the
mode counts stay equal); `operator_stats` reports the operator's success rate over all tries.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .env import MAX_ACTION, AvoidingEnv
from .geometry import MID_X, N_MODES, OFFSET, ROW_Y, mode_gaps

DEMO_VERSION = 1  # bump whenever the operator changes: part of the cached base's key
# x of each gap's centre line, row by row (left to right)
GAP_X = ((MID_X - OFFSET, MID_X + OFFSET),
         (MID_X - 2 * OFFSET, MID_X, MID_X + 2 * OFFSET),
         (MID_X - 3 * OFFSET, MID_X - OFFSET, MID_X + OFFSET, MID_X + 3 * OFFSET))
PASS_IN, PASS_OUT = 0.045, 0.05  # the operator lines up this far before a row's centre line, leaves this far after
SPEED_LOW = 0.6  # slowest segment speed, as a fraction of the action limit
LATERAL = 0.015  # largest lateral offset from a gap's centre line (its free half-width is 0.035)


def waypoints(mode: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The desired-position waypoints of one demonstration of `mode`: two per row, then past the finish line."""
    pts = []
    for row, g in enumerate(mode_gaps(mode)):
        x = GAP_X[row][g] + rng.uniform(-LATERAL, LATERAL)
        x_out = np.clip(x + rng.uniform(-0.005, 0.005), GAP_X[row][g] - LATERAL, GAP_X[row][g] + LATERAL)
        pts += [np.array([x, ROW_Y[row] - PASS_IN]), np.array([x_out, ROW_Y[row] + PASS_OUT])]
    pts.append(np.array([pts[-1][0] + rng.uniform(-0.02, 0.02), ROW_Y[2] + 0.14]))
    return pts


def operator_episode(env: AvoidingEnv, rng: np.random.Generator, mode: int
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One try: observations (T, 4), actions (T, 2) and the final info (success, collided, mode)."""
    obs, info = env.reset(seed=int(rng.integers(2**31)))
    pts = waypoints(mode, rng)
    wobble = rng.normal(0.0, 0.15)  # a heading bias of this operator in this episode (radians)
    observations, actions = [], []
    k, pause, speed = 0, 0, rng.uniform(SPEED_LOW, 1.0) * MAX_ACTION
    for _ in range(env.max_episode_steps):
        desired = obs[:2].astype(np.float64)
        if pause > 0:
            a = rng.normal(0.0, 0.0004, 2)  # a hesitation: the hand rests on the stick
            pause -= 1
        else:
            d = pts[k] - desired
            if np.abs(d).max() <= speed and k < len(pts) - 1:
                k += 1  # waypoint reached: next segment, new speed
                speed = rng.uniform(SPEED_LOW, 1.0) * MAX_ACTION
                d = pts[k] - desired
            if rng.random() < 0.02:
                pause = int(rng.integers(1, 4))
            passing = k % 2 == 1 and k < len(pts) - 1  # heading for a row's exit point: threading the gap
            ang = 0.0 if passing else wobble * min(1.0, float(np.linalg.norm(d)) / 0.1)  # straighter near a point
            if not passing and rng.random() < 0.04:
                ang += rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.7)  # a jerk, corrected by the next steps
            c, s = np.cos(ang), np.sin(ang)
            v = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
            v = v / max(np.abs(v).max(), 1e-9) * min(speed, np.abs(d).max())
            a = v + rng.normal(0.0, 0.0008, 2)
        a = np.clip(a, -MAX_ACTION, MAX_ACTION)
        observations.append(obs)
        actions.append(a.astype(np.float32))
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    return np.stack(observations).astype(np.float32), np.stack(actions), info


def make_demos(n: int = 480, seed: int = 0, max_tries: int = 20, env: AvoidingEnv | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`n` successful demos, modes balanced (n/24 each, shuffled); returns (episodes {"obs", "actions", "mode"},
    stats {"tries", "successes", "success_rate", "mode_counts"})."""
    if n < N_MODES:
        raise ValueError(f"need at least {N_MODES} demos (one per path), got {n}")
    env = env or AvoidingEnv()
    rng = np.random.default_rng(seed)
    modes = rng.permutation(np.arange(n) % N_MODES)
    episodes, tries = [], 0
    for m in modes:
        for _ in range(max_tries):
            tries += 1
            obs, act, info = operator_episode(env, rng, int(m))
            if info["success"] and info["mode"] == m:
                episodes.append({"obs": obs, "actions": act, "mode": int(m)})
                break
        else:
            raise RuntimeError(f"the scripted operator failed mode {m} {max_tries} times in a row; this is a bug")
    counts = np.bincount([e["mode"] for e in episodes], minlength=N_MODES)
    return episodes, {"tries": tries, "successes": len(episodes), "success_rate": len(episodes) / tries,
                      "mode_counts": counts.tolist()}
