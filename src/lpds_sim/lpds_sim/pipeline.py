"""`lpds pipeline`: emulated demos → base policy → LP-DS → ONNX export → grid evaluation → report.

Every stage writes into one run folder and checks its own outputs first, so a rerun (after a crash, a kill or a
changed later-stage setting) continues where it stopped instead of starting again:

    RUN/demos.hdf5   RUN/base/   RUN/steer/   RUN/export/   RUN/eval/{base,steered}/   RUN/report.md
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lpds_sim import runs
from lpds_sim.stages import Stage, run_stages
from lpds_sim.train_base import TASKS, BaseConfig
from lpds_sim.train_steer import SteerConfig


@dataclasses.dataclass
class PipelineConfig:
    task: str = "pick_place"
    obs: str = "state"
    backbone: str = "flow"
    n_demos: int = 29
    demo_seed: int = 0
    bc_steps: int = 3000
    bc_batch_size: int = 256
    horizon: int = 8
    algo: str = "lpds"
    delta: float = 8.0  # E‖Δ‖² summed over the 8×4 noise dims: room for a gain g = 0.5 on every dim (w = ε/2)
    env_steps: int = 100_000  # the budget; `make demo` (whole pipeline) stays within 15 min on 2 cores
    eval_every: int = 10_000
    warmup_steps: int = 5_000
    utd: int = 1
    batch_size: int = 128  # steering minibatch
    # LP-DS settings that made the pick_place gain (bench/RESULTS.md, "noise gain"): Δθ(s, ε) = h(s) − g(s)⊙ε,
    # chunks collected at noise levels c·ε with c ~ U(0, 1), a slow dual step, a faster critic
    use_eps: bool = True
    eps_form: str = "shrink"
    explore_eps_scale: list[float] | None = dataclasses.field(default_factory=lambda: [0.0, 1.0])
    eta_lambda: float = 0.001
    lr_critic: float = 0.001
    tau: float = 0.02
    critic_state: bool = True  # image obs, lpds/lpds-a: the critic reads the simulator state (asymmetric actor-critic)
    n_envs: int = 2
    trials_per_cell: int = 5  # final grid: 2×4×5 = 40 trials for pick-and-place, 2×2×5 = 20 for mug hanging
    seed: int = 0
    threads: int = 1

    def check(self) -> "PipelineConfig":
        if self.task not in TASKS:
            raise runs.ConfigError(f"task={self.task!r} is not valid; choose one of {', '.join(TASKS)}")
        if self.n_demos < 1:
            raise runs.ConfigError(f"n_demos must be >= 1, got {self.n_demos}")
        return self

    def base_config(self, data: Path) -> BaseConfig:
        return BaseConfig(task=self.task, data=str(data), backbone=self.backbone, obs=self.obs, horizon=self.horizon,
                          grad_steps=self.bc_steps, batch_size=self.bc_batch_size, seed=self.seed,
                          threads=self.threads)

    def steer_config(self, base: Path) -> SteerConfig:
        """The `lpds train-steer` settings; the Δθ(s, ε) form and the noise-level exploration only for LP-DS."""
        noise_steer = self.algo in ("lpds", "lpds-a")
        return SteerConfig(base=str(base), task=self.task, algo=self.algo, delta=self.delta,
                           env_steps=self.env_steps, eval_every=self.eval_every, warmup_steps=self.warmup_steps,
                           utd=self.utd, batch_size=self.batch_size, n_envs=self.n_envs, seed=self.seed,
                           threads=self.threads, ckpt_every=max(1000, self.env_steps // 10),
                           use_eps=self.use_eps and noise_steer, eps_form=self.eps_form,
                           explore_eps_scale=self.explore_eps_scale if noise_steer else None,
                           eta_lambda=self.eta_lambda, lr_critic=self.lr_critic, tau=self.tau,
                           critic_state=self.critic_state and noise_steer and self.obs == "image").check()


# ---------------------------------------------------------------------------------------------------------------
# stage outputs and their validity checks
# ---------------------------------------------------------------------------------------------------------------
def demos_valid(path: Path, task: str, n: int, obs: str) -> bool:
    from lpds_sim.demos_io import load_demos

    if not path.is_file():
        return False
    demos = load_demos(path)
    env_kwargs = (demos.meta.get("env_args") or {}).get("env_kwargs") or {}
    return len(demos) >= n and demos.meta.get("task") == task and env_kwargs.get("obs_mode", obs) == obs


def lpds(*args: str) -> None:
    """Run one `lpds` subcommand in its own process (each stage gets a clean process: RAI PhysX must not see the
    simulations of earlier stages, and a crash in one stage leaves the finished ones intact)."""
    cmd = [sys.executable, "-m", "lpds_sim.cli", *args]
    print("$ lpds " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    errors = [ln[len("error: "):] for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    if proc.returncode:  # the stage's own one-line error becomes the pipeline's one line
        why = errors[-1] if errors else f"exit code {proc.returncode}: {proc.stderr.strip()[-300:]}"
        raise runs.RunError(f"stage `lpds {args[0]}` failed: {why} (fix it and rerun the pipeline: finished "
                            f"stages are kept)")
    sys.stderr.write(proc.stderr)


def record_demos(cfg: PipelineConfig, path: Path) -> None:
    """`lpds demos` into a temporary name, renamed when complete (an interrupted recording is never 'valid')."""
    tmp = path.with_name(path.stem + ".partial.hdf5")
    tmp.unlink(missing_ok=True)
    lpds("demos", "--task", cfg.task, "--n", str(cfg.n_demos), "--obs", cfg.obs, "--seed", str(cfg.demo_seed),
         "--out", str(tmp), "--no-progress")
    os.replace(tmp, path)


def run_done(path: Path) -> bool:
    return (path / "done.json").is_file() and (path / "config.yaml").is_file()


def _resume(path: Path) -> list[str]:
    return ["--resume"] if (path / "config.yaml").is_file() else []


def eval_valid(path: Path, n_trials: int, policy: Path) -> bool:
    res = path / "grid_results.json"
    if not res.is_file():
        return False
    doc = json.loads(res.read_text())
    # the policy by its name in the pipeline folder (base, export), so a moved pipeline folder stays valid
    return (int(doc.get("total", -1)) == n_trials and not doc.get("partial")
            and Path(str(doc.get("meta", {}).get("policy"))).name == policy.name)


def n_grid_trials(cfg: PipelineConfig) -> int:
    from lpds_sim.evaluation import grid_shape

    rows, cols, _ = grid_shape(cfg.task)
    return rows * cols * cfg.trials_per_cell


def evaluate_policy(cfg: PipelineConfig, policy: Path, out: Path) -> None:
    """`lpds eval` on the task's grid: the same seed (cell jitter) for base and steered. The stage's own folder:
    results there are stale (the stage is invalid), so they are replaced."""
    lpds("eval", "--task", cfg.task, "--policy", str(policy), "--obs", cfg.obs, "--out", str(out),
         "--seed", str(20_000 + cfg.seed), "--trials", str(cfg.trials_per_cell), "--no-progress", "--overwrite")


def _grid(path: Path) -> dict[str, Any]:
    doc = json.loads((path / "grid_results.json").read_text())
    rets = [t["ret"] for t in doc["trials"]]
    return {"n_success": doc["successes"], "n_trials": doc["total"], "success_rate": doc["success_rate"],
            "mean_return": sum(rets) / len(rets)}


def steer_description(cfg: PipelineConfig) -> str:
    """One line on what the steering stage learned, for the report."""
    sc = cfg.steer_config(Path("base"))
    if sc.algo not in ("lpds", "lpds-a"):
        return f"Steering: {sc.algo} (noise-space SAC baseline)."
    form = {"shrink": "Δθ(s, ε) = h(s) − g(s)⊙ε (shift + per-dimension noise gain)",
            "mlp": "Δθ(s, ε) (an MLP of state and noise)"}[sc.eps_form] if sc.use_eps else "Δθ(s)"
    explore = (f"; chunks collected at noise levels c·ε, c ~ U({sc.explore_eps_scale[0]:g}, "
               f"{sc.explore_eps_scale[1]:g})" if sc.explore_eps_scale else "")
    critic = ("; the critic reads the simulator state (training only), Δθ the image features"
              if sc.critic_state else "")
    return (f"Steering: {sc.algo} with {form}, trust region E‖Δθ‖² ≤ {sc.delta:g} (dual step η_λ = "
            f"{sc.eta_lambda:g}){explore}{critic}; deployed with ε ~ N(0, I).")


def write_report(cfg: PipelineConfig, root: Path) -> Path:
    """A short markdown report: the two grid results, the run settings and the plots."""
    base = _grid(root / "eval" / "base")
    steered = _grid(root / "eval" / "steered")
    steer_done = json.loads((root / "steer" / "done.json").read_text())
    export_meta = json.loads((root / "export" / "parity.json").read_text())
    plots = sorted((root / "steer" / "plots").glob("*.png")) + sorted((root / "base" / "plots").glob("*.png"))
    grid_pngs = sorted((root / "eval").glob("*/*.png"))
    lines = [
        f"# LP-DS pipeline report: {cfg.task} ({cfg.obs} observations, {cfg.backbone} backbone)",
        "",
        f"{cfg.n_demos} emulated demos → behaviour cloning ({cfg.bc_steps} gradient steps) → {cfg.algo} with "
        f"δ = {cfg.delta} for {steer_done['env_steps']} env steps → ONNX export → grid evaluation "
        f"({n_grid_trials(cfg)} trials each, same seeds).",
        "",
        steer_description(cfg),
        "",
        "| policy | grid success | mean return |",
        "|---|---|---|",
        f"| base ({cfg.backbone}, torch) | {base['n_success']}/{base['n_trials']} | {base['mean_return']:.2f} |",
        f"| steered ({cfg.algo}, exported ONNX) | {steered['n_success']}/{steered['n_trials']} | "
        f"{steered['mean_return']:.2f} |",
        "",
        f"ONNX export parity (max |torch − onnxruntime|): {export_meta.get('max_abs_diff', float('nan')):.2e}.",
        "",
    ]
    for p in plots + grid_pngs:
        rel = p.relative_to(root)
        lines += [f"![{rel}]({rel})", ""]
    lines += ["Settings:", "", "```yaml", (root / "pipeline.yaml").read_text().rstrip(), "```", ""]
    path = root / "report.md"
    runs.atomic_write_bytes(path, "\n".join(lines).encode())
    return path


def write_steer_config(sc: SteerConfig, root: Path) -> Path:
    """Every steering setting in one YAML beside the run (`lpds train-steer --config` reads it)."""
    path = root / "steer_config.yaml"
    runs.save_config(path, sc)
    return path


def run_pipeline(cfg: PipelineConfig, out: str | Path, force: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run (or continue) the pipeline in `out`; returns the names of the stages that ran and the report path."""
    from lpds_sim.export_run import export_valid

    cfg.check()
    root = Path(out)
    saved = root / "pipeline.yaml"
    if root.is_file() or (root.is_dir() and any(root.iterdir()) and not saved.is_file()):
        raise runs.RunError(f"--out {root} already holds files that are not a pipeline run (no pipeline.yaml); "
                            f"nothing was changed: choose a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    if saved.exists() and _has_outputs(root):  # settings of a start that produced nothing may change freely
        old = runs.load_yaml_config(saved, PipelineConfig)
        changed = [f.name for f in dataclasses.fields(cfg) if getattr(old, f.name) != getattr(cfg, f.name)]
        if changed:
            raise runs.RunError(f"{root} was run with different settings ({', '.join(changed)}); "
                                f"use a new --out, or delete the stages that depend on them")
    if not saved.is_file() or runs.read_yaml_mapping(saved) != dataclasses.asdict(cfg):  # unchanged: left alone
        runs.save_config(saved, cfg)
    demos, base, steer, export = root / "demos.hdf5", root / "base", root / "steer", root / "export"
    ev_base, ev_steered = root / "eval" / "base", root / "eval" / "steered"
    n_trials = n_grid_trials(cfg)
    b, sc = cfg.base_config(demos), cfg.steer_config(base)
    stages = [
        Stage("demos", lambda: demos_valid(demos, cfg.task, cfg.n_demos, cfg.obs), lambda: record_demos(cfg, demos)),
        Stage("base", lambda: run_done(base), lambda: lpds(
            "train-base", "--task", cfg.task, "--data", str(demos), "--backbone", cfg.backbone, "--obs", cfg.obs,
            "--horizon", str(b.horizon), "--grad-steps", str(b.grad_steps), "--batch-size", str(cfg.bc_batch_size),
            "--seed", str(cfg.seed),
            "--threads", str(cfg.threads), "--out", str(base), "--no-progress", *_resume(base))),
        Stage("steer", lambda: run_done(steer), lambda: lpds(
            "train-steer", "--config", str(write_steer_config(sc, root)), "--out", str(steer), "--no-progress",
            *_resume(steer))),
        Stage("export", lambda: export_valid(export),
              lambda: lpds("export", "--run", str(steer), "--out", str(export))),
        Stage("eval-base", lambda: eval_valid(ev_base, n_trials, base), lambda: evaluate_policy(cfg, base, ev_base)),
        Stage("eval-steered", lambda: eval_valid(ev_steered, n_trials, export),
              lambda: evaluate_policy(cfg, export, ev_steered)),
        Stage("report", lambda: (root / "report.md").is_file() and _newer(root / "report.md", root / "eval"),
              lambda: write_report(cfg, root)),
    ]
    ran = run_stages(stages, force=force)
    return {"ran": ran, "report": str(root / "report.md")}


def _has_outputs(root: Path) -> bool:
    """Whether an earlier pipeline run in `root` produced anything (a demo file, run work, an export, results)."""
    return ((root / "demos.hdf5").exists() or (root / "export").exists() or (root / "eval").exists()
            or any(runs.RunDir(root / name).holds_work() for name in ("base", "steer")))


def _newer(path: Path, folder: Path) -> bool:
    mtime = path.stat().st_mtime
    return all(p.stat().st_mtime <= mtime for p in folder.rglob("grid_results.json"))
