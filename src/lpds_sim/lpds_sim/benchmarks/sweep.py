"""`lpds bench`: every (task, algo, seed[, δ]) of a benchmark as a Ray task, each in its own run folder.

Why run folders and not Ray's return values: the bench aggregates FROM THE FOLDERS, so a sweep killed at any point
(Ctrl-C, a lost node, a killed worker) restarted with the same command skips the finished runs (done.json),
resumes the unfinished ones from their newest checkpoint and redraws every figure from what is on disk.
Ray: `ray.init()` of a private local cluster on this machine by default (`--num-cpus`), `--address HOST:PORT` joins
an existing cluster (the run folders must then be on a file system every node sees). Each run declares its
resources (`--cpus-per-run`, `--gpus-per-run`); a run is never retried by Ray: a failed run is reported, with the
fix (rerun the same command), and the rest of the sweep goes on.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpds_core.agents.base import AgentConfig
from lpds_core.config import nested, setting, to_dict
from lpds_core.errors import ConfigError, RunError
from lpds_core.training import LoopConfig

from . import one_run

LEARNING = ("lpds", "dsrl-na", "dsrl-sac", "lpds-a", "dppo")
ALGOS = one_run.NO_TRAINING + LEARNING
DELTA_ALGOS = ("lpds",)  # algorithms that `--deltas` turns into one run per δ
KIND_ALGOS = ("base", "lpds", "lpds-a", "dsrl-na", "dsrl-sac")  # what `--base-kinds` runs once per kind of base
FAULT_ENV = "LPDS_BENCH_FAULT"  # test-only: the run folder name (task/algo/seedN) that exits after 1st checkpoint


@dataclass
class BenchConfig:
    """`lpds bench SUITE`: a sweep over tasks × algorithms × seeds (× δ), all from the same frozen base and at the
    same env-step budget (`--env-steps`, environment steps, not chunks). The suite's presets (e.g. the toy's
    network sizes and loop) replace the agent/train defaults shown here; --config and flags override both."""

    suite: str = setting("toy", "benchmark suite (positional argument)")
    tasks: list[str] = setting([], "tasks of the suite, comma-separated (none: all of them)")
    algos: list[str] = setting(["base", "temperature", "lpds"], "algorithms, comma-separated", choices=None)
    seeds: list[int] = setting([0, 1, 2], "seeds, comma-separated (the 95-percent interval is over these)", min=0)
    deltas: list[float] = setting([], "δ ablation: one lpds run per δ, comma-separated (none: --delta)", above=0)
    temperatures: list[float] = setting([0.0, 0.25, 0.5, 0.75, 1.0],
                                        "noise temperatures c of the temperature floor (decode c·ε)", min=0)
    trials: int = setting(200, "evaluation episodes of every final policy (and of each c)", min=1)
    entropy_states: int = setting(8, "fixed observations the KL action entropy is measured at", min=1)
    entropy_samples: int = setting(512, "sampled chunks per observation for the KL action entropy", min=4)
    out: str = setting("", "output folder: runs/ (one folder per run), figures and tables (none: runs/bench/SUITE)")
    address: str | None = setting(None, "Ray cluster to join (HOST:PORT; none: start a private one here)")
    num_cpus: int | None = setting(None, "CPUs of the local Ray cluster (none: all; ignored with --address)", min=1)
    device: str = setting("cpu", "device of every run (cuda: reserves --gpus-per-run and checks the node has a GPU; "
                                 "the agents still compute on the CPU)", choices=("cpu", "cuda"))
    cpus_per_run: float = setting(1.0, "CPUs Ray reserves for each run", above=0)
    gpus_per_run: float = setting(0.0, "GPUs Ray reserves for each run (> 0 with --device cuda)", min=0)
    cache_dir: str | None = setting(None, "where the suite caches what it builds, e.g. the toy base (none: "
                                          "~/.cache/lpds)")
    base_kind: str = setting("auto", "frozen base of every run: auto (the suite's choice per algorithm: flow, "
                                     "diffusion for dppo), flow or diffusion (the flow-vs-diffusion ablation)",
                             choices=("auto", "flow", "diffusion"))
    base_kinds: list[str] = setting([], "flow-vs-diffusion ablation: the noise-steering algorithms run once per "
                                        "base kind, comma-separated (flow,diffusion; none: --base-kind)")
    bc_steps: int | None = setting(None, "BC steps of a base the suite trains itself (toy; none: its default)",
                                   min=1)
    aggregate_only: bool = setting(False, "tables and figures from the runs already finished in --out, starting "
                                          "none (a look at a sweep still running elsewhere, or one cut short)")
    agent: AgentConfig = nested(AgentConfig)
    train: LoopConfig = nested(LoopConfig)

    def check(self) -> "BenchConfig":
        for name in ("tasks", "algos"):  # `--algos a,b` and YAML lists both work
            setattr(self, name, [p.strip() for v in getattr(self, name) for p in str(v).split(",") if p.strip()])
        bad = [a for a in self.algos if a not in ALGOS]
        if bad:
            raise ConfigError(f"--algos: unknown {', '.join(bad)}; choose from {', '.join(ALGOS)}")
        if not self.algos:
            raise ConfigError("--algos is empty; name at least one of " + ", ".join(ALGOS))
        if not self.seeds:
            raise ConfigError("--seeds is empty; give at least one seed, e.g. --seeds 0,1,2")
        if "temperature" in self.algos and not self.temperatures:
            raise ConfigError("--temperatures is empty but --algos has temperature; give e.g. 0,0.5,1")
        self.base_kinds = [p.strip() for v in self.base_kinds for p in str(v).split(",") if p.strip()]
        bad_kinds = [k for k in self.base_kinds if k not in ("flow", "diffusion")]
        if bad_kinds or len(set(self.base_kinds)) != len(self.base_kinds):
            raise ConfigError(f"--base-kinds {','.join(self.base_kinds)}: list flow and/or diffusion, each once")
        if self.base_kinds and not set(self.algos) & set(KIND_ALGOS):
            raise ConfigError(f"--base-kinds needs one of {', '.join(KIND_ALGOS)} in --algos")
        if self.base_kinds and self.base_kind != "auto":
            raise ConfigError("--base-kinds and --base-kind both choose the base: give one of them")
        if self.deltas and not set(self.algos) & set(DELTA_ALGOS):
            raise ConfigError(f"--deltas needs one of {', '.join(DELTA_ALGOS)} in --algos")
        if self.device == "cuda" and self.gpus_per_run <= 0:
            raise ConfigError("--device cuda needs --gpus-per-run > 0 (e.g. 1, or 0.25 to share a GPU)")
        if self.device == "cpu" and self.gpus_per_run > 0:
            raise ConfigError("--gpus-per-run > 0 reserves GPUs that --device cpu runs never use; add --device cuda")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds lists a seed twice: {self.seeds}")
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"runs/bench/{self.suite}")


def bench_defaults(suite: str) -> BenchConfig:
    """The suite's presets as the base of the settings (defaults < suite presets < --config < flags)."""
    from .suites import get_suite

    return dataclasses.replace(BenchConfig(suite=suite), **get_suite(suite).presets())


def check_algos(algos: list[str]) -> None:
    """DPPO is accepted where lpds_core.agents provides it, refused with one line where it does not."""
    from lpds_core.agents import AGENTS

    missing = [a for a in algos if a in LEARNING and a not in AGENTS]
    if missing:
        raise ConfigError(f"--algos {','.join(missing)}: this lpds_core has no such agent (make_agent has "
                          f"{', '.join(sorted(AGENTS))}); drop it from --algos")


def plan(cfg: BenchConfig, bases: dict[tuple[str, str], str],
         base_kind: Any = lambda algo: "diffusion" if algo == "dppo" else "flow") -> list[dict[str, Any]]:
    """One job per (task, algo[, δ], seed): its run folder and the exact settings saved there; `bases` maps
    (task, base kind) to the base's file."""
    from .suites import get_suite

    suite = get_suite(cfg.suite)
    preset_agent = to_dict(bench_defaults(cfg.suite).agent)
    chosen = to_dict(cfg.agent)
    # per-algorithm presets fill only what --config and flags left at the suite's preset: the user still wins
    algo_agent = {algo: {k: v for k, v in over.items() if chosen.get(k) == preset_agent.get(k)}
                  for algo, over in suite.algo_presets().items()}
    jobs = []
    runs_dir = cfg.out_dir / "runs"
    fault = os.environ.get(FAULT_ENV, "")
    for task in cfg.tasks:
        for algo in cfg.algos:
            variants = [[["delta", d]] for d in cfg.deltas] if cfg.deltas and algo in DELTA_ALGOS else [[]]
            per_kind = bool(cfg.base_kinds) and algo in KIND_ALGOS
            for kind, overrides in ((k, o) for k in (cfg.base_kinds if per_kind else [base_kind(algo)])
                                    for o in variants):
                named = kind if per_kind else None  # in the folder and label only when the sweep varies it
                for seed in cfg.seeds:
                    agent = {**chosen, **algo_agent.get(algo, {}), **dict(overrides)}
                    train = {**to_dict(cfg.train), "seed": seed}
                    rel = one_run.folder(task, algo, seed, overrides, named)
                    config = {"suite": cfg.suite, "task": task, "algo": algo, "seed": seed, "overrides": overrides,
                              "label": one_run.label(algo, overrides, named), "base": bases[(task, kind)],
                              "base_kind": kind, "device": cfg.device,
                              "trials": cfg.trials, "entropy_states": cfg.entropy_states,
                              "entropy_samples": cfg.entropy_samples, "agent": agent, "train": train}
                    if algo == "temperature":
                        config["temperatures"] = list(cfg.temperatures)
                    jobs.append({"name": str(rel), "root": str(runs_dir / rel), "config": config,
                                 "fault": fault == str(rel)})
    return jobs


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at `--address` (ray.init would wait for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379, the head's --port)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RunError(f"--address {address}: no Ray head answers there ({exc.strerror or exc}); start one with "
                       f"`ray start --head --port={port}` or drop --address to run on this machine") from None


def _ray_execute(job: dict[str, Any]) -> dict[str, Any]:
    """The Ray task: one run; a user error comes back as its one line (a RunError), not a traceback."""
    from lpds_core.errors import UserError

    try:
        return one_run.execute(job)
    except UserError as exc:
        raise RunError(f"run {job['name']}: {exc}") from None


def _init_ray(cfg: BenchConfig) -> Any:
    if cfg.address is None:  # a private local cluster: no token file in ~/.ray, no stale cluster to join
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if cfg.address:
        try:
            ray.init(address=cfg.address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RunError(f"--address {cfg.address}: cannot join a Ray cluster there "
                           f"({' '.join(str(exc).split())[:200]}); start one with `ray start --head` or drop "
                           f"--address") from None
    else:
        for attempt in (1, 2):  # Ray waits a hard-coded 30 s for its local node: a busy machine can miss it once
            try:
                ray.init(address="local", num_cpus=cfg.num_cpus, num_gpus=None if cfg.device == "cuda" else 0,
                         include_dashboard=False, logging_level="ERROR", log_to_driver=False)
                break
            except Exception as exc:  # Ray raises a bare Exception for this
                if "timed out during startup" not in str(exc):
                    raise
                ray.shutdown()
                if attempt == 2:
                    raise RunError("the local Ray node did not start within Ray's 30 s, twice (the machine is "
                                   "busy); rerun the same command when it is quieter, or start a cluster with "
                                   "`ray start --head` and pass --address 127.0.0.1:6379") from None
    return ray


def run_sweep(cfg: BenchConfig, progress: bool = True) -> dict[str, Any]:
    """Prepare the bases, run every unfinished run on Ray, aggregate from the run folders; returns the summary.
    Failed runs are listed in one RunError after the aggregation of the others."""
    from .aggregate import aggregate
    from .suites import get_suite

    suite = get_suite(cfg.suite)
    cfg.tasks = suite.check_tasks(cfg.tasks)
    check_algos(cfg.algos)
    if cfg.address:
        check_address(cfg.address)
    out = cfg.out_dir
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; pass a folder")
    kind_of = suite.base_kind if cfg.base_kind == "auto" else (lambda algo: cfg.base_kind)
    if "dppo" in cfg.algos and kind_of("dppo") != "diffusion":
        raise ConfigError("--algos dppo fine-tunes a diffusion base's chain; --base-kind flow cannot serve it: "
                          "use --base-kind auto or diffusion")
    kinds = list(dict.fromkeys([kind_of(a) for a in cfg.algos] + list(cfg.base_kinds)))
    # once, here: the same base for every run (per kind: DPPO steers a diffusion base)
    bases = {(task, kind): suite.prepare(task, cfg, kind) for task in cfg.tasks for kind in kinds}
    jobs = plan(cfg, bases, kind_of)
    done = [j for j in jobs if (Path(j["root"]) / "done.json").is_file()]
    todo = [j for j in jobs if j not in done]
    print(f"bench {cfg.suite}: {len(jobs)} runs ({len(done)} finished already, {len(todo)} to run) in {out}/runs",
          flush=True)
    if cfg.aggregate_only and not done:
        raise RunError(f"--aggregate-only: none of these {len(jobs)} runs has finished in {out}/runs; check --out and "
                       f"the sweep's flags, or run without --aggregate-only")
    failures: list[tuple[str, str]] = []
    if todo and cfg.aggregate_only:
        print(f"--aggregate-only: {len(todo)} unfinished runs left as they are", flush=True)
    elif todo:
        failures = _run_on_ray(cfg, todo, len(jobs), len(done), progress)
    summary = aggregate(cfg, jobs, suite)
    if failures:
        first = failures[0][1]
        raise RunError(f"{len(failures)} of {len(jobs)} runs failed ({', '.join(n for n, _ in failures)}; first: "
                       f"{first}); the others are in {out}; rerun the same command to resume the failed ones from "
                       f"their checkpoints")
    return summary


def _run_on_ray(cfg: BenchConfig, todo: list[dict[str, Any]], total: int, finished: int,
                progress: bool) -> list[tuple[str, str]]:
    ray = _init_ray(cfg)
    failures: list[tuple[str, str]] = []
    try:
        task = ray.remote(_ray_execute).options(num_cpus=cfg.cpus_per_run, num_gpus=cfg.gpus_per_run,
                                                max_retries=0)
        refs = {task.remote(job): job["name"] for job in todo}
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=finished, desc=f"bench {cfg.suite}", unit="run", dynamic_ncols=True)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a run's failure is reported, the sweep goes on
                    cause = getattr(exc, "cause", None) or exc
                    failures.append((refs[ref], " ".join(str(cause).split())[:300]))
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        ray.shutdown()
    return failures
