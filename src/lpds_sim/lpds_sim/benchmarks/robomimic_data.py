"""RoboMimic-format demonstrations made here by the scripted operators, and the loader for such files.

robomimic's human datasets (PH/MH) are remote and cannot be regenerated, so `make_demos` rolls the scripted
operators (`robomimic_operators`, styles cycling like MH's operators) out from seeded resets, keeps the successful
episodes only and writes them in robomimic's HDF5 layout through `lpds_core.demos_io`: `data` attrs `env_args`
(JSON: `env_name`, `type` = 1 (robosuite), `env_kwargs`, `env_version`) and `total`; `data/demo_k` with attr
`num_samples`, `obs/<key>` and `next_obs/<key>` for the four low-dim keys, `actions`, `rewards`, `dones`,
`states`; `mask/train`, `mask/valid` (90/10) plus one mask per operator style (like MH's operator masks).
`load_robomimic` reads ours or a real robomimic low-dim file into flat-observation episodes for BC.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lpds_core.demos_io import Episode, load_demos, read_meta, write_demos
from lpds_core.errors import ConfigError, DataError

from .robomimic_operators import STYLES, run_episode
from .robomimic_tasks import OBS_KEYS, RobomimicEnv, RobomimicTask, env_kwargs, get_task

MAKER = "lpds scripted robomimic demos v0"  # stamped on files we write: only those may be overwritten
VALID_FRACTION = 0.1
MAX_TRIES_PER_DEMO = 3  # give up when the operator fails this often (a bug, not bad luck)
DEFAULT_N_DEMOS = {"lift": 200, "can": 200, "square": 200}  # robomimic's PH sets: 200 demos per task


def data_root() -> Path:
    """Where made datasets go: $LPDS_ROBOMIMIC_DIR if set, else ~/.cache/lpds/robomimic."""
    return Path(os.environ.get("LPDS_ROBOMIMIC_DIR") or Path.home() / ".cache" / "lpds" / "robomimic")


def default_path(task: RobomimicTask, n_demos: int, seed: int) -> Path:
    return data_root() / task.name / f"scripted_n{n_demos}_seed{seed}.hdf5"


def robomimic_env_args(task: RobomimicTask) -> dict[str, Any]:
    """`env_args` as robomimic's `EnvUtils.create_env_from_metadata` reads it (type 1 = robosuite)."""
    import robosuite
    from robosuite.controllers import load_composite_controller_config

    kw = env_kwargs()
    kw["controller_configs"] = load_composite_controller_config(robot=kw["robots"])
    return {"env_name": task.env_name, "type": 1, "env_version": robosuite.__version__, "env_kwargs": kw}


@dataclass
class MakeSummary:
    path: Path
    n_demos: int
    attempts: int
    success_rate: float
    per_style: dict[str, tuple[int, int]]  # style -> (successes, attempts)
    mean_length: float
    return_mean: float | None = None  # the operator's mean return over all its episodes (None: not reported)


def make_demos(task_name: str, n_demos: int, seed: int = 0, out: str | os.PathLike | None = None,
               overwrite: bool = False, progress: bool = False) -> MakeSummary:
    """Roll out the scripted operators until `n_demos` succeed and write them to `out` (default: the cache).

    Episode i starts from `reset(seed=seed * 1_000_003 + i)` with style i mod 3, so a seed always gives the
    same file. An existing file is replaced only with `overwrite` and only if this maker wrote it."""
    task = get_task(task_name)
    if n_demos < 1:
        raise ConfigError(f"--n-demos must be >= 1, got {n_demos}")
    path = Path(out) if out else default_path(task, n_demos, seed)
    check_target(path, overwrite)
    styles = list(STYLES)
    env = RobomimicEnv(task.name)
    try:
        got = collect_successes(lambda s, style: run_episode(env, s, style), styles, n_demos, seed, task.name,
                                "robosuite", progress)
    finally:
        env.close()
    kept = [Episode(ep["obs"], ep["actions"], ep["rewards"], ep["dones"], attrs={"seed": ep["seed"],
                                                                               "operator": ep["style"]},
                    next_obs=ep["next_obs"], states=ep["states"]) for ep in got.kept]
    attempts, per_style = got.attempts, got.per_style
    masks = demo_masks([ep.attrs["operator"] for ep in kept], styles, seed)
    check_target(path, overwrite)  # again: another maker may have written it meanwhile
    write_demos(path, kept, robomimic_env_args(task), masks=masks,
                attrs={"maker": MAKER, "task": task.name, "seed": seed, "attempts": attempts,
                       "operator_success_rate": len(kept) / attempts})
    return MakeSummary(path, len(kept), attempts, len(kept) / attempts,
                       {s: (v[0], v[1]) for s, v in per_style.items()},
                       float(np.mean([len(e) for e in kept])))


@dataclass
class Collected:
    kept: list[dict[str, Any]]  # the successful episodes, in order, each with its "style"
    attempts: int
    per_style: dict[str, list[int]]  # style -> [successes, attempts]
    returns: list[float]  # the return of every episode run, kept or not


def collect_successes(run: Callable[[int, str], dict[str, Any]], styles: list[str], n_demos: int, seed: int,
                      task: str, sim: str, progress: bool = False) -> Collected:
    """Episodes `run(reset_seed, style)` until `n_demos` succeed: episode i starts from reset seed
    `seed * 1_000_003 + i` with style i mod len(styles), so a seed always gives the same episodes. A DataError
    when the operator succeeds in fewer than one in MAX_TRIES_PER_DEMO episodes (a bug, not bad luck)."""
    out = Collected([], 0, {s: [0, 0] for s in styles}, [])
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_demos, desc=f"{task} demos", unit="demo")
    try:
        while len(out.kept) < n_demos:
            if out.attempts >= MAX_TRIES_PER_DEMO * n_demos:
                raise DataError(f"the {task} operator succeeded only {len(out.kept)} times in {out.attempts} "
                                f"episodes; it is broken for this {sim} version: report it")
            style = styles[out.attempts % len(styles)]
            ep = run(seed * 1_000_003 + out.attempts, style)
            out.attempts += 1
            out.per_style[style][1] += 1
            out.returns.append(float(np.sum(ep["rewards"])))
            if not ep["success"]:
                continue
            out.per_style[style][0] += 1
            out.kept.append(dict(ep, style=style))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def demo_masks(styles_of: list[str], styles: list[str], seed: int) -> dict[str, list[str]]:
    """robomimic's masks of demos demo_0..: a seeded 90/10 `train`/`valid` split and one mask per operator style
    (`styles_of[i]`: the style of demo_i), like MH's operator masks."""
    names = [f"demo_{i}" for i in range(len(styles_of))]
    order = np.random.default_rng(seed).permutation(len(names))
    n_valid = int(round(VALID_FRACTION * len(names)))
    masks = {"valid": [names[i] for i in sorted(order[:n_valid])],
             "train": [names[i] for i in sorted(order[n_valid:])]}
    for s in styles:
        masks[s] = [n for n, st in zip(names, styles_of) if st == s]
    return masks


def check_target(path: Path, overwrite: bool, maker: str = MAKER) -> None:
    """Refuse to write over `path` unless `overwrite`, and then only a file that `maker` wrote (one line each)."""
    if not path.exists():
        return
    if not overwrite:
        raise DataError(f"{path} already exists; pass --overwrite to replace it, or --out another file")
    try:
        found = read_meta(path).get("maker")
    except DataError:
        found = None
    if found != maker:
        raise DataError(f"{path} exists and was not written by `lpds datasets make`; it is left alone: pass "
                        f"--out another file")


def load_robomimic(path: str | os.PathLike, split: str | None = None,
                   keys: tuple[str, ...] = OBS_KEYS) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
    """Episodes of a robomimic low-dim file (ours or robomimic's own) for BC: dicts with `obs` (T, D) float32,
    the `keys` concatenated in order (the envs' observation layout), `actions` (T, 7), `rewards`, `dones`, and
    `name`; plus the file's metadata. `split` picks the demos of one mask (e.g. "train", "valid")."""
    demos = load_demos(path)
    masks = demos.meta.get("masks") or {}
    if split is not None:
        if split not in masks:
            raise DataError(f"{path} has no mask {split!r} (masks: {sorted(masks) or 'none'}); pass one of "
                            f"those, or no split")
        wanted = {f"data/{n}" for n in masks[split]}
        selected = [ep for ep in demos if ep.name in wanted]
    else:
        selected = list(demos)
    out = []
    for ep in selected:
        missing = [k for k in keys if k not in ep.obs]
        if missing:
            raise DataError(f"{path}: {ep.name} lacks observation keys {missing} (it has {sorted(ep.obs)}); a "
                            f"robomimic low-dim file has {list(keys)}")
        obs = np.concatenate([np.asarray(ep.obs[k], np.float32).reshape(len(ep), -1) for k in keys], axis=1)
        out.append({"obs": obs, "actions": np.asarray(ep.actions, np.float32),
                    "rewards": np.asarray(ep.rewards, np.float32), "dones": np.asarray(ep.dones, bool),
                    "name": ep.name})
    return out, demos.meta
