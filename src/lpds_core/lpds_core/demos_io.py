"""Demonstrations on disk: robomimic-style HDF5 (numpy + h5py only: the robot PC's recorder writes these files
without torch or the simulator; `lpds_sim.demos_io` re-exports this module).

Layout: `data` group with attrs `total` (transitions), `env_args` (JSON: task, env id, env kwargs, obs keys,
state layout, action semantics) and one group per episode `data/demo_k` (attr `num_samples`) holding
`obs/<key>` (T, ...), `actions` (T, A), `rewards` (T,), `dones` (T,). Image keys are `rgb` uint8 (T,3,H,W),
`depth` float32 metres (T,1,H,W), `proprio` float32 (T,P); state mode stores `state` float32 (T,D).
Optional, as in robomimic's own files: `data/demo_k/next_obs/<key>` and `data/demo_k/states` (simulator states),
and top-level `mask/<split>` datasets listing demo names as byte strings (e.g. `mask/train`, `mask/valid`); the
reader returns those splits in `meta["masks"]`.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lpds_core import jsonio
from lpds_core.errors import DataError

FORMAT_VERSION = 1


@dataclass
class Episode:
    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # where it came from, e.g. "data/demo_3" (for error messages)
    next_obs: dict[str, np.ndarray] | None = None  # robomimic's `next_obs` (its loader reads it by default)
    states: np.ndarray | None = None  # simulator states (robomimic's `states`, for replay)

    def __len__(self) -> int:
        return len(self.actions)


class DemoSet(list):
    """A list of `Episode`s plus the file's metadata (`meta`: env_args and file attributes)."""

    def __init__(self, episodes: list[Episode], meta: dict[str, Any]):
        super().__init__(episodes)
        self.meta = meta


def stack_obs(obs_list: list) -> dict[str, np.ndarray]:
    """List of per-step observations (array or dict of arrays) -> dict of stacked arrays."""
    if isinstance(obs_list[0], dict):
        return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    return {"state": np.stack(obs_list).astype(np.float32)}


def write_demos(path: str | os.PathLike, episodes: list[Episode], env_args: dict[str, Any],
                attrs: dict[str, Any] | None = None, masks: dict[str, list[str]] | None = None) -> Path:
    """Write `episodes` as data/demo_0.. (atomically: a temporary file renamed when complete); `masks` maps a
    split name to demo names (`{"train": ["demo_0", ...], "valid": [...]}`), written as robomimic's `mask/<split>`."""
    import h5py
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = jsonio.dumps(env_args)
        data.attrs["total"] = int(sum(len(e) for e in episodes))
        data.attrs["format_version"] = FORMAT_VERSION
        _put_attrs(data, attrs or {})
        for i, ep in enumerate(episodes):
            _write_episode(data, f"demo_{i}", ep)
        for split, names in (masks or {}).items():
            unknown = sorted(set(names) - set(data.keys()))
            if unknown:
                raise ValueError(f"mask {split!r} names demos that are not in the file: {unknown[:3]}")
            f.create_dataset(f"mask/{split}", data=np.array([n.encode() for n in names], dtype="S"))
    os.replace(tmp, path)  # never leave a half-written file under the final name
    return path


def _put_attrs(obj: Any, attrs: dict[str, Any]) -> None:
    for k, v in attrs.items():
        obj.attrs[k] = v if isinstance(v, (int, float, str, bool)) else jsonio.dumps(v)


def _write_episode(data: Any, name: str, ep: Episode) -> None:
    g = data.create_group(name)
    g.attrs["num_samples"] = len(ep)
    _put_attrs(g, ep.attrs)
    og = g.create_group("obs")
    for k, v in ep.obs.items():
        og.create_dataset(k, data=v, compression="lzf" if np.ndim(v) >= 3 else None)
    g.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float32))
    g.create_dataset("rewards", data=np.asarray(ep.rewards, dtype=np.float32))
    g.create_dataset("dones", data=np.asarray(ep.dones, dtype=bool))
    if ep.next_obs is not None:
        ng = g.create_group("next_obs")
        for k, v in ep.next_obs.items():
            ng.create_dataset(k, data=v, compression="lzf" if np.ndim(v) >= 3 else None)
    if ep.states is not None:
        g.create_dataset("states", data=np.asarray(ep.states))


def _demo_names(data: Any) -> list[str]:
    return sorted((k for k in data.keys() if k.startswith("demo_") and k[5:].isdigit()),
                  key=lambda s: int(s.split("_")[1]))


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The file's `data` attributes (env_args decoded) and `n_episodes`, without reading any episode: lets a
    writer check an existing file's task and layout before it appends (DataError for an unreadable file)."""
    import h5py
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise DataError(f"{path} has no 'data' group: not a robomimic-style demo file")
            meta = {k: _decode(v) for k, v in f["data"].attrs.items()}
            meta["n_episodes"] = len(_demo_names(f["data"]))
            return meta
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file: {' '.join(str(exc).split())}") from exc


def append_demos(path: str | os.PathLike, episodes: list[Episode], attrs: dict[str, Any] | None = None) -> Path:
    """Add episodes after the last `data/demo_k` of an existing file (attrs updated, `total` recounted).

    Works on a copy that replaces the file only when complete, so a crash mid-write never damages the demos
    already in it. A DataError when an episode's observation keys, shapes or action size differ from the file's."""
    import h5py
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(path, tmp)
    try:
        with h5py.File(tmp, "a") as f:
            data = f["data"]
            names = _demo_names(data)
            if names:
                ref = data[names[-1]]
                want = {k: ref["obs"][k].shape[1:] for k in ref["obs"].keys()}
                want_a = ref["actions"].shape[1:]
                for ep in episodes:
                    got = {k: np.shape(v)[1:] for k, v in ep.obs.items()}
                    if got != want or np.shape(ep.actions)[1:] != want_a:
                        raise DataError(f"{path} holds observations {want} and actions {want_a}; the new episode "
                                        f"has {got} and {np.shape(ep.actions)[1:]}: write it to another file")
            start = int(names[-1].split("_")[1]) + 1 if names else 0
            for i, ep in enumerate(episodes):
                _write_episode(data, f"demo_{start + i}", ep)
            data.attrs["total"] = int(data.attrs.get("total", 0)) + int(sum(len(e) for e in episodes))
            _put_attrs(data, attrs or {})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def load_demos(path: str | os.PathLike) -> DemoSet:
    """Load every `data/demo_k` of a demo file, in index order. A DataError (one line, with the fix) for a
    missing, truncated or corrupt file, or a group without the robomimic keys."""
    import h5py
    path = Path(path)
    regen = f"regenerate it with `lpds demos --task TASK --out {path} --overwrite`"
    if not path.exists():
        raise DataError(f"demo file {path} does not exist; check the path, or create it with "
                        f"`lpds demos --task pick_place --n-demos 29 --obs state --out {path}`")
    if path.is_dir():
        raise DataError(f"demo file {path} is a folder; pass the .hdf5 file written by `lpds demos`")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"demo file {path} is not a readable HDF5 file ({' '.join(str(exc).split())}); it is "
                        f"corrupt or was not fully written: {regen}") from exc
    try:
        with f:
            return _read_demos(f, path, regen)
    except (OSError, RuntimeError) as exc:  # h5py's errors for damaged chunks inside an openable file
        raise DataError(f"demo file {path} is damaged ({' '.join(str(exc).split())[:160]}): {regen}") from exc


def _read_demos(f: Any, path: Path, regen: str) -> DemoSet:
    if "data" not in f:
        raise DataError(f"demo file {path} has no 'data' group: not a robomimic-style demo file; {regen}")
    data = f["data"]
    meta = {k: _decode(v) for k, v in data.attrs.items()}
    names = _demo_names(data)
    if not names:
        raise DataError(f"demo file {path} contains no data/demo_k groups; {regen}")
    eps = []
    for n in names:
        g = data[n]
        try:
            obs = {k: g["obs"][k][()] for k in g["obs"].keys()}
            ep = Episode(obs, g["actions"][()], g["rewards"][()], g["dones"][()],
                         {k: _decode(v) for k, v in g.attrs.items()},
                         next_obs={k: g["next_obs"][k][()] for k in g["next_obs"].keys()} if "next_obs" in g
                         else None,
                         states=g["states"][()] if "states" in g else None)
        except KeyError as exc:
            raise DataError(f"demo file {path}: group data/{n} lacks {exc}; expected obs/*, actions, rewards, "
                            f"dones: {regen}") from exc
        T = len(ep.actions)
        bad = [k for k, v in obs.items() if len(v) != T] + [k for k in ("rewards", "dones")
                                                            if len(getattr(ep, k)) != T]
        if bad:
            raise DataError(f"demo file {path}: data/{n} has {T} actions but {bad} differ in length; {regen}")
        ep.name = f"data/{n}"
        eps.append(ep)
    if "mask" in f:
        meta["masks"] = {k: [_decode(x) for x in f["mask"][k][()]] for k in f["mask"].keys()}
    return DemoSet(eps, meta)
