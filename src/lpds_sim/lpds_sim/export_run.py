"""`lpds export`: a finished run → ONNX files for the robot PC, checked against torch before they are accepted.

The graphs and `OnnxPolicy` are `lpds_core.export`'s. This module rebuilds the run's policy (frozen backbone +
the steering agent's perturbation), exports it with the run's facts as metadata, and runs a parity check on real
environment observations and shared noise: the export is only marked valid (parity.json with "passed": true) when
max |torch − onnxruntime| ≤ tol, so the pipeline never deploys a model that disagrees with what was trained.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.errors import UserError

from lpds_sim import runs

PARITY_FILE = "parity.json"


class ParityError(UserError):
    """The exported ONNX policy does not reproduce the torch policy within the tolerance."""


def load_steered_policy(run: str | Path, env: Any = None):
    """(backbone, agent, run config) of a finished steer run (agent None for a base run). `env`: an env of the
    run's task to take the spaces from (one is made if not given)."""
    import torch
    from lpds_core.agents import make_agent

    from lpds_sim.evaluation import make_env
    from lpds_sim.train_steer import SteerConfig, load_base, steering_obs_space

    cfg = runs.read_config_dict(run)
    kind = cfg.get("kind")
    if kind == "base":
        backbone, base_cfg = load_base(run)
        return backbone, None, base_cfg
    if kind != "steer":
        raise runs.RunError(f"{run} is a '{kind}' run; export takes a train-steer (or train-base) run")
    runs.require_run(run, "steer")
    scfg = runs.config_from_dict(SteerConfig, {k: v for k, v in cfg.items() if k != "kind"}, str(run))
    backbone, base_cfg = load_base(scfg.base, scfg.task)
    own = env is None
    env = make_env(scfg.task, base_cfg["obs"]) if own else env
    try:
        agent = make_agent(scfg.algo, backbone, obs_space=steering_obs_space(scfg, env),
                           action_space=env.action_space, config=scfg.agent_config())
    finally:
        if own:
            env.close()
    path = Path(run) / "agent.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        agent.load_state_dict(state)
    except FileNotFoundError as exc:
        raise runs.RunError(f"{path} is missing: the steer run did not finish; resume it with --resume") from exc
    except Exception as exc:  # noqa: BLE001
        raise runs.RunCheckpointError(f"{path} is corrupt or from another agent ({exc}); "
                                      f"rerun `lpds train-steer --resume` to rewrite it") from exc
    agent.eval()
    return backbone, agent, {**base_cfg, **cfg}


def _perturbation_of(agent: Any):
    """The module Δ(features[, eps]) the export takes, and the space it acts in."""
    if agent is None:
        return None, "noise"
    if hasattr(agent, "perturbation"):
        return agent.deployable_perturbation()
    raise runs.RunError(f"agent '{agent.name}' has no perturbation network to export (only lpds and lpds-a "
                        f"export as perturbation + decoder)")


def _torch_reference(backbone: Any, agent: Any, obs: Any, eps: np.ndarray, space: str):
    import torch

    with torch.no_grad():
        if isinstance(obs, dict):
            t_obs: Any = {k: torch.as_tensor(v) if v.dtype == np.uint8 else torch.as_tensor(v).float()
                          for k, v in obs.items()}
        else:
            t_obs = torch.as_tensor(obs).float()
        feats = backbone.encode(t_obs)
        e = torch.as_tensor(eps)
        if agent is None:
            return backbone.decode_features(feats, e).numpy()
        return agent.steered(feats, e, averaged=True)[0].numpy()  # the agent's own action, its clipping included


def sample_observations(env: Any, n: int, seed: int) -> Any:
    """Real observations from `env` (resets + a few random steps), batched."""
    rng = np.random.default_rng(seed)
    obs_list = []
    for i in range(n):
        o, _ = env.reset(seed=seed + i)
        for _ in range(int(rng.integers(0, 5))):
            o, *_ = env.step(env.action_space.sample())
        obs_list.append(o)
    if isinstance(obs_list[0], dict):
        return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    return np.stack(obs_list).astype(np.float32)


def export_run(run: str | Path, out: str | Path, tol: float = 1e-4, n_check: int = 16) -> dict[str, Any]:
    """Export `run` to `out` (decoder.onnx [+ perturbation.onnx]) and verify parity; writes out/parity.json."""
    from lpds_core.export import export_onnx
    from lpds_core.onnx_policy import OnnxPolicy

    from lpds_sim.evaluation import make_env

    cfg0 = runs.read_config_dict(run)
    task = cfg0.get("task")
    obs_mode = runs.read_config_dict(cfg0["base"]).get("obs") if cfg0.get("kind") == "steer" else cfg0.get("obs")
    env = make_env(task, obs_mode)  # the only env of this process: spaces and parity observations
    backbone, agent, cfg = load_steered_policy(run, env=env)
    pert, space = _perturbation_of(agent)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    meta = {"task": cfg["task"], "algo": cfg.get("algo", "base"), "delta": cfg.get("delta"),
            "perturbation_space": space, "run": str(Path(run).resolve()),
            "tr_norm": cfg.get("tr_norm"), "control_hz": 10.0}
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    export_onnx(backbone, pert, tmp, metadata=meta, action_bounds=None if agent is None else agent.action_bounds())

    obs = sample_observations(env, n_check, seed=12345)
    env.close()
    eps = np.random.default_rng(0).standard_normal((n_check, *backbone.noise_shape)).astype(np.float32)
    ref = _torch_reference(backbone, agent, obs, eps, space)
    got = OnnxPolicy(tmp).act(obs, eps=eps)
    diff = float(np.max(np.abs(ref - got)))
    record = {"passed": diff <= tol, "max_abs_diff": diff, "tol": tol, "n_observations": n_check,
              "files": sorted(p.name for p in tmp.glob("*.onnx")), **meta}
    runs.atomic_write_json(tmp / PARITY_FILE, record)
    if diff > tol:
        raise ParityError(f"ONNX export of {run} differs from torch by {diff:.3e} > {tol:g}; the files are left in "
                          f"{tmp} for inspection and were not installed as {out}")
    tmp.rename(out)
    return record


def export_valid(out: str | Path) -> bool:
    path = Path(out) / PARITY_FILE
    if not path.is_file():
        return False
    rec = json.loads(path.read_text())
    return bool(rec.get("passed")) and all((Path(out) / f).is_file() for f in rec.get("files", []))
