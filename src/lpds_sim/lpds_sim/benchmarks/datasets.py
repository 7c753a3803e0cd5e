"""Gym locomotion "medium" datasets, made the way D4RL made them, stored in Minari's format.

D4RL's medium datasets are 1M transitions of a SAC snapshot at about one third of expert return, acting with
its stochastic policy. `make_dataset` rolls out our shipped medium policy the same way, seeded (env resets and
the policy's sampling noise), so the same command and seed always write the same data. `load_episodes` reads our
datasets or a community one (`mujoco/hopper/medium-v0`) that the user has downloaded, into plain arrays.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lpds_core.errors import ConfigError, DataError

from .experts import load_policy, make_env
from .gym_tasks import GymTask, get_task

DATASET_VERSION = "v0"
DEFAULT_N_STEPS = 1_000_000  # D4RL's medium datasets hold 1M transitions
KINDS = ("medium",)


def datasets_root() -> Path:
    """Where datasets live: $MINARI_DATASETS_PATH if set (Minari's own variable), else ~/.cache/lpds/minari."""
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".cache" / "lpds" / "minari")


def _use_root() -> Path:
    root = datasets_root()
    os.environ["MINARI_DATASETS_PATH"] = str(root)  # minari reads the variable on every call
    return root


def parse_name(name: str) -> tuple[GymTask, str]:
    """'hopper-medium' → (hopper task, 'medium')."""
    task_name, _, kind = name.rpartition("-")
    if not task_name or kind not in KINDS:
        raise ConfigError(f"unknown dataset {name!r}; use TASK-KIND with KIND in {', '.join(KINDS)}, "
                          f"e.g. hopper-medium")
    return get_task(task_name), kind


def dataset_id(task: GymTask, kind: str) -> str:
    """Our Minari id, e.g. lpds/hopper/medium-v0 (the community's is mujoco/hopper/medium-v0)."""
    return f"lpds/{task.name}/{kind}-{DATASET_VERSION}"


def shipped_policy(task: GymTask, kind: str = "medium") -> Path:
    """The policy file shipped in the package for (task, kind)."""
    return Path(str(resources.files("lpds_sim.benchmarks") / "weights" / f"{task.name}_{kind}.safetensors"))


@dataclass
class DatasetSummary:
    dataset_id: str
    path: Path
    n_steps: int
    n_episodes: int
    return_mean: float
    return_std: float
    normalized_mean: float
    policy: str


def rollout(policy: Callable[[torch.Tensor], torch.Tensor], env: Any, n_steps: int, seed: int,
            progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Episodes of `policy` (stochastic) totalling `n_steps` transitions; the last one is truncated at the budget.

    The first reset is seeded with `seed` and later resets continue the env's RNG, as Minari's collector does;
    the policy's noise comes from torch's RNG seeded with `seed` inside a fork, so the caller's RNG is untouched.
    """
    from tqdm.auto import tqdm

    episodes: list[dict[str, np.ndarray]] = []
    bar = tqdm(total=n_steps, desc="rollout", unit="step", disable=not progress, dynamic_ncols=True, mininterval=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        obs, _ = env.reset(seed=seed)
        done_steps = 0
        while done_steps < n_steps:
            ep: dict[str, list] = {"observations": [obs], "actions": [], "rewards": [], "terminations": [],
                                   "truncations": []}
            while True:
                with torch.no_grad():
                    action = policy(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)).reshape(-1).numpy()
                obs, r, term, trunc, _ = env.step(action)
                done_steps += 1
                trunc = bool(trunc) or (done_steps >= n_steps and not term)
                for key, value in (("observations", obs), ("actions", action), ("rewards", float(r)),
                                   ("terminations", bool(term)), ("truncations", trunc)):
                    ep[key].append(value)
                if term or trunc:
                    break
            bar.update(len(ep["actions"]))
            episodes.append({k: np.asarray(v, dtype=np.float32 if k in ("observations", "actions", "rewards")
                                           else bool) for k, v in ep.items()})
            if done_steps < n_steps:
                obs, _ = env.reset()
    bar.close()
    return episodes


def make_dataset(name: str, n_steps: int = DEFAULT_N_STEPS, seed: int = 0, policy_path: str | None = None,
                 overwrite: bool = False, progress: bool = False) -> DatasetSummary:
    """Write dataset `name` (e.g. hopper-medium) into the cache; refuses to replace one unless `overwrite`."""
    import minari
    from minari.data_collector import EpisodeBuffer

    task, kind = parse_name(name)
    if n_steps < 1:
        raise ConfigError(f"--n-steps must be >= 1, got {n_steps}")
    path = Path(policy_path) if policy_path else shipped_policy(task, kind)
    if not path.is_file():
        raise DataError(f"no {kind} policy for {task.name} at {path}: train one (lpds datasets train-expert "
                        f"--task {task.name} --out DIR) and pass --policy DIR/medium.safetensors")
    actor, meta = load_policy(path)
    if meta.get("task") != task.name:
        raise DataError(f"{path} is a policy for {meta.get('task')!r}, not {task.name}; pass the {task.name} one")
    root = _use_root()
    did = dataset_id(task, kind)
    target = root / did
    exists = f"dataset {did} already exists at {target}; pass --overwrite to replace it"
    if target.exists() and not overwrite:
        raise DataError(exists)

    env = make_env(task)
    episodes = rollout(lambda o: actor(o)[0], env, n_steps, seed, progress=progress)
    buffers = [EpisodeBuffer(id=i, seed=seed if i == 0 else None, **ep) for i, ep in enumerate(episodes)]
    if target.exists():  # replaced only now, so a failed rollout leaves the old dataset in place
        if not overwrite:  # another `lpds datasets make` wrote it meanwhile
            raise DataError(exists)
        minari.delete_dataset(did)
    minari.create_dataset_from_buffers(
        dataset_id=did, buffer=buffers, env=task.env_id, algorithm_name=f"LP-DS SAC {kind} snapshot",
        author="LP-DS", code_permalink="lpds datasets make", ref_min_score=task.ref_min,
        ref_max_score=task.ref_max,
        description=(f"{n_steps} transitions of the stochastic {kind} SAC policy ({path.name}, eval return "
                     f"{meta.get('eval_return', float('nan')):.1f} after {meta.get('steps')} steps), seed {seed}; "
                     f"D4RL's recipe"))
    rets = np.array([float(ep["rewards"].sum()) for ep in episodes])
    return DatasetSummary(did, target, n_steps, len(episodes), float(rets.mean()), float(rets.std()),
                          task.normalized(float(rets.mean())), str(path))


def load_episodes(dataset: str) -> list[dict[str, np.ndarray]]:
    """Episodes of a local Minari dataset — ours (`hopper-medium`, `lpds/hopper/medium-v0`) or a downloaded
    community one (`mujoco/hopper/medium-v0`) — as dicts of observations (T+1, O), actions (T, A), rewards,
    terminations, truncations (T,)."""
    import minari

    did = dataset_id(*parse_name(dataset)) if "/" not in dataset else dataset
    root = _use_root()
    if not (root / did).exists():
        hint = (f"make it with `lpds datasets make {did.split('/')[1]}-{did.split('/')[2].split('-')[0]}`"
                if did.startswith("lpds/") else "download it with `minari download` (needs internet)")
        raise DataError(f"no dataset {did} under {root} (MINARI_DATASETS_PATH); {hint}")
    try:
        ds = minari.load_dataset(did)
        out = []
        for ep in ds.iterate_episodes():
            out.append({"observations": np.asarray(ep.observations, np.float32),
                        "actions": np.asarray(ep.actions, np.float32),
                        "rewards": np.asarray(ep.rewards, np.float32),
                        "terminations": np.asarray(ep.terminations, bool),
                        "truncations": np.asarray(ep.truncations, bool)})
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"dataset {did} under {root} cannot be read ({type(e).__name__}: {e}); remake it with "
                        f"--overwrite") from e
    if not out:
        raise DataError(f"dataset {did} under {root} holds no episodes; remake it with --overwrite")
    return out
