"""What every scripted Adroit operator shares: its style, the driver that turns planned moves into actions, and
the loop that runs one episode and records it.

An operator is a generator: given the `Driver` (the hand and where it was last commanded), its random generator and
its `Style`, it yields one normalised action per env step, forever; the episode loop stops it at the env's time
limit. Written as plain sequential code (`yield from drv.move(...)`), it reads the simulator's privileged state
(object, tool, handle, target poses from MuJoCo's data) each time it plans the next move, i.e. after the previous
moves were executed, the way a human teleoperator looks before the next motion.

Human-like variation comes from the style and from the operator's own draws per episode: waypoint offsets, the
duration of every move (`Style.speed`), pauses between moves (`Style.pause_prob`, `Style.pause`), and hand tremor
(`Style.tremor`: Gaussian noise on the commanded joint positions of every step). After each move the driver waits
(at most `SETTLE` steps) for the arm to arrive, as a person does before the next motion.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from .control import Hand, Motion

# The servo's settings (`Hand.servo`), a compromise measured on Relocate (96 episodes per setting, and the BC base
# of 100 demos, 10k steps, 50 episodes): the full planned velocity/acceleration feed-forward with KP 1 tracks best
# (operator 96/96) but its actions depend on where the plan is, which the state does not show, and BC on them
# diverges (base 0/50); none (KP 1) gives a learnable base (3/50) but an underdamped arm that overshoots (86/96);
# half of each gives both: operator 95/96, base 5/50.
FF_VEL, FF_ACC = 0.5, 0.5  # fractions of the planned velocity / acceleration terms the servo feeds forward
KP = 1.0  # extra stiffness on the position error (multiples of the actuator's own spring)
SETTLE = 10  # after a move, wait up to this many steps for the arm to arrive (within SETTLE_TOL rad or m)
SETTLE_TOL = 0.01
Operator = Callable[["Driver", np.random.Generator, "Style"], Iterator[np.ndarray]]


@dataclass(frozen=True)
class Style:
    """How one operator moves (like one of robomimic's multi-human operators)."""

    name: str
    speed: tuple[float, float]  # duration multiplier of every move, drawn per move (<1 faster)
    pause_prob: float  # chance of a pause before a move
    pause: tuple[int, int]  # its length in steps (inclusive range)
    tremor: float  # std (rad or m) of the noise on the commanded arm joints, every step
    variant: str  # the task's route choice for this style (each operator reads it its own way)


class Driver:
    """Turns planned moves of the arm (`arm` actuators, servoed along minimum-jerk paths) and of the fingers and
    wrist (`hand` actuators, spring rest points blended smoothly) into actions, starting from where the hand is."""

    def __init__(self, hand: Hand, arm: np.ndarray, fingers: np.ndarray, rng: np.random.Generator, style: Style):
        self.hand, self.arm, self.fingers, self.rng, self.style = hand, arm, fingers, rng, style
        self.arm_q = hand.q(arm)
        self.finger_q = hand.q(fingers)

    def _act(self, qa: np.ndarray, va: np.ndarray, aa: np.ndarray, qf: np.ndarray) -> np.ndarray:
        h = self.hand
        ctrl = np.zeros(h.model.nu)
        shake = self.rng.normal(0.0, self.style.tremor, len(self.arm)) if self.style.tremor > 0 else 0.0
        ctrl[self.arm] = h.servo(self.arm, h.clip_joints(self.arm, qa + shake), va * FF_VEL, aa * FF_ACC, kp=KP)
        ctrl[self.fingers] = h.target(self.fingers, qf)
        return h.action(ctrl)

    def steps(self, nominal: int) -> int:
        """A move's duration: `nominal` steps scaled by a speed drawn from the style."""
        return max(2, int(round(nominal * self.rng.uniform(*self.style.speed))))

    def move(self, arm_q: np.ndarray | None = None, finger_q: np.ndarray | None = None, steps: int = 20,
             pause: bool = True) -> Iterator[np.ndarray]:
        """Move the arm to `arm_q` and the fingers to `finger_q` (None: stay) in `steps` steps, after a pause the
        style may draw."""
        if pause and self.rng.random() < self.style.pause_prob:
            yield from self.hold(int(self.rng.integers(self.style.pause[0], self.style.pause[1] + 1)))
        arm = Motion(self.arm_q, self.arm_q if arm_q is None else np.asarray(arm_q, float), steps)
        fing = Motion(self.finger_q, self.finger_q if finger_q is None else np.asarray(finger_q, float), steps)
        dt = self.hand.dt
        for t in range(1, steps + 1):
            qa, va, aa = arm.at(t, dt)
            yield self._act(qa, va, aa, fing.at(t, dt)[0])
        self.arm_q, self.finger_q = arm.q1.copy(), fing.q1.copy()
        zero = np.zeros(len(self.arm))
        for _ in range(SETTLE):
            if np.abs(self.hand.q(self.arm) - self.arm_q).max() < SETTLE_TOL:
                break
            yield self._act(self.arm_q, zero, zero, self.finger_q)

    def hold(self, steps: int) -> Iterator[np.ndarray]:
        """Stay where commanded for `steps` steps."""
        zero = np.zeros(len(self.arm))
        for _ in range(steps):
            yield self._act(self.arm_q, zero, zero, self.finger_q)


def run_episode(env: Any, operator: Operator, arm_prefixes: tuple[str, ...], seed: int, style: Style,
                ) -> dict[str, Any]:
    """One episode of `operator` from `env.reset(seed=seed)` (its own generator is seeded from `seed` too):
    observations (T, O), next observations, actions (T, A), rewards, dones, simulator states (qpos ‖ qvel), the
    return and D4RL's success at the end (`info["success"]` of `AdroitSuccess`)."""
    obs, _ = env.reset(seed=seed)
    hand = Hand(env)
    arm = hand.index(*arm_prefixes)
    fingers = np.array([i for i in range(hand.model.nu) if i not in set(arm.tolist())], dtype=int)
    rng = np.random.default_rng([seed, 7919])
    drv = Driver(hand, arm, fingers, rng, style)
    policy = operator(drv, rng, style)
    rec: dict[str, list] = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "dones", "states")}
    info: dict[str, Any] = {"success": False}
    done = False
    while not done:
        a = next(policy)
        rec["states"].append(np.concatenate([hand.data.qpos, hand.data.qvel]))
        rec["obs"].append(obs)
        obs, r, term, trunc, info = env.step(a)
        done = bool(term or trunc)
        rec["next_obs"].append(obs)
        rec["actions"].append(a)
        rec["rewards"].append(r)
        rec["dones"].append(done)
    policy.close()
    out = {k: np.asarray(v, dtype=np.float32 if k != "dones" else bool) for k, v in rec.items()}
    out["states"] = np.asarray(rec["states"], dtype=np.float64)
    out.update(seed=int(seed), style=style.name, success=bool(info["success"]),
               goal_steps=int(info.get("goal_steps", 0)), ret=float(np.sum(rec["rewards"])))
    return out
