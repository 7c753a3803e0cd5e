"""`lpds export`: a finished run → ONNX files for the robot PC, checked against torch before they are accepted.

The graphs and `OnnxPolicy` are `lpds_core.export`'s. This module rebuilds the run's policy (frozen backbone +
the steering agent's perturbation), exports it with the run's facts as metadata, and runs a parity check on real
environment observations and shared noise: the export is only marked valid (parity.json with "passed": true) when
max |torch − onnxruntime| ≤ tol, so the pipeline never deploys a model that disagrees with what was trained.

Nothing of the user's is lost: the export is built in a temporary sibling of --out and swapped in (one atomic
rename on Linux) only after the parity check passed; an --out that holds anything but an earlier export (its
parity.json says "format": "lpds-export") is refused, and a failed export leaves an existing one untouched.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core.config import flatten
from lpds_core.errors import UserError

from lpds_sim import runs

PARITY_FILE = "parity.json"
EXPORT_FORMAT = "lpds-export"  # parity.json's marker: this folder is an export that `lpds export` may replace
CHECKPOINT_CHOICES = ("latest", "best")  # or a path to a run checkpoint (ckpt_*.pt, best.pt)


class ParityError(UserError):
    """The exported ONNX policy does not reproduce the torch policy within the tolerance."""


def load_steered_policy(run: str | Path, env: Any = None, checkpoint: str = "latest"):
    """(backbone, agent, run config) of a steer run (agent None for a base run). `env`: an env of the run's task
    to take the spaces from (one is made if not given). `checkpoint`: "latest" (the finished run's agent.pt),
    "best" (checkpoints/best.pt, the best periodic evaluation) or a path to a run checkpoint."""
    import torch
    from lpds_core.agents import make_agent

    from lpds_sim.evaluation import make_env
    from lpds_sim.train_steer import SteerConfig, load_base, steering_obs_space

    cfg = runs.read_config_dict(run)
    kind = cfg.get("kind")
    if kind == "base":
        if checkpoint != "latest":
            raise runs.RunError(f"{run} is a base run, which has one model (backbone.safetensors); drop "
                                f"--checkpoint {checkpoint} (it picks a steer run's checkpoint)")
        backbone, base_cfg = load_base(run)
        return backbone, None, base_cfg
    if kind != "steer":
        raise runs.RunError(f"{run} is a '{kind}' run; export takes a train-steer (or train-base) run")
    if checkpoint == "latest":
        runs.require_run(run, "steer")
    scfg = runs.config_from_dict(SteerConfig, {k: v for k, v in cfg.items() if k != "kind"}, str(run))
    backbone, base_cfg = load_base(scfg.base, scfg.task)
    own = env is None
    env = make_env(scfg.task, base_cfg["obs"]) if own else env
    try:
        agent = make_agent(scfg.algo, backbone, obs_space=steering_obs_space(scfg, env),
                           action_space=env.action_space, config=scfg.agent)
    finally:
        if own:
            env.close()
    path, state = agent_weights(run, checkpoint)
    try:
        agent.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001
        raise runs.RunCheckpointError(f"{path} does not fit this run's agent ({_short(exc)}); "
                                      f"it is from another run: pass a checkpoint of {run}") from exc
    agent.eval()
    return backbone, agent, {**base_cfg, **cfg, "checkpoint": str(path)}


def agent_weights(run: str | Path, checkpoint: str = "latest") -> tuple[Path, dict[str, Any]]:
    """(file, agent state dict) of a steer run's chosen checkpoint (see `load_steered_policy`)."""
    import torch

    run = Path(run)
    if checkpoint == "latest":
        path = run / "agent.pt"
        if not path.is_file():
            raise runs.RunError(f"{path} is missing: the steer run did not finish; resume it with --resume, or "
                                f"pass --checkpoint best")
        try:
            return path, torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a damaged file for the user
            raise runs.RunCheckpointError(f"{path} is corrupt or truncated ({_short(exc)}); "
                                          f"rerun `lpds train-steer --resume` to rewrite it, or pass --checkpoint "
                                          f"best") from exc
    if checkpoint == "best":
        path = runs.RunDir(run).checkpointer().best()
        if path is None:
            raise runs.RunError(f"{run} has no best checkpoint yet (checkpoints/best.pt is written at each "
                                f"periodic evaluation); pass --checkpoint latest")
    else:
        path = Path(checkpoint)
        if not path.is_file() and (run / "checkpoints" / checkpoint).is_file():
            path = run / "checkpoints" / checkpoint
        if not path.is_file():
            raise runs.RunError(f"--checkpoint {checkpoint}: no such file; pass latest, best, or a file in "
                                f"{run / 'checkpoints'}")
    state = runs.load_checkpoint(path)
    if "agent" not in state:
        raise runs.RunCheckpointError(f"{path} holds no agent weights; pass a train-steer checkpoint "
                                      f"(ckpt_*.pt or best.pt)")
    return path, state["agent"]


def _short(exc: BaseException, n: int = 120) -> str:
    """The first sentence of an exception's message, on one line (library messages run over several)."""
    text = " ".join(str(exc).split())
    return text.split(". ")[0][:n]


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


def export_run(run: str | Path, out: str | Path, tol: float = 1e-4, n_check: int = 16,
               checkpoint: str = "latest", noise_scale: float = 1.0) -> dict[str, Any]:
    """Export `run` to `out` (decoder.onnx [+ perturbation.onnx] + parity.json) once parity holds; see the
    module doc for what is refused and what is kept. `noise_scale`: the deploy temperature c the exported policy
    decodes c·ε at (1: the policy as trained); only for policies that decode ε (base, lpds, lpds-a)."""
    from lpds_core.export import export_onnx
    from lpds_core.onnx_policy import OnnxPolicy

    from lpds_sim.evaluation import make_env

    out = Path(out)
    check_noise_scale(noise_scale)
    check_export_target(out, run)
    cfg0 = runs.read_config_dict(run)
    task = cfg0.get("task")
    obs_mode = runs.read_config_dict(cfg0["base"]).get("obs") if cfg0.get("kind") == "steer" else cfg0.get("obs")
    env = make_env(task, obs_mode)  # the only env of this process: spaces and parity observations
    try:
        backbone, agent, cfg = load_steered_policy(run, env=env, checkpoint=checkpoint)
        pert, space = _perturbation_of(agent)
        obs = sample_observations(env, n_check, seed=12345)
    finally:
        env.close()
    cfg = flatten(cfg)  # steer run configs keep the agent's settings in their `agent:` section
    meta = {"task": cfg["task"], "algo": cfg.get("algo", "base"), "delta": cfg.get("delta"),
            "perturbation_space": space, "run": str(Path(run).resolve()), "checkpoint": cfg.get("checkpoint"),
            "tr_norm": cfg.get("tr_norm"), "control_hz": 10.0, "noise_scale": float(noise_scale)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))  # ours: removed on every exit
    try:
        export_onnx(backbone, pert, tmp, metadata=meta, action_bounds=None if agent is None else agent.action_bounds())
        eps = np.random.default_rng(0).standard_normal((n_check, *backbone.noise_shape)).astype(np.float32)
        ref = _torch_reference(backbone, agent, obs, np.float32(noise_scale) * eps, space)
        got = OnnxPolicy(tmp).act(obs, eps=eps)
        diff = float(np.max(np.abs(ref - got)))
        if not diff <= tol:  # NaN fails too
            kept = " (the existing export there is unchanged)" if out.exists() else ""
            raise ParityError(f"ONNX export of {run} differs from torch by {diff:.3e} > {tol:g}, so it was not "
                              f"installed as {out}{kept}; check the run, or pass a larger --tol")
        record = {"format": EXPORT_FORMAT, "passed": True, "max_abs_diff": diff, "tol": tol,
                  "n_observations": n_check, "files": sorted(p.name for p in tmp.glob("*.onnx")), **meta}
        runs.atomic_write_json(tmp / PARITY_FILE, record)
        check_export_target(out, run)  # again: nothing may have appeared there meanwhile
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the built files (failure) or the replaced export (success)
    return record


def check_noise_scale(c: float) -> None:
    """ConfigError unless c is a finite number ≥ 0 (the deploy temperature)."""
    from lpds_core.errors import ConfigError
    from lpds_core.onnx_policy import valid_noise_scale

    if not valid_noise_scale(c):
        raise ConfigError(f"--noise-scale {c!r} must be a finite number ≥ 0 (1 = the policy as trained, 0 = its "
                          f"mean-noise decode)")


def is_export(folder: str | Path) -> bool:
    """Whether `folder` holds only an earlier `lpds export` output (its parity.json marker and listed files)."""
    folder = Path(folder)
    try:
        rec = json.loads((folder / PARITY_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(rec, dict) or rec.get("format") != EXPORT_FORMAT:
        return False
    own = {PARITY_FILE, *rec.get("files", [])}
    return all(p.name in own and p.is_file() for p in folder.iterdir())


def check_export_target(out: Path, run: str | Path) -> None:
    """RunError unless `out` is absent, an empty folder, or an earlier export (which the new one replaces)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise runs.RunError(f"--out {out} is a file; pass a folder for the export")
    if Path(run).resolve() == out.resolve():
        raise runs.RunError(f"--out {out} is the run folder itself; pass a new folder, e.g. {Path(run) / 'export'}")
    if any(out.iterdir()) and not is_export(out):
        raise runs.RunError(f"--out {out} already holds files that are not an `lpds export` output; nothing was "
                            f"changed: choose an empty or new folder")


def _swap_in(new: Path, out: Path) -> None:
    """Put folder `new` at `out`; an existing `out` ends up at `new` (the caller removes it). Atomic on Linux
    (renameat2 RENAME_EXCHANGE); elsewhere two renames, so a crash in between leaves the old export at `new`."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        if out.exists():
            out.rmdir()
        os.rename(new, out)
        return
    if _exchange(new, out):
        return
    old = new.with_name(new.name + ".old")
    os.rename(out, old)
    os.rename(new, out)
    os.rename(old, new)


def _exchange(a: Path, b: Path) -> bool:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def export_valid(out: str | Path) -> bool:
    path = Path(out) / PARITY_FILE
    if not path.is_file():
        return False
    rec = json.loads(path.read_text())
    return bool(rec.get("passed")) and all((Path(out) / f).is_file() for f in rec.get("files", []))
