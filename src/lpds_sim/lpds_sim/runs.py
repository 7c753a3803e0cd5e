"""Run folders: the one place a training job keeps its config, checkpoints, scalars and plots.

Layout of a run folder (the same for `train-base`, `train-steer` and the pipeline stages)::

    RUN/
      config.yaml          every setting of the job (plus `kind`: base | steer)
      checkpoints/         ckpt_<step>.pt, written atomically; the newest valid one is resumed
                           best.pt + best.json: the agent with the best periodic-evaluation score so far
      provenance.json      git commit, package versions and the command line of every session of the run
      tb/                  TensorBoard event files
      scalars.jsonl        the same scalars as plain JSON lines (plots and reports read these)
      plots/               learning-curve PNGs
      done.json            written last: the job finished and its outputs are valid

Why atomic checkpoints: a job killed with SIGKILL (OOM killer, a closed laptop, `kill -9`) must never leave a
half-written file that the next `--resume` chokes on. We write to a temporary file in the same folder, fsync it,
and `os.replace` it over the final name, so a checkpoint is either the complete old one or the complete new one.

Paths a run depends on (the base run, the demo file: `PATH_KEYS`) are stored relative to the run folder and
resolved against it on read, so a run folder moved or copied together with what it points to keeps working
(the absolute path at start, in provenance.json, is the fallback for a run moved alone).
A run "holds work" once it has a checkpoint or done.json: a start that failed before either (bad data, a missing
base run) leaves a folder that the corrected rerun reuses instead of "already holds a run".
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

import numpy as np
import yaml

CKPT_RE = re.compile(r"^ckpt_(\d{10})\.pt$")
FORMAT_VERSION = 1
PATH_KEYS = ("base", "data")  # config keys that name files/folders: stored relative to the run folder
PROVENANCE_FILE = "provenance.json"
PROVENANCE_PACKAGES = ("lpds_core", "lpds_sim", "lpds_ros", "torch", "numpy", "gymnasium", "robotic", "onnxruntime")


from lpds_core import config as _schema
from lpds_core import jsonio
from lpds_core.errors import CheckpointError, ConfigError, DataError, RunError, UserError  # noqa: F401  (re-exported)


class RunCheckpointError(CheckpointError):
    """A run checkpoint is unreadable (truncated, corrupt, wrong format)."""


# --------------------------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------------------------
C = TypeVar("C")
# The schema machinery is lpds_core.config's (one home); these are the run-folder-facing names for it.
read_yaml_mapping = _schema.read_yaml


def config_from_dict(cls: type[C], data: Mapping[str, Any], where: str = "config", kind: str | None = None) -> C:
    """A config from a mapping (sections or flat keys; a run's saved config with its `kind`), every value
    converted to its field's type and checked; unknown keys are one ConfigError listing the valid ones."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of key: value, got {type(data).__name__}")
    return _schema.build(cls, _schema.strip_meta(data, kind, where), where)


def load_yaml_config(path: str | os.PathLike, cls: type[C], kind: str | None = None) -> C:
    return config_from_dict(cls, read_yaml_mapping(path), where=str(path), kind=kind)


def merge_config(cls: type[C], defaults: C, file: str | os.PathLike | None, overrides: Mapping[str, Any],
                 kind: str | None = None) -> C:
    """defaults < config file < command-line overrides (None means 'not given'); unknown keys are an error."""
    return _schema.resolve(cls, file, {k: v for k, v in overrides.items() if v is not None}, kind=kind,
                           base=defaults)


def add_config_flags(parser: Any, cls: type, *, skip: Iterable[str] = (), required: Iterable[str] = ()) -> None:
    """`--config FILE.yaml` plus one flag per setting of `cls` (derived from the schema, defaults in --help)."""
    parser.add_argument("--config", metavar="FILE.yaml",
                        help=f"YAML with any {cls.__name__} keys (flat, or in sections); a run's own config.yaml "
                             f"works too; unknown keys are an error. Flags win over the file")
    _schema.add_flags(parser, cls, skip=skip, required=required)


def config_from_args(cls: type[C], args: Any, kind: str | None = None, base: C | None = None) -> C:
    """A CLI's settings: defaults (or `base`) < `--config` file < every flag of the schema that was given."""
    return _schema.resolve(cls, getattr(args, "config", None), _schema.given_flags(cls, args), kind=kind, base=base,
                           read=read_config_file)


def read_config_file(path: str | os.PathLike) -> Mapping[str, Any]:
    """A `--config` YAML; a run's own config.yaml (it names its `kind`) has its paths resolved against its folder,
    where they are stored relative, so it works as --config from any working directory."""
    data = dict(_schema.read_yaml(path))
    if "kind" in data:
        run = Path(path).parent
        for key in PATH_KEYS:
            if isinstance(data.get(key), str) and data[key]:
                data[key] = resolve_run_path(run, key, data[key])
    return data


def resume_base(cls: type[C], args: Any, kind: str) -> C | None:
    """With `--resume`, the settings saved in `--out`/config.yaml (so `--resume --out RUN` is enough; flags given
    as well are checked against them when the run reopens); None for a fresh run."""
    path = Path(args.out) / "config.yaml"
    if not getattr(args, "resume", False) or not path.is_file():
        return None
    return config_from_dict(cls, read_config_dict(args.out), str(path), kind=kind)


def save_config(path: str | os.PathLike, cfg: Any) -> None:
    data = _schema.to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    atomic_write_bytes(Path(path), yaml.safe_dump(data, sort_keys=False).encode())


def read_config_dict(run: str | os.PathLike) -> dict[str, Any]:
    """A run's saved config, with its `PATH_KEYS` resolved against the run folder (see `resolve_run_path`)."""
    path = Path(run) / "config.yaml"
    if not Path(run).exists():
        raise RunError(f"run folder {run} does not exist; check the path")
    if not path.is_file():
        raise RunError(f"{run} is not a run folder: {path} is missing (was the run created by `lpds train-*`?)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RunError(f"{path} is not valid YAML ({' '.join(str(exc).split())}); the run folder is damaged") from exc
    if not isinstance(data, dict):
        raise RunError(f"{path} does not hold a mapping; the run folder is damaged")
    for key in PATH_KEYS:
        if isinstance(data.get(key), str) and data[key]:
            data[key] = resolve_run_path(run, key, data[key])
    return data


def relative_to_run(run: str | os.PathLike, value: str) -> str:
    """`value` (a path as the user gave it, relative to the working directory) relative to the run folder."""
    if not value:
        return value
    return os.path.relpath(os.path.abspath(value), os.path.abspath(run))


def resolve_run_path(run: str | os.PathLike, key: str, stored: str) -> str:
    """A stored path of a run: relative ones against the run folder; if that is gone (the run was moved alone),
    the absolute path recorded at start, when it still exists."""
    if os.path.isabs(stored):
        return stored
    here = os.path.normpath(os.path.join(str(run), stored))
    if os.path.exists(here):
        return here
    prov = Path(run) / PROVENANCE_FILE
    try:
        first = json.loads(prov.read_text())["sessions"][0]["paths"].get(key)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        first = None
    return first if first and os.path.exists(first) else here


# --------------------------------------------------------------------------------------------------------------
# atomic files
# --------------------------------------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass


def atomic_write_json(path: Path, obj: Any) -> None:
    """Strict JSON (non-finite → null, `lpds_core.jsonio`), written atomically."""
    atomic_write_bytes(Path(path), jsonio.dumps(obj, indent=2).encode())


# --------------------------------------------------------------------------------------------------------------
# RNG state (python, numpy global, torch) — restored on resume so a resumed run continues the same random stream
# --------------------------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    import torch

    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])


def generator_state(gen: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator's state in a form `torch.load(weights_only=True)` accepts (ints as strings)."""
    return _ints_to_str(gen.bit_generator.state)


def set_generator_state(gen: np.random.Generator, state: Mapping[str, Any]) -> None:
    gen.bit_generator.state = _str_to_ints(state)


def _ints_to_str(obj: Any) -> Any:  # PCG64 state holds 128-bit ints, which torch's safe unpickler handles, but
    if isinstance(obj, dict):  # we keep them as strings so the format does not depend on that
        return {k: _ints_to_str(v) for k, v in obj.items()}
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return f"int:{obj}"
    return obj


def _str_to_ints(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _str_to_ints(v) for k, v in obj.items()}
    if isinstance(obj, str) and obj.startswith("int:"):
        return int(obj[4:])
    return obj


# --------------------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Serialise `state` (tensors, numpy arrays, plain python) with a checksum, atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(_np_to_torch(dict(state)), buf)
    payload = buf.getvalue()
    header = json.dumps({"format": "lpds-run-ckpt", "version": FORMAT_VERSION,
                         "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}).encode()
    atomic_write_bytes(Path(path), len(header).to_bytes(4, "little") + header + payload)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; any damage raises RunCheckpointError with the fix."""
    import torch

    path = Path(path)
    fix = "delete it to resume from the previous checkpoint, or start the run again without --resume"
    if not path.is_file():
        raise RunCheckpointError(f"checkpoint {path} does not exist")
    raw = path.read_bytes()
    try:
        n = int.from_bytes(raw[:4], "little")
        header = json.loads(raw[4:4 + n])
        if header.get("format") != "lpds-run-ckpt":
            raise ValueError("not an LP-DS run checkpoint")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunCheckpointError(f"checkpoint {path} is corrupt or not an LP-DS run checkpoint ({exc}); {fix}") from exc
    if header.get("version") != FORMAT_VERSION:
        raise RunCheckpointError(f"checkpoint {path} has format version {header.get('version')}, "
                                 f"this code reads version {FORMAT_VERSION}")
    payload = raw[4 + n:]
    if len(payload) != header["size"] or hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise RunCheckpointError(f"checkpoint {path} is corrupt (checksum mismatch: truncated or overwritten); {fix}")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a damaged file for the user
        raise RunCheckpointError(f"checkpoint {path} cannot be loaded ({exc}); {fix}") from exc


def _np_to_torch(obj: Any) -> Any:
    """numpy arrays → torch tensors (safe-loadable); recursive over dicts/lists."""
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _np_to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_np_to_torch(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class Checkpointer:
    """Numbered checkpoints in RUN/checkpoints; keeps the newest `keep`; resumes from the newest readable one.
    Beside them, best.pt holds the state with the best periodic-evaluation score so far (`save_best`)."""

    BEST = "best.pt"
    BEST_INFO = "best.json"

    def __init__(self, folder: str | os.PathLike, keep: int = 2):
        self.folder = Path(folder)
        self.keep = max(1, keep)

    def paths(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := CKPT_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def save(self, step: int, state: Mapping[str, Any]) -> Path:
        path = self.folder / f"ckpt_{int(step):010d}.pt"
        save_checkpoint(path, {**state, "step": int(step)})
        for old in self.paths()[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> Path | None:
        paths = self.paths()
        return paths[-1] if paths else None

    def load_latest(self) -> dict[str, Any] | None:
        """The newest checkpoint; a damaged newest one is an error (we never silently skip work the user has)."""
        path = self.latest()
        return None if path is None else load_checkpoint(path)

    def best(self) -> Path | None:
        path = self.folder / self.BEST
        return path if path.is_file() else None

    def best_score(self) -> float | None:
        try:
            return float(json.loads((self.folder / self.BEST_INFO).read_text())["score"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save_best(self, step: int, score: float, state: Mapping[str, Any]) -> bool:
        """Keep `state` as best.pt when `score` (higher is better) beats the best so far; ties keep the earlier.
        Returns whether it was kept. A non-finite score is never kept."""
        score = float(score)
        best = self.best_score()
        if not np.isfinite(score) or (best is not None and self.best() is not None and score <= best):
            return False
        save_checkpoint(self.folder / self.BEST, {**state, "step": int(step), "score": score})
        atomic_write_json(self.folder / self.BEST_INFO, {"step": int(step), "score": score})
        return True


# --------------------------------------------------------------------------------------------------------------
# scalars: TensorBoard + JSON lines
# --------------------------------------------------------------------------------------------------------------
class ScalarLog:
    """Scalars to TensorBoard and to scalars.jsonl. On resume, rows after the checkpoint step are dropped
    (from both), so a killed-and-resumed run has one clean curve."""

    def __init__(self, run: str | os.PathLike, resume_step: int | None = None, tensorboard: bool = True):
        self.run = Path(run)
        self.path = self.run / "scalars.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_scalars(self.run) if r["step"] <= resume_step]
            atomic_write_bytes(self.path, "".join(jsonio.dumps(r) + "\n" for r in kept).encode())
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run / "tb"), purge_step=resume_step)
            except ImportError:  # pragma: no cover - tensorboard is in requirements.txt
                self._tb = None

    def log(self, step: int, group: str, **values: float) -> None:
        row = {"step": int(step), "group": group, **{k: float(v) for k, v in values.items()}}
        self._fh.write(jsonio.dumps(row) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(f"{group}/{k}", float(v), int(step))

    def flush(self) -> None:
        self._fh.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def read_scalars(run: str | os.PathLike, group: str | None = None) -> list[dict[str, Any]]:
    path = Path(run) / "scalars.jsonl"
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if group is None or row.get("group") == group:
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------------------
# the run folder
# --------------------------------------------------------------------------------------------------------------
class RunDir:
    """A run folder. `open(..., resume=False)` refuses a folder that holds work so nothing is overwritten."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    config_path = property(lambda self: self.root / "config.yaml")
    ckpt_dir = property(lambda self: self.root / "checkpoints")
    plots_dir = property(lambda self: self.root / "plots")
    done_path = property(lambda self: self.root / "done.json")
    provenance_path = property(lambda self: self.root / PROVENANCE_FILE)

    def holds_work(self) -> bool:
        """A checkpoint, done.json or logged scalars: what a failed start never leaves behind."""
        scalars = self.root / "scalars.jsonl"
        return (self.done_path.exists() or bool(self.checkpointer().paths())
                or (self.ckpt_dir / Checkpointer.BEST).exists() or (scalars.is_file() and scalars.stat().st_size > 0))

    @classmethod
    def open(cls, root: str | os.PathLike, cfg: Any, resume: bool, kind: str,
             must_match: Iterable[str] = ()) -> "RunDir":
        """Create RUN (fresh) or reopen it (resume). On resume, keys in `must_match` must equal the saved config.
        A folder left by a failed start (config.yaml but no work) is reused by a fresh start."""
        run = cls(root)
        given = {"kind": kind, **(_schema.to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg))}
        if run.config_path.exists():
            if not resume and run.holds_work():
                raise RunError(f"run folder {run.root} already holds a run; pass --resume to continue it "
                               f"or choose another --out")
            if resume:
                run._check_resumable(cfg, kind, must_match)
        stored = {k: relative_to_run(run.root, v) if k in PATH_KEYS and isinstance(v, str) else v
                  for k, v in given.items()}
        run.root.mkdir(parents=True, exist_ok=True)
        run.ckpt_dir.mkdir(exist_ok=True)
        run.plots_dir.mkdir(exist_ok=True)
        if not (run.config_path.is_file() and run._saved_raw() == stored):  # an unchanged config is left alone
            save_config(run.config_path, stored)
        run.record_provenance(resume, {k: os.path.abspath(v) for k, v in given.items()
                                       if k in PATH_KEYS and isinstance(v, str) and v})
        if run.done_path.exists() and not resume:
            run.done_path.unlink()
        return run

    def _saved_raw(self) -> Any:
        try:
            return yaml.safe_load(self.config_path.read_text())
        except (OSError, yaml.YAMLError):
            return None

    def _check_resumable(self, cfg: Any, kind: str, must_match: Iterable[str]) -> None:
        """The saved settings, read back through the schema (a key added after the run was started counts as its
        default; older layouts are converted by legacy_keys), must equal `cfg` on `must_match`: one message lists
        every conflict. Paths count as equal when they name the same file or folder."""
        saved = read_config_dict(self.root)  # its paths resolved against the run folder
        if saved.get("kind") != kind:
            raise RunError(f"{self.root} is a '{saved.get('kind')}' run, not a '{kind}' run")
        before = (config_from_dict(type(cfg), saved, str(self.config_path), kind=kind)
                  if dataclasses.is_dataclass(cfg) else saved)

        def same(key: str, old: Any, new: Any) -> bool:
            if key in PATH_KEYS and isinstance(old, str) and isinstance(new, str):
                return os.path.realpath(old) == os.path.realpath(new)
            return old == new

        bad = _schema.conflicts(before, cfg, must_match, same=same)
        if bad:
            raise RunError(f"cannot resume {self.root} with other settings: {'; '.join(bad)}; drop those "
                           f"flags (--resume reads the run's config.yaml) or use a new --out")

    def record_provenance(self, resume: bool, paths: Mapping[str, str]) -> None:
        """Append this session (git commit, package versions, command line, absolute paths) to provenance.json;
        a fresh start begins a new record."""
        sessions: list[Any] = []
        if resume and self.provenance_path.is_file():
            try:
                sessions = list(json.loads(self.provenance_path.read_text()).get("sessions", []))
            except (ValueError, AttributeError):
                sessions = []
        sessions.append({**provenance(), "resume": bool(resume), "paths": dict(paths)})
        atomic_write_json(self.provenance_path, {"sessions": sessions})

    def checkpointer(self, keep: int = 2) -> Checkpointer:
        return Checkpointer(self.ckpt_dir, keep=keep)

    def config(self) -> dict[str, Any]:
        return read_config_dict(self.root)

    def mark_done(self, **summary: Any) -> None:
        atomic_write_json(self.done_path, summary)

    def is_done(self) -> bool:
        return self.done_path.is_file()

    def summary(self) -> dict[str, Any]:
        if not self.is_done():
            raise RunError(f"run {self.root} has not finished (no done.json); resume it with --resume")
        return json.loads(self.done_path.read_text())


def git_commit(where: str | os.PathLike | None = None) -> str:
    """The commit of the git checkout holding `where` (this package by default), '<sha>-dirty' with local
    changes, 'unknown' outside a checkout or without git."""
    where = Path(where or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if sha.returncode != 0 or not sha.stdout.strip():
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names: Iterable[str] = PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions by distribution metadata (nothing is imported); 'not installed' when absent."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        found = "not installed"
        for dist in (name, name.replace("_", "-")):
            try:
                found = version(dist)
                break
            except PackageNotFoundError:
                continue
        out[name] = found
    return out


def cpu_facts() -> dict[str, Any]:
    """The CPU's model and whether it has bf16 matrix units: `decoder_precision: auto` decodes in bf16 only there,
    so the same seed gives other (equally valid) numbers on a CPU without them."""
    import platform

    from lpds_core.agents.base import cpu_bf16_matmul

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "bf16_matmul": cpu_bf16_matmul()}


def provenance() -> dict[str, Any]:
    """What reproduces a session: time, git commit, package versions, python, CPU, the full command line and cwd."""
    import datetime
    import platform

    return {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "packages": package_versions(), "python": platform.python_version(),
            "cpu": cpu_facts(), "argv": list(sys.argv), "cwd": os.getcwd()}


def require_run(run: str | os.PathLike, kind: str, task: str | None = None) -> dict[str, Any]:
    """The saved config of a finished run of `kind`; a clear error for a missing, unfinished or other-task run."""
    cfg = read_config_dict(run)
    if cfg.get("kind") != kind:
        raise RunError(f"{run} is a '{cfg.get('kind')}' run; expected a '{kind}' run")
    if task is not None and cfg.get("task") != task:
        raise RunError(f"{run} is a {kind} run for task '{cfg.get('task')}', but this job is for task '{task}'; "
                       f"pass a {kind} run trained on '{task}'")
    if not (Path(run) / "done.json").is_file():
        raise RunError(f"{kind} run {run} has not finished (no done.json); resume it with --resume first")
    return cfg
