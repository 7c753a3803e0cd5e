"""One benchmark run = (suite, task, algo, seed, env-step budget, overrides) in its own run folder.

What a run folder of a bench holds (lpds_sim.runs.RunDir, so the layout, atomic checkpoints and provenance are
the training commands'): config.yaml (every setting, checked again on resume), provenance.json, workers.jsonl (the
Ray node id, host and pid of every session), scalars.jsonl (group "eval": env steps → return / success), the
checkpoints of learning algorithms, metrics.json (final return, success, normalised return, AUC, KL action
entropy, env steps, wall time; the temperature run: one row per c), whatever the suite keeps of its final
evaluation (`Suite.save_final`; Avoiding: the trajectories and their figure) and done.json, written last.

Algorithms: `base` (the frozen base, w ~ N(0, I)), `temperature` (no training: decode c·ε for each fixed c, a
curve over c), and the learning ones through the one steering loop (`lpds_core.training.run_steering`): lpds,
lpds-a, dsrl-na, dsrl-sac, and dppo where `lpds_core.agents` has it. Every one gets the same base and the same
env-step budget (environment steps, not chunks).
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.metrics import action_entropy, curve_auc

from lpds_sim import runs

KIND = "bench-run"
NO_TRAINING = ("base", "temperature")
FAULT_EXIT = 17  # exit status of a run killed by the test-only fault hook (`LPDS_BENCH_FAULT`)


def record_worker(run: runs.RunDir) -> dict[str, Any]:
    """Append where this session runs (Ray node id, host, pid) to RUN/workers.jsonl and return it."""
    info: dict[str, Any] = {"time": time.time(), "host": socket.gethostname(), "pid": os.getpid(), "node_id": None}
    try:
        import ray

        if ray.is_initialized():
            info["node_id"] = ray.get_runtime_context().get_node_id()
    except ImportError:  # pragma: no cover - ray is in requirements.txt
        pass
    with open(run.root / "workers.jsonl", "a") as fh:
        fh.write(json.dumps(info) + "\n")
    return info


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Run (or resume, or skip when finished) the job's run folder; returns its metrics.json content."""
    import torch

    from .suites import get_suite

    cfg = job["config"]
    suite = get_suite(cfg["suite"])
    run = runs.RunDir.open(job["root"], cfg, resume=True, kind=KIND, must_match=_match_keys(cfg))
    if run.is_done():
        return json.loads((run.root / "metrics.json").read_text())
    record_worker(run)
    if cfg["device"] == "cuda" and not torch.cuda.is_available():
        raise runs.RunError(f"run {job['name']}: --device cuda, but this worker has no CUDA device; use "
                            f"--device cpu or a cluster node with a GPU")
    torch.set_num_threads(int(cfg["agent"]["threads"]))
    backbone = suite.load_base(cfg["base"])
    t0 = time.perf_counter()
    if cfg["algo"] in NO_TRAINING:
        metrics = _no_training(suite, cfg, backbone, run)
    else:
        metrics = _steer(suite, cfg, backbone, run, fault=bool(job.get("fault")))
    metrics.setdefault("wall_s", time.perf_counter() - t0)  # learning runs: their loop's, over every session
    runs.atomic_write_json(run.root / "metrics.json", metrics)
    run.mark_done(name=job["name"], algo=cfg["algo"], env_steps=metrics["env_steps"])
    return metrics


def _match_keys(cfg: dict[str, Any]) -> list[str]:
    """Every setting of the run: a rerun with other settings into the same folder is refused, never mixed."""
    from lpds_core.config import flatten

    return sorted(flatten(cfg))


def _final(suite: Any, cfg: dict[str, Any], act: Any) -> dict[str, float]:
    """Final evaluation (cfg["trials"] episodes) and KL action entropy of one policy."""
    import torch

    task, seed = cfg["task"], int(cfg["seed"])
    torch.manual_seed(10_000 + seed)  # the same noise draws for every method (base and temperature c=1 agree)
    res = suite.evaluate(task, act, int(cfg["trials"]), seed=10_000 + seed,
                         exec_steps=cfg["train"].get("exec_steps"))
    obs = suite.entropy_observations(task, int(cfg["entropy_states"]), seed=50_000)
    res["action_entropy"] = action_entropy(act, obs, int(cfg["entropy_samples"]))
    res["normalised_return"] = suite.normalised(task, res["return"])
    return res


def _scaled(agent: Any, c: float) -> Any:
    return lambda o: agent.act_with_noise(o, eps_scale=np.full(len(o), float(c)))[0]


def _no_training(suite: Any, cfg: dict[str, Any], backbone: Any, run: runs.RunDir) -> dict[str, Any]:
    """base: one evaluation, logged at 0 and at the budget (a flat curve over the same x range as the others);
    temperature: one evaluation per c."""
    from lpds_core.agents import make_agent

    env = suite.make_env(cfg["task"])
    agent = make_agent("base", backbone, env.observation_space, cfg["agent"], env.action_space)
    agent.eval()
    n = int(cfg["train"]["env_steps"])
    temps = [1.0] if cfg["algo"] == "base" else [float(c) for c in cfg["temperatures"]]
    rows = []
    for c in temps:
        res = _final(suite, cfg, _scaled(agent, c))
        suite.save_final(run.root, f"c{c:g}" if cfg["algo"] == "temperature" else "")
        rows.append({"c": c, **res})
    if cfg["algo"] == "base":
        log = runs.ScalarLog(run.root, tensorboard=False)
        for step in (0, n):
            log.log(step, "eval", **{k: rows[0][k] for k in ("return", "success")})
        log.close()
        return {**rows[0], "auc": rows[0][suite.metric], "env_steps": 0, "budget": n}
    return {"temperature": rows, "env_steps": 0, "budget": n}


class _BenchSink:
    """train_steer's run-folder sink (scalars + checkpoints with agent, replay, RNG), plus the test-only fault
    hook: the run named by LPDS_BENCH_FAULT exits right after its first checkpoint, like a killed worker."""

    def __init__(self, inner: Any, fault: bool):
        self.inner, self.fault = inner, fault

    def log(self, step: int, group: str, values: dict[str, float]) -> None:
        self.inner.log(step, group, values)

    def checkpoint(self, state: Any) -> None:
        self.inner.checkpoint(state)
        if self.fault:
            self.inner.log_.flush()
            os._exit(FAULT_EXIT)


def _steer(suite: Any, cfg: dict[str, Any], backbone: Any, run: runs.RunDir, fault: bool) -> dict[str, Any]:
    import gymnasium as gym
    import torch
    from lpds_core.agents import AgentConfig, make_agent
    from lpds_core.config import build
    from lpds_core.replay import ReplayBuffer
    from lpds_core.training import LoopConfig, LoopState, as_chunk_env, run_steering

    from lpds_sim.train_steer import _RunSink, restore_checkpoint

    task, seed = cfg["task"], int(cfg["seed"])
    agent_cfg = AgentConfig.from_dict(cfg["agent"])
    loop = build(LoopConfig, cfg["train"], f"{run.root}/config.yaml")
    torch.manual_seed(seed)
    np.random.seed(seed)
    h, a = backbone.noise_shape

    def one_env() -> Any:
        return as_chunk_env(suite.make_env(task), h, a, agent_cfg.gamma, loop.exec_steps)

    vec = gym.vector.SyncVectorEnv if loop.vector == "sync" else gym.vector.AsyncVectorEnv
    envs = vec([one_env] * loop.n_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    agent = make_agent(cfg["algo"], backbone, envs.single_observation_space, agent_cfg, envs.single_action_space)
    replay = ReplayBuffer(min(loop.buffer_capacity, loop.env_steps), backbone.noise_shape, seed=seed)
    ck = run.checkpointer()
    state = ck.load_latest()
    loop_state = restore_checkpoint(state, agent, replay) if state is not None else LoopState()
    log = runs.ScalarLog(run.root, resume_step=loop_state.env_steps if state is not None else None,
                         tensorboard=False)
    sink = _BenchSink(_RunSink(log, ck, agent, replay, agent_cfg.delta), fault)

    def evaluate(env_steps: int) -> dict[str, float]:
        agent.eval()
        res = suite.evaluate(task, agent.act, loop.eval_trials, seed=10_000 + seed, exec_steps=loop.exec_steps)
        agent.train()
        return {"return": res["return"], "success": res["success"]}

    if state is not None and loop_state.env_steps % loop.eval_every == 0:
        # the loop evaluates at a step after checkpointing it, and a resumed loop does not evaluate at its start:
        # a run killed right after a checkpoint would lose that point of its curve, so it is taken here
        if loop_state.env_steps not in {r["step"] for r in runs.read_scalars(run.root, "eval")}:
            sink.log(loop_state.env_steps, "eval", evaluate(loop_state.env_steps))
    try:
        st = run_steering(envs, agent, loop, replay, evaluate=evaluate, sink=sink, state=loop_state,
                          progress=False, desc=f"{cfg['algo']} {task} seed {seed}")
    finally:
        envs.close()
        log.close()
    agent.eval()
    res = _final(suite, cfg, agent.act)
    suite.save_final(run.root, "")
    ev = sorted({r["step"]: r for r in runs.read_scalars(run.root, "eval")}.items())
    auc = curve_auc([s for s, _ in ev], [r[suite.metric] for _, r in ev]) if ev else None
    return {**res, "auc": auc, "env_steps": st.env_steps, "budget": loop.env_steps, "updates": st.updates,
            "resumed_from": None if state is None else int(state["step"]), "wall_s": st.wall_s,
            "trust_region": agent.trust_region.describe() if hasattr(agent, "trust_region") else None}


def label(algo: str, overrides: list[tuple[str, Any]] | list[list[Any]], base_kind: str | None = None) -> str:
    """The method's name in tables and legends: `lpds δ=0.1` for a δ-ablation run, `lpds [diffusion base]` in a
    flow-vs-diffusion sweep."""
    names = {"delta": "δ"}
    return " ".join([algo] + [f"{names.get(k, k)}={v:g}" if isinstance(v, float) else f"{names.get(k, k)}={v}"
                              for k, v in overrides] + ([f"[{base_kind} base]"] if base_kind else []))


def folder(task: str, algo: str, seed: int, overrides: list[tuple[str, Any]] | list[list[Any]],
           base_kind: str | None = None) -> Path:
    """RUNS/<task>/<algo>[_<key><value>...][_<kind>base]/seed<seed>: one folder per run, named by what defines
    it."""
    name = algo + "".join(f"_{k}{v:g}" if isinstance(v, float) else f"_{k}{v}" for k, v in overrides)
    return Path(task) / (name + (f"_{base_kind}base" if base_kind else "")) / f"seed{seed}"
