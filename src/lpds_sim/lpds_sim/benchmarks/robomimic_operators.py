"""Scripted operators for the RoboMimic tasks: stand-ins for robomimic's human teleoperators.

An operator reads privileged simulator state (end-effector pose, object pose, bin / peg positions) and outputs the
7-D OSC_POSE action (delta position and rotation in the robot base frame, gripper -1 open / +1 close). It walks
through phases (approach, descend, grasp, lift, transport, place / insert, release, retreat) towards waypoints, with
human-like variation drawn per episode from its own generator: waypoint offsets, speeds, pauses, hesitant
corrections (overshoot a waypoint then correct), action noise, and a style (`STYLES`) that sets how it moves, like
robomimic's "multi-human" sets of operators of different skill:

- `steady`: moderate speed, across at the start height then down to a hover point, short pauses;
- `swift`: fast, straight (diagonal) to the hover point, few pauses, more action noise;
- `careful`: slower, across-then-down to a high hover point, long pauses and more corrections.
Every style descends vertically from its hover point to the grasp.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.spatial.transform import Rotation

from .robomimic_tasks import RobomimicEnv

POS_SCALE = 0.05  # the OSC's output_max for position (m per step at action 1)
ROT_SCALE = 0.5  # ... and rotation (rad)
OPEN, CLOSE = -1.0, 1.0
MAX_TURN = 0.12  # rad per step the wrist is asked to turn
MAX_REGRASPS = 2
WRIST_RANGE = 2.0  # rad of gripper yaw either side of the reset pose that the Panda's last joint allows
# the gripper pointing straight down, fingers closing along world y (its x-axis), as at robosuite's reset pose
R_DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class Style:
    name: str
    speed: tuple[float, float]  # m per step, range drawn per episode
    hover: tuple[float, float]  # height above the grasp point before descending (m)
    pause: tuple[int, int]  # steps of stillness at a phase change
    pause_prob: float
    correction_prob: float  # chance that a waypoint is first overshot by a few cm, then corrected
    noise: float  # std of the action noise (in action units)
    diagonal: bool  # approach the hover point along a diagonal (True) or up-over-down (False)


STYLES: dict[str, Style] = {
    "steady": Style("steady", (0.014, 0.020), (0.06, 0.10), (2, 6), 0.4, 0.15, 0.05, False),
    "swift": Style("swift", (0.018, 0.026), (0.04, 0.07), (1, 3), 0.2, 0.10, 0.08, True),
    "careful": Style("careful", (0.013, 0.017), (0.08, 0.12), (3, 7), 0.6, 0.3, 0.04, False),
}


def yaw_of_quat(q_xyzw: np.ndarray) -> float:
    return float(Rotation.from_quat(q_xyzw).as_euler("zyx")[0])


def wrap(angle: float, period: float) -> float:
    """`angle` shifted by multiples of `period` into [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def rz(yaw: float) -> np.ndarray:
    return Rotation.from_euler("z", yaw).as_matrix()


@dataclass
class Phase:
    name: str
    target: Callable[[], np.ndarray]  # eef position target (world), re-evaluated every step (closed loop)
    grip: float
    tol: float = 0.01  # reached when within tol (m) ...
    min_steps: int = 0  # ... and after at least this many steps (e.g. to let the gripper close)
    max_steps: int = 120
    speed: float | None = None  # overrides the episode speed


class Operator:
    """Base: runs phases and turns (position target, yaw target, gripper) into OSC actions."""

    def __init__(self, env: RobomimicEnv, style: str | Style, seed: int):
        self.env = env
        self.style = STYLES[style] if isinstance(style, str) else style
        self.rng = np.random.default_rng(seed)
        self.sim_env = env.sim_env
        self.sim = self.sim_env.sim
        robot = self.sim_env.robots[0]
        self._eef_site = robot.eef_site_id["right"]
        base = self.sim.model.body_name2id(robot.robot_model.root_body)
        self._base_R = self.sim.data.body_xmat[base].reshape(3, 3).copy()
        s = self.style
        self.speed = float(self.rng.uniform(*s.speed))
        self.hover = float(self.rng.uniform(*s.hover))
        self.yaw = 0.0  # target rotation of the gripper about world z, relative to R_DOWN
        self.phases: list[Phase] = []
        self._i = 0
        self._t_phase = 0
        self._pause = 0
        self._overshoot: np.ndarray | None = None
        self._noise = np.zeros(6)
        self._trail: list[np.ndarray] = []
        self._regrasps = 0

    # -- state ----------------------------------------------------------------------------------------------
    def eef_pos(self) -> np.ndarray:
        return self.sim.data.site_xpos[self._eef_site].copy()

    def eef_R(self) -> np.ndarray:
        return self.sim.data.site_xmat[self._eef_site].reshape(3, 3).copy()

    def yaw_now(self) -> float:
        """The gripper's rotation about world z relative to R_DOWN (its tilt ignored)."""
        R = self.eef_R() @ R_DOWN.T
        return float(np.arctan2(R[1, 0], R[0, 0]))

    def body_pos(self, body_id: int) -> np.ndarray:
        return self.sim.data.body_xpos[body_id].copy()

    def body_yaw(self, body_id: int) -> float:
        return yaw_of_quat(self.sim.data.body_xquat[body_id][[1, 2, 3, 0]])  # mujoco stores w first

    # -- control --------------------------------------------------------------------------------------------
    def move(self, target: np.ndarray, grip: float, speed: float) -> np.ndarray:
        err = target - self.eef_pos()
        dist = np.linalg.norm(err)
        step = err if dist <= speed else err * (speed / dist)
        # turn the wrist towards the target yaw at most MAX_TURN per step, the unwrapped way (the target is
        # planned inside the wrist's range, so the short way round could hit its joint limit)
        yaw_cmd = self.yaw_now() + np.clip(self.yaw - self.yaw_now(), -MAX_TURN, MAX_TURN)
        R_err = rz(yaw_cmd) @ R_DOWN @ self.eef_R().T
        rotvec = Rotation.from_matrix(R_err).as_rotvec()
        # OU-like smoothed noise: a hand's tremor and drift, not white noise
        self._noise = 0.8 * self._noise + 0.2 * self.rng.normal(0.0, self.style.noise, 6) * 3.0
        a = np.zeros(7)
        a[:3] = self._base_R.T @ step / POS_SCALE * 1.6  # the OSC lags its goal: ask a bit more than the step
        a[3:6] = self._base_R.T @ rotvec / ROT_SCALE * 1.5
        a[:6] += self._noise * min(1.0, dist / 0.03)  # steadier hands near the goal
        a[6] = grip
        return np.clip(a, -1.0, 1.0)

    def act(self) -> np.ndarray:
        if self._i >= len(self.phases):
            return self.move(self.eef_pos(), self.phases[-1].grip if self.phases else OPEN, 0.0)
        ph = self.phases[self._i]
        if self._pause > 0:
            self._pause -= 1
            return self.move(self.eef_pos(), ph.grip if self._t_phase else self._prev_grip(), 0.0)
        if ph.name in ("lift", "transport") and self._t_phase >= 8 and self._regrasps < MAX_REGRASPS \
                and np.linalg.norm(self.eef_pos() - self.grasp_point()) > 0.04:
            return self._regrasp()  # it slipped or was never held: back to the hover point, like a person would
        target = ph.target()
        if self._overshoot is not None:
            target = target + self._overshoot
        speed = ph.speed if ph.speed is not None else self.speed
        a = self.move(target, ph.grip, speed)
        self._t_phase += 1
        pos = self.eef_pos()
        self._trail.append(pos)
        dist = np.linalg.norm(target - pos)
        stalled = len(self._trail) > 8 and np.linalg.norm(pos - self._trail[-9]) < 0.002 and dist < 0.02
        reached = dist < max(ph.tol, 0.004) or stalled  # stalled: the fingers touch down short of the target
        if self._overshoot is not None and (reached or self._t_phase > ph.max_steps // 2):
            self._overshoot = None  # the correction: now go where it should have gone
        elif (reached and self._t_phase >= ph.min_steps) or self._t_phase >= ph.max_steps:
            self._next_phase()
        return a

    def grasp_point(self) -> np.ndarray:
        """Where the hand holds the object (the object follows it there while held)."""
        raise NotImplementedError

    def replan(self) -> None:
        """Recompute what depends on the object's pose at the start (the wrist yaw), before a regrasp."""

    def _regrasp(self) -> np.ndarray:
        self._regrasps += 1
        self._i = [p.name for p in self.phases].index("hover")
        self._t_phase, self._trail, self._overshoot = 0, [], None
        self.replan()
        return self.move(self.eef_pos() + np.array([0.0, 0.0, 0.02]), OPEN, 0.02)

    def _prev_grip(self) -> float:
        return self.phases[self._i - 1].grip if self._i > 0 else OPEN

    def _next_phase(self) -> None:
        self._i += 1
        self._t_phase = 0
        self._trail = []
        s = self.style
        if self.rng.random() < s.pause_prob:
            self._pause = int(self.rng.integers(s.pause[0], s.pause[1] + 1))
        if self._i < len(self.phases) and self.phases[self._i].name in self.correctable \
                and self.rng.random() < s.correction_prob:
            off = self.rng.normal(0.0, 1.0, 3)
            off[2] = abs(off[2])  # overshoot sideways or above, never into the table
            self._overshoot = off / np.linalg.norm(off) * self.rng.uniform(0.015, 0.035)

    correctable: tuple[str, ...] = ("over", "hover", "transport")

    @property
    def done(self) -> bool:
        return self._i >= len(self.phases)

    def jitter(self, scale: float) -> np.ndarray:
        return self.rng.uniform(-scale, scale, 3)

    def approach(self, hover: Callable[[], np.ndarray]) -> list[Phase]:
        """Reach the hover point: straight there (diagonal styles), or first across at the start height (at
        least the hover height), then down onto it (up-over-down styles)."""
        if self.style.diagonal:
            return [Phase("hover", hover, OPEN, tol=0.02)]
        z0 = self.eef_pos()[2]
        return [Phase("over", lambda: np.array([*hover()[:2], max(z0, hover()[2])]), OPEN, tol=0.02),
                Phase("hover", hover, OPEN, tol=0.01)]


class LiftOperator(Operator):
    def __init__(self, env: RobomimicEnv, style: str | Style, seed: int):
        super().__init__(env, style, seed)
        cube = self.cube = self.sim_env.cube_body_id
        self.replan()
        grasp_off = self.jitter(0.004) * np.array([1, 1, 0]) + np.array([0, 0, self.rng.uniform(-0.006, 0.0)])
        lift_h = self.rng.uniform(0.10, 0.18)

        def grasp() -> np.ndarray:
            return self.body_pos(cube) + grasp_off

        def hover() -> np.ndarray:
            return grasp() + np.array([0, 0, self.hover])

        self.phases = [
            *self.approach(hover),
            Phase("descend", grasp, OPEN, tol=0.006, speed=min(self.speed, 0.012)),
            Phase("grasp", grasp, CLOSE, tol=1.0, min_steps=int(self.rng.integers(8, 14))),
            Phase("lift", lambda: grasp() * np.array([1, 1, 0]) + np.array([0, 0, 0.83 + lift_h]), CLOSE,
                  tol=0.02, max_steps=200),
        ]


    def replan(self) -> None:
        self.yaw = wrap(self.body_yaw(self.cube) - np.pi / 2, np.pi / 2)  # fingers square to the cube's faces

    def grasp_point(self) -> np.ndarray:
        return self.body_pos(self.cube)


class CanOperator(Operator):
    def __init__(self, env: RobomimicEnv, style: str | Style, seed: int):
        super().__init__(env, style, seed)
        u = self.sim_env
        can = self.can = u.obj_body_id["Can"]
        # the can's bin is the target bin's quadrant nearest the robot's reach (its far corner is out of reach)
        goal_xy = np.array([self.rng.uniform(0.12, 0.17), self.rng.uniform(0.30, 0.34)])
        grasp_off = np.array([*self.rng.uniform(-0.004, 0.004, 2), self.rng.uniform(0.005, 0.02)])
        carry_z = u.bin2_pos[2] + self.rng.uniform(0.15, 0.22)
        drop_z = u.bin2_pos[2] + self.rng.uniform(0.10, 0.13)
        self.yaw = self.rng.uniform(-0.3, 0.3)  # a can is round: any wrist angle works, people differ

        def grasp() -> np.ndarray:
            return self.body_pos(can) + grasp_off

        def hover() -> np.ndarray:
            return grasp() + np.array([0, 0, self.hover])

        def held_above(xy: np.ndarray, z: float) -> Callable[[], np.ndarray]:
            # place the can (not the hand) over xy: the hand holds it wherever it was grasped
            return lambda: np.array([*(xy + self.eef_pos()[:2] - self.body_pos(can)[:2]), z])

        self.phases = [
            *self.approach(hover),
            Phase("descend", grasp, OPEN, tol=0.006, speed=min(self.speed, 0.012)),
            Phase("grasp", grasp, CLOSE, tol=1.0, min_steps=int(self.rng.integers(8, 14))),
            Phase("lift", lambda: np.array([*grasp()[:2], carry_z]), CLOSE, tol=0.02),
            # the long carry between the bins goes faster than the fine approach (and fits the 300 steps)
            Phase("transport", held_above(goal_xy, carry_z), CLOSE, tol=0.02, max_steps=160,
                  speed=2.0 * self.speed),
            Phase("lower", held_above(goal_xy, drop_z), CLOSE, tol=0.02),
            Phase("release", lambda: self.eef_pos(), OPEN, tol=1.0, min_steps=int(self.rng.integers(6, 10))),
            Phase("retreat", lambda: np.array([*goal_xy, carry_z + 0.05]), OPEN, tol=0.02),
        ]


    def grasp_point(self) -> np.ndarray:
        return self.body_pos(self.can)


class SquareOperator(Operator):
    def __init__(self, env: RobomimicEnv, style: str | Style, seed: int):
        super().__init__(env, style, seed)
        u = self.sim_env
        nut = u.obj_body_id["SquareNut"]
        handle = self.handle = u.object_site_ids[0]
        peg = u.peg1_body_id
        self.nut, self.peg = nut, peg
        self.yaw, self.nut_goal_yaw = self._plan_yaws()
        grasp_off = np.array([*self.rng.uniform(-0.003, 0.003, 2), self.rng.uniform(-0.004, 0.002)])
        # the peg's top is 0.13 m above the table: carry the nut (grasped at its own height) clear of it
        carry_z = u.table_offset[2] + self.rng.uniform(0.19, 0.23)
        above_z = u.table_offset[2] + self.rng.uniform(0.165, 0.18)

        def grasp() -> np.ndarray:
            return self.sim.data.site_xpos[handle] + grasp_off

        def hover() -> np.ndarray:
            return grasp() + np.array([0, 0, self.hover])

        def nut_over_peg(z: float) -> Callable[[], np.ndarray]:
            def f() -> np.ndarray:
                self._align_nut()
                off = self.body_pos(peg)[:2] - self.body_pos(nut)[:2]
                return np.array([*(self.eef_pos()[:2] + off), z])
            return f

        self.phases = [
            *self.approach(hover),
            Phase("descend", grasp, OPEN, tol=0.005, speed=min(self.speed, 0.01)),
            Phase("grasp", grasp, CLOSE, tol=1.0, min_steps=int(self.rng.integers(8, 14))),
            Phase("lift", lambda: np.array([*grasp()[:2], carry_z]), CLOSE, tol=0.02),
            Phase("transport", nut_over_peg(carry_z), CLOSE, tol=0.01, max_steps=200),
            Phase("align", nut_over_peg(above_z), CLOSE, tol=0.004, min_steps=int(self.rng.integers(4, 10)),
                  speed=0.008),
            Phase("insert", nut_over_peg(u.table_offset[2] + 0.03), CLOSE, tol=0.008, speed=0.008),
            Phase("release", lambda: self.eef_pos(), OPEN, tol=1.0, min_steps=int(self.rng.integers(6, 10))),
            Phase("retreat", lambda: self.eef_pos() * np.array([1, 1, 0]) + np.array([0, 0, carry_z]), OPEN,
                  tol=0.02),
        ]

    def grasp_point(self) -> np.ndarray:
        return self.sim.data.site_xpos[self.handle].copy()

    def replan(self) -> None:
        self.yaw, self.nut_goal_yaw = self._plan_yaws()

    def _plan_yaws(self) -> tuple[float, float]:
        """(gripper yaw for the grasp, nut yaw over the peg). The fingers close across the handle (gripper yaw
        = nut yaw mod pi); over the peg the nut's square must line up with the peg's (mod pi/2), with the handle
        towards the robot or sideways (pointing away, the hand would be out of reach); both wrist angles stay
        within WRIST_RANGE of the reset pose; among the rest, prefer the handle towards the robot and small turns."""
        th = self.body_yaw(self.nut)
        peg = self.body_yaw(self.peg)
        best, best_cost = (wrap(th, np.pi), th), np.inf
        for g in (wrap(th, np.pi) + k * np.pi for k in (-1, 0, 1)):
            for k in range(4):
                phi = peg + k * np.pi / 2
                turn = wrap(phi - th, 2 * np.pi)
                if np.cos(phi) > 0.5 or abs(turn) > 0.75 * np.pi:
                    continue
                cost = np.cos(phi) + 0.15 * abs(turn) + (0 if max(abs(g), abs(g + turn)) <= WRIST_RANGE else 10)
                if cost < best_cost:
                    best, best_cost = (g, th + turn), cost
        return best

    def _align_nut(self) -> None:
        """Turn the wrist so the nut reaches its planned yaw over the peg (closed loop on the nut's yaw)."""
        self.yaw = self.yaw_now() + wrap(self.nut_goal_yaw - self.body_yaw(self.nut), 2 * np.pi)


OPERATORS: dict[str, type[Operator]] = {"lift": LiftOperator, "can": CanOperator, "square": SquareOperator}


def run_episode(env: RobomimicEnv, seed: int, style: str) -> dict[str, Any]:
    """One operator episode on `env` from `reset(seed=seed)`, stopping at success or at the task's step limit:
    observations and next observations (per robomimic key), actions, rewards, dones, simulator states, success."""
    env.reset(seed=seed)
    op = OPERATORS[env.task.name](env, style, seed=seed + 7919)
    obs, acts, rews, states = [env.obs_dict()], [], [], []
    success = False
    for _ in range(env.max_steps):
        a = op.act()
        states.append(env.sim_env.sim.get_state().flatten())
        _, r, success, trunc, _ = env.step(a)
        acts.append(a.astype(np.float32))
        rews.append(r)
        obs.append(env.obs_dict())
        if success or trunc:
            break
    stacked = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    dones = np.zeros(len(acts), dtype=bool)
    dones[-1] = success
    return {"obs": {k: v[:-1] for k, v in stacked.items()}, "next_obs": {k: v[1:] for k, v in stacked.items()},
            "actions": np.stack(acts), "rewards": np.asarray(rews, dtype=np.float32), "dones": dones,
            "states": np.stack(states), "success": bool(success), "style": style, "seed": seed}


def success_rates(task: str, n_episodes: int, seed: int = 0) -> dict[str, tuple[int, int]]:
    """Operator success per style over `n_episodes` episodes (styles cycling, resets seeded as `make_demos`
    seeds them), plus "all": style -> (successes, episodes)."""
    env = RobomimicEnv(task)
    styles = list(STYLES)
    out = {s: [0, 0] for s in [*styles, "all"]}
    try:
        for i in range(n_episodes):
            style = styles[i % len(styles)]
            ok = run_episode(env, seed * 1_000_003 + i, style)["success"]
            for k in (style, "all"):
                out[k][0] += ok
                out[k][1] += 1
    finally:
        env.close()
    return {k: (v[0], v[1]) for k, v in out.items()}


if __name__ == "__main__":  # python -m lpds_sim.benchmarks.robomimic_operators TASK N_EPISODES [SEED]
    import sys

    rates = success_rates(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    print(sys.argv[1], ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in rates.items()))
