"""`lpds eval --policy PATH` for our outputs: an exported ONNX folder or a train-base / train-steer run folder.

Both become per-step policies (`reset()`, `policy(obs) -> action`) that replay each decoded chunk open loop, the
way the robot runs it. The ONNX loader needs no torch; the run loader rebuilds the torch agent.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from lpds_sim.evaluation import ChunkExecutor
from lpds_sim.policies import register_policy_loader


def _is_export(path: Path) -> bool:
    return path.is_dir() and (path / "decoder.onnx").is_file()


def _is_run(path: Path) -> bool:
    if not (path.is_dir() and (path / "config.yaml").is_file()):
        return False
    from lpds_sim import runs

    return runs.read_config_dict(path).get("kind") in ("base", "steer")


def _clipper(env: Any) -> Callable[[np.ndarray], np.ndarray]:
    low, high = env.action_space.low, env.action_space.high
    return lambda chunk: np.clip(chunk, low, high)


def load_export(path: Path, env: Any, task: str, seed: int = 0, checkpoint: str = "latest",
                noise_scale: float = 1.0) -> ChunkExecutor:
    from lpds_core.errors import RunError
    from lpds_core.onnx_policy import OnnxPolicy

    from lpds_sim.evaluation import check_policy_fits

    if checkpoint != "latest":
        raise RunError(f"--checkpoint {checkpoint} picks a run's weights; an export holds one model: export the "
                       f"checkpoint you want with `lpds export --checkpoint {checkpoint}`")
    pol = OnnxPolicy(path)
    meta_task = pol.spec.get("task")
    if meta_task is not None and meta_task != task:
        raise RunError(f"{path} was exported for task '{meta_task}', not '{task}'; pass --task {meta_task} or an "
                       f"export of a '{task}' run")
    check_policy_fits(env, pol.act_dim, list(pol.obs_spec), f"export {path}", task)
    rng = np.random.default_rng(seed)
    clip = _clipper(env)
    shape = (pol.horizon, pol.act_dim)

    def act(obs: Any) -> np.ndarray:  # ε ~ N(0, I) scaled by c (c = 1: the deployed policy)
        return clip(pol.act(obs, eps=noise_scale * rng.standard_normal(shape, dtype=np.float32)))

    return ChunkExecutor(act, pol.horizon)


def load_run(path: Path, env: Any, task: str, seed: int = 0, checkpoint: str = "latest",
             noise_scale: float = 1.0) -> ChunkExecutor:
    import torch
    from lpds_core.agents import make_agent

    from lpds_sim import runs
    from lpds_sim.evaluation import check_policy_fits
    from lpds_sim.export_run import load_steered_policy

    cfg = runs.read_config_dict(path)
    if cfg.get("task") != task:
        raise runs.RunError(f"{path} is a run for task '{cfg.get('task')}', not '{task}'; pass --task "
                            f"{cfg.get('task')} or a run of '{task}'")
    backbone, agent, _ = load_steered_policy(path, env=env, checkpoint=checkpoint)
    check_policy_fits(env, backbone.act_dim, list(backbone.obs_spec()), f"run {path}", task)
    if agent is None:
        agent = make_agent("base", backbone, obs_space=env.observation_space, action_space=env.action_space)
    torch.manual_seed(seed)
    if noise_scale == 1.0:  # the policy as deployed (every agent, DSRL and DPPO included)
        return ChunkExecutor(lambda obs: agent.act(obs), backbone.horizon)
    if agent.name not in ("base", "lpds", "lpds-a"):
        raise runs.RunError(f"--noise-scale {noise_scale:g} scales the ε of agents that decode ε + Δ (base, lpds, "
                            f"lpds-a); {path} is a {agent.name} run, which samples its own noise")
    scale = np.array([noise_scale])
    return ChunkExecutor(lambda obs: agent.act_with_noise(obs, eps_scale=scale)[0], backbone.horizon)


register_policy_loader("onnx-export", _is_export, load_export)
register_policy_loader("lpds-run", _is_run, load_run)
