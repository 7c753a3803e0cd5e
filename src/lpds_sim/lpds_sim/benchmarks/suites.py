"""Benchmark suites: what a task is, how its frozen base is made, how a policy is evaluated.

A suite names its tasks and answers five questions for `lpds bench`; everything else (the algorithms, the run
folders, resume, Ray, aggregation) is the suite-independent machinery in `one_run`, `sweep` and `aggregate`:

    base_kind(algo)               the kind of base an algorithm steers ("flow"; DPPO needs a denoising chain:
                                  "diffusion")
    prepare(task, cfg, kind)      driver side, once per sweep and kind: the frozen base's file (trained or found),
                                  so every algorithm and seed of the sweep starts from the same base
    load_base(path)               worker side: that base as a FrozenDecoder
    make_env(task)                one per-step Gymnasium env (the machinery chunks it)
    evaluate(task, act, n, seed, exec_steps)   {"return", "success"} of `act(obs batch) -> chunks (B, H, A)` over
                                  n episodes, re-planning after `exec_steps` actions (None: whole chunks)
    entropy_observations(task, n, seed)   the fixed observations the action entropy is measured at
    normalised(task, ret)         a suite's normalised return (D4RL-style), or None where it defines none

Suites: `toy` (the 2-D four-goal task; runs end to end in minutes on a CPU), `gym` (Hopper/Walker2d/
HalfCheetah-v5 from the shipped bases; a task without one is refused with one line), `avoiding` (D3IL's
Avoiding re-implemented in the plane; its base is trained into the cache on first use), `robomimic`
(Lift/Can/Square through robosuite; bases trained on the scripted demos, cached the same way) and `adroit`
(gymnasium-robotics' Adroit hand tasks that have a scripted operator, bases cached likewise). A suite's
`extra_columns` are metrics its evaluate() adds that the tables show beside the common ones (Avoiding: D3IL's
mode entropy).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
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
    extra_columns: tuple[str, ...] = ()  # keys of evaluate()'s result that the tables add as columns

    def presets(self) -> dict[str, Any]:
        """The suite's own defaults of the agent and loop sections ({"agent": AgentConfig, "train": LoopConfig});
        a sweep's settings are defaults < these < --config < flags."""
        return {}

    def algo_presets(self) -> dict[str, dict[str, Any]]:
        """Per-algorithm agent settings of this suite (an algorithm's reference values), applied to the fields a
        sweep's --config and flags leave at the suite's preset."""
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

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int, exec_steps: int | None = None
                 ) -> dict[str, float]:
        raise NotImplementedError

    def entropy_observations(self, task: str, n: int, seed: int) -> Any:
        raise NotImplementedError

    def normalised(self, task: str, ret: float) -> float | None:
        return None

    def save_final(self, root: Path, name: str) -> None:
        """Keep what the last evaluate() saw beyond its numbers in the run folder (`name`: "" or the
        temperature's "c0.5"); none by default."""

    def bench_figures(self, jobs: list[dict[str, Any]], rows: list[dict[str, Any]], out: Path) -> list[str]:
        """A suite's own figures of a bench, drawn from the run folders and the table's rows into `out`; their
        file names."""
        return []


def sparse_task_presets(eval_trials: int) -> dict[str, Any]:
    """Agent and loop presets of the short sparse-success tasks (Avoiding, RoboMimic) on a 2-core CPU: 2×256 actor,
    3×256 critics, UTD 1, one in-process env, γ = 0.99 per env step, whole chunks executed."""
    from lpds_core.agents import AgentConfig
    from lpds_core.training import LoopConfig

    return {"agent": AgentConfig(hidden=(256, 256), critic_hidden=(256, 256, 256), gamma=0.99),
            "train": LoopConfig(n_envs=1, vector="sync", warmup_steps=1_000, eval_every=5_000, ckpt_every=5_000,
                                eval_trials=eval_trials, batch_size=256, exec_steps=None)}


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

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int, exec_steps: int | None = None
                 ) -> dict[str, float]:
        if exec_steps is not None:
            raise ConfigError(f"train.exec_steps={exec_steps}: the toy suite executes whole chunks; leave it unset")
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
    """Gym locomotion (Hopper/Walker2d/HalfCheetah-v5): our medium datasets (`lpds datasets make`) and the shipped
    flow/diffusion bases trained on them (`lpds datasets base`); return is D4RL-normalised. Chunk H = 4 executed
    whole (DPPO's and DSRL's Gym setting), 1000-step episodes."""

    name = "gym"
    tasks = ("hopper", "walker2d", "halfcheetah")

    def presets(self) -> dict[str, Any]:
        from lpds_core.agents import AgentConfig
        from lpds_core.training import LoopConfig

        # DSRL's Gym settings scaled to a 2-core CPU (3×256 critics instead of 3×128..2048, UTD 1 instead of 20:
        # state it beside every result); a single in-process env per run (IPC costs more than a MuJoCo step)
        # γ = 0.99 per chunk of 4 (DSRL's and DPPO's Gym discount, both per chunk) is 0.99^(1/4) per env step here;
        # δ = 0.35, inside the range the paper calls insensitive (the δ ablation sweeps around it); whole chunks
        # executed (exec_steps = H = 4, as both references do on Gym)
        return {"agent": AgentConfig(hidden=(256, 256), critic_hidden=(256, 256, 256), gamma=0.9975, delta=0.35),
                "train": LoopConfig(n_envs=1, vector="sync", warmup_steps=2_000, eval_every=10_000,
                                    ckpt_every=5_000, eval_trials=5, batch_size=256, exec_steps=None)}

    def algo_presets(self) -> dict[str, dict[str, Any]]:
        # DPPO's own Gym fine-tuning settings (config/agents/dppo.yaml: irom-lab/dppo's ft_ppo_diffusion_mlp)
        return {"dppo": {"lr_actor": 1e-4, "lr_critic": 1e-3, "clip_ploss_coef_base": 0.01}}

    def base_kind(self, algo: str) -> str:
        return "diffusion" if algo == "dppo" else "flow"

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        from .gym_bases import shipped_base

        path = shipped_base(task, kind)
        if not path.is_file():
            raise ConfigError(f"suite 'gym': no shipped {kind} base for {task} ({path.name}); make it with "
                              f"`lpds datasets make {task}-medium` then `lpds datasets base {task} --kind {kind} "
                              f"--out {path}`")
        return str(path)

    def load_base(self, path: str) -> Any:
        from lpds_core.checkpoint import load_backbone

        return load_backbone(path).freeze()

    def make_env(self, task: str) -> Any:
        from .experts import make_env
        from .gym_tasks import get_task

        return make_env(get_task(task))

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int, exec_steps: int | None = None
                 ) -> dict[str, float]:
        from lpds_core.evaluation import evaluate_chunks

        res = evaluate_chunks(lambda: self.make_env(task), act, n_episodes, seed, exec_steps=exec_steps)
        return {"return": res["return"], "success": float("nan"), "length": res["length"]}

    def entropy_observations(self, task: str, n: int, seed: int) -> np.ndarray:
        env = self.make_env(task)  # start states (seeded), like the toy: the same for every method
        try:
            return np.stack([env.reset(seed=seed + i)[0] for i in range(n)]).astype(np.float32)
        finally:
            env.close()

    def normalised(self, task: str, ret: float) -> float | None:
        from .gym_tasks import get_task

        return get_task(task).normalized(ret)


class AvoidingSuite(Suite):
    """D3IL Avoiding (`lpds_sim.benchmarks.avoiding`): success, and D3IL's diversity (the entropy of the modes of
    the successful rollouts over log 24) beside it; the base is BC on the scripted operator's 24-mode demos,
    trained into the cache (~/.cache/lpds or --cache-dir) on first use. Chunk H = 4 executed whole (DPPO's avoid
    setting), 150-step episodes ending at success or collision, sparse reward 1 at success."""

    name = "avoiding"
    tasks = ("avoiding",)
    metric = "success"
    extra_columns = ("mode_entropy",)

    def presets(self) -> dict[str, Any]:
        # episodes of ~100 steps; evaluations of 30 episodes (D3IL evaluates 30)
        return sparse_task_presets(eval_trials=30)

    def algo_presets(self) -> dict[str, dict[str, Any]]:
        # DPPO's avoid fine-tuning (cfg/d3il/finetune/avoid_m*/ft_ppo_diffusion_mlp.yaml: actor lr 1e-5, critic
        # 1e-3, T = 20 with the last 10 fine-tuned); its 50 envs × 25 chunks per update become 1 env × 250 chunks
        # (about 10 episodes) here, minibatches of 1000 (chunk, denoising step) pairs
        return {"dppo": {"lr_actor": 1e-5, "lr_critic": 1e-3, "rollout_steps": 250, "ppo_batch_size": 1000}}

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        from .avoiding.base import avoiding_base_policy

        _, path = avoiding_base_policy(cache_dir=cfg.cache_dir, progress=False, kind=kind,
                                       **({} if cfg.bc_steps is None else {"bc_steps": cfg.bc_steps}))
        return str(path)

    def load_base(self, path: str) -> Any:
        from lpds_core.checkpoint import load_backbone

        from .avoiding.base import TASK

        return load_backbone(path, expect={"task": TASK}).freeze()

    def make_env(self, task: str) -> Any:
        from .avoiding import AvoidingEnv

        return AvoidingEnv()

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int, exec_steps: int | None = None
                 ) -> dict[str, float]:
        from .avoiding.evaluate import evaluate_avoiding

        res = evaluate_avoiding(act, n_episodes, seed, exec_steps=exec_steps)
        self._last_episodes = res["episodes"]  # for save_final: a worker runs one job at a time
        return {k: float(res[k]) for k in ("return", "success", "mode_entropy", "collision", "modes_found",
                                           "length")}

    def save_final(self, root: Path, name: str) -> None:
        from .avoiding.plots import plot_trajectories, save_episodes

        episodes = getattr(self, "_last_episodes", None)
        if episodes is None:
            return
        suffix = f"_{name}" if name else ""
        save_episodes(episodes, Path(root) / f"trajectories{suffix}.npz")
        plot_trajectories({f"{Path(root).parent.name} {name}".strip(): episodes},
                          Path(root) / "plots" / f"trajectories{suffix}.png")

    def bench_figures(self, jobs: list[dict[str, Any]], rows: list[dict[str, Any]], out: Path) -> list[str]:
        from .avoiding.plots import bench_trajectories, plot_diversity

        paths = [bench_trajectories(jobs, Path(out) / "trajectories.png"),
                 plot_diversity(rows, Path(out) / "diversity.png")]
        return [p.name for p in paths if p is not None]

    def entropy_observations(self, task: str, n: int, seed: int) -> np.ndarray:
        env = self.make_env(task)  # the start state, where the choice among the 24 paths begins (D3IL's reset
        # is deterministic, so the n observations are equal)
        return np.stack([env.reset(seed=seed + i)[0] for i in range(n)]).astype(np.float32)


class RobomimicSuite(Suite):
    """RoboMimic Lift / PickPlaceCan / NutAssemblySquare (Panda, low-dim obs, OSC_POSE at 20 Hz) through
    robosuite (`robomimic_tasks`): success rate. The base is BC on the scripted operators' demos
    (`robomimic_bases`), trained into the cache on first use. Chunk H = 4 executed whole; episodes end at success
    (sparse reward 1) or after 300 / 300 / 400 steps."""

    name = "robomimic"
    tasks = ("lift", "can", "square")
    metric = "success"

    def presets(self) -> dict[str, Any]:
        # robosuite steps at ~150/s here, so budgets are small; successes come after ~100–250 steps;
        # 20-episode evaluations
        return sparse_task_presets(eval_trials=20)

    def algo_presets(self) -> dict[str, dict[str, Any]]:
        # DPPO's robomimic fine-tuning learning rates are its avoid ones (actor 1e-5, critic 1e-3); one env
        return AvoidingSuite.algo_presets(self)

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        from .robomimic_bases import robomimic_base_policy

        _, path = robomimic_base_policy(task, cache_dir=cfg.cache_dir, progress=False, kind=kind,
                                        **({} if cfg.bc_steps is None else {"bc_steps": cfg.bc_steps}))
        return str(path)

    def make_env(self, task: str) -> Any:
        from .robomimic_tasks import RobomimicEnv

        return RobomimicEnv(task)

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int, exec_steps: int | None = None
                 ) -> dict[str, float]:
        from lpds_core.evaluation import evaluate_chunks

        # 4 envs at a time: each robosuite env holds its own MuJoCo model (and costs ~1 s to build)
        res = evaluate_chunks(lambda: self.make_env(task), act, n_episodes, seed, exec_steps=exec_steps, n_envs=4)
        return {"return": res["return"], "success": res["success"], "length": res["length"]}

    def entropy_observations(self, task: str, n: int, seed: int) -> np.ndarray:
        env = self.make_env(task)  # seeded start states: where the approach (the diversity) is chosen
        try:
            return np.stack([env.reset(seed=seed + i)[0] for i in range(n)]).astype(np.float32)
        finally:
            env.close()


class AdroitSuite(Suite):
    """Adroit hand tasks (gymnasium-robotics 1.4.2 through `lpds_sim.benchmarks.adroit`): success (D4RL's: the goal
    held on more than 25 of the 200 steps) and the env's v1 dense return; the base is BC on the scripted operator's
    demos, trained into the cache (~/.cache/lpds or --cache-dir) on first use. Tasks: those with a scripted operator.
    Chunk H = 4 executed whole, 200-step episodes (no early termination)."""

    name = "adroit"
    tasks = ("relocate", "hammer")  # = adroit.operators.OPERATORS (not imported: gymnasium-robotics prints on import)
    metric = "success"

    def presets(self) -> dict[str, Any]:
        # 200-step episodes; evaluations of 20 episodes (≈ 2 s each on this CPU)
        return sparse_task_presets(eval_trials=20)

    def algo_presets(self) -> dict[str, dict[str, Any]]:
        # DPPO has no Adroit setting; its Gym fine-tuning rates with Avoiding's single-env rollouts (250 chunks =
        # 5 episodes per update)
        return {"dppo": {"lr_actor": 1e-4, "lr_critic": 1e-3, "rollout_steps": 250, "ppo_batch_size": 1000}}

    def prepare(self, task: str, cfg: Any, kind: str = "flow") -> str:
        from .adroit.base import adroit_base_policy

        _, path = adroit_base_policy(task, cache_dir=cfg.cache_dir, progress=False, kind=kind,
                                     **({} if cfg.bc_steps is None else {"bc_steps": cfg.bc_steps}))
        return str(path)

    def load_base(self, path: str) -> Any:
        from lpds_core.checkpoint import load_backbone, read_metadata
        from lpds_core.errors import CheckpointError

        task = str(read_metadata(path).get("extra", {}).get("task", ""))
        if not task.startswith("adroit_"):
            raise CheckpointError(f"checkpoint '{path}' is a base for {task or 'an unknown task'}, not an Adroit "
                                  f"task; let `lpds bench adroit` train its own")
        return load_backbone(path, expect={"task": task}).freeze()

    def make_env(self, task: str) -> Any:
        from .adroit import make_env

        return make_env(task)

    def evaluate(self, task: str, act: ActBatch, n_episodes: int, seed: int, exec_steps: int | None = None
                 ) -> dict[str, float]:
        from lpds_core.evaluation import evaluate_chunks

        res = evaluate_chunks(lambda: self.make_env(task), act, n_episodes, seed, exec_steps=exec_steps)
        return {"return": res["return"], "success": res["success"], "length": res["length"]}

    def entropy_observations(self, task: str, n: int, seed: int) -> np.ndarray:
        env = self.make_env(task)  # start states (seeded: the object and target placements), like Gym's
        try:
            return np.stack([env.reset(seed=seed + i)[0] for i in range(n)]).astype(np.float32)
        finally:
            env.close()


SUITES: dict[str, Suite] = {s.name: s for s in (ToySuite(), GymSuite(), AvoidingSuite(), RobomimicSuite(),
                                              AdroitSuite())}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise ConfigError(f"unknown benchmark suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]
