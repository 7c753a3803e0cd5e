"""Benchmark suites: what a task is, how its frozen base is made, how a policy is evaluated.

A suite names its tasks and answers five questions for `lpds bench`; everything else (the algorithms, the run
folders, resume, Ray, aggregation) is the suite-independent machinery in `one_run`, `sweep` and `aggregate`:

    base_kind(algo)               the kind of base an algorithm steers ("flow"; DPPO needs a denoising chain:
                                  "diffusion")
    prepare(task, cfg, kind)      driver side, once per sweep and kind: the frozen base's file (trained or found),
                                  so every algorithm and seed of the sweep starts from the same base
    load_base(path)               worker side: that base as a FrozenDecoder
    make_env(task)                one per-step Gymnasium env (the machinery chunks it)
    evaluate(task, act, n, seed)  {"return", "success"} of `act(obs batch) -> chunks (B, H, A)` over n episodes
    entropy_observations(task, n, seed)   the fixed observations the action entropy is measured at
    normalised(task, ret)         a suite's normalised return (D4RL-style), or None where it defines none

Suites: `toy` (the 2-D four-goal task; runs end to end in minutes on a CPU) and `gym` (Hopper/Walker2d/
HalfCheetah-v5, waiting for its medium datasets and shipped bases; refused with one line until they exist).
robomimic / adroit / avoiding plug in the same way.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from lpds_core.errors import ConfigError

ActBatch = Callable[[Any], np.ndarray]


class Suite:
    """Base class of a benchmark suite (see the module doc); subclasses set `name`, `tasks` and the methods."""

    name: str = ""
    tasks: tuple[str, ...] = ()
    metric: str = "return"  # what the curves and the floor figure plot on the y axis ("return" or "success")

    def presets(self) -> dict[str, Any]:
        """The suite's own defaults of the agent and loop sections ({"agent": AgentConfig, "train": LoopConfig});
        a sweep's settings are defaults < these < --config < flags."""
        return {}

    def check_tasks(self, tasks: list[str]) -> list[str]:
        tasks = list(tasks) or list(self.tasks)
        bad = [t for t in tasks if t not in self.tasks]
        if bad:
            raise ConfigError(f"--tasks: {', '.join(bad)} not in suite '{self.name}'; its tasks are "
                              f"{', '.join(self.tasks)}")
        return tasks

    def base_kind(self, algo: str) -> str:
        return "diffusion" if algo == "dppo" else "flow"

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        raise NotImplementedError

    def load_base(self, path: str) -> Any:
        from lpds_core.checkpoint import load_backbone

        return load_backbone(path).freeze()

    def make_env(self, task: str) -> Any:
        raise NotImplementedError

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int) -> dict[str, float]:
        raise NotImplementedError

    def entropy_observations(self, task: str, n: int, seed: int) -> Any:
        raise NotImplementedError

    def normalised(self, task: str, ret: float) -> float | None:
        return None


class ToySuite(Suite):
    """The 2-D four-goal task (lpds_sim.toy) with its cached flow-matching base and `lpds toy`'s settings."""

    name = "toy"
    tasks = ("four_goal",)

    def presets(self) -> dict[str, Any]:
        from lpds_sim.toy.experiment import ToyConfig

        toy = ToyConfig()  # the toy's settings have one home: `lpds toy`'s config
        return {"agent": toy.agent, "train": dataclasses.replace(toy.train, vector="sync")}

    def base_kind(self, algo: str) -> str:
        from lpds_sim.toy.experiment import base_kind

        return base_kind(algo)

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        from lpds_sim.toy.base_policy import toy_base_policy

        _, path = toy_base_policy(cache_dir=cfg.cache_dir, progress=False, kind=kind,
                                  **({} if cfg.bc_steps is None else {"bc_steps": cfg.bc_steps}))
        return str(path)

    def load_base(self, path: str) -> Any:
        from lpds_core.checkpoint import load_backbone

        return load_backbone(path, expect={"task": "toy_multigoal"}).freeze()

    def make_env(self, task: str) -> Any:
        from lpds_sim.toy import MultiGoalEnv

        return MultiGoalEnv()

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int) -> dict[str, float]:
        from lpds_sim.toy import MultiGoalEnv
        from lpds_sim.toy.evaluate import rollouts, summarize

        r = rollouts(SimpleNamespace(act=act), n_episodes, seed=seed)
        m = summarize(MultiGoalEnv(), r["paths"], r["returns"])
        return {"return": m["return"], "success": m["success"], "modes_reached": float(m["modes_reached"])}

    def entropy_observations(self, task: str, n: int, seed: int) -> np.ndarray:
        from lpds_sim.toy import MultiGoalEnv

        env = MultiGoalEnv()  # start states: where the choice of goal (the diversity) is made
        return np.stack([env.reset(seed=seed + i)[0] for i in range(n)])


class GymSuite(Suite):
    """Gym locomotion (Hopper/Walker2d/HalfCheetah-v5) from our medium datasets and shipped bases (issue 11,
    items 1-2). The place is here; the runs need those files, which are not in this checkout yet."""

    name = "gym"
    tasks = ("hopper", "walker2d", "halfcheetah")

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        raise ConfigError(f"suite 'gym' ({task}) needs the medium datasets and shipped flow/diffusion bases, "
                          f"which this checkout does not have yet; run `lpds bench toy` meanwhile")


SUITES: dict[str, Suite] = {s.name: s for s in (ToySuite(), GymSuite())}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise ConfigError(f"unknown benchmark suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]
