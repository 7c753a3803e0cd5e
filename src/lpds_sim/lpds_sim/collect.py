"""Collect demonstrations with the scripted operator: keep only successful episodes, report the operator's rate."""
from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from .demos_io import Episode, stack_obs
from .tasks import make_env, make_operator
from lpds_core.grid_protocol import run_episode


@dataclass
class CollectStats:
    attempts: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / max(self.attempts, 1)


def collect_demos(task: str, n: int, obs_mode: str = "state", seed: int = 0, max_attempts: int | None = None,
                  progress: bool = True, env_kwargs: dict | None = None) -> tuple[list[Episode], CollectStats, dict]:
    """Run the task's operator from random start states until `n` successes (or `max_attempts`, default 3n)."""
    env = make_env(task, obs_mode=obs_mode, **(env_kwargs or {}))
    op = make_operator(task, env, seed=seed)
    max_attempts = max_attempts or 3 * n
    episodes: list[Episode] = []
    attempts = 0
    bar = tqdm(total=n, desc=f"demos {task}/{obs_mode}", unit="demo", disable=not progress)
    try:
        while len(episodes) < n and attempts < max_attempts:
            ep_seed = seed * 100_003 + attempts
            r = run_episode(env, op, seed=ep_seed, record=True)
            attempts += 1
            if r["success"]:
                episodes.append(Episode(stack_obs(r["obs"]), r["actions"], r["rewards"], r["dones"],
                                        {"seed": ep_seed, "return": float(r["return"]), "planner": op.planner,
                                         "replans": op.replans}))
                bar.update(1)
            bar.set_postfix(success_rate=f"{len(episodes)}/{attempts}")
    finally:
        bar.close()
    settings = env.unwrapped.settings()
    env.close()
    return episodes, CollectStats(attempts, len(episodes)), settings
