"""`lpds pipeline`: emulated demos → base policy → LP-DS → ONNX export → grid evaluation → report.

Every stage writes into one run folder and checks its own outputs first, so a rerun (after a crash, a kill or a
changed later-stage setting) continues where it stopped instead of starting again:

    RUN/demos.hdf5   RUN/base/   RUN/steer/   RUN/export/   RUN/eval/{base,steered}/   RUN/report.md
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lpds_core.agents.base import AgentConfig
from lpds_core.config import flatten, nested, setting, to_dict, validate
from lpds_core.training import LoopConfig

from lpds_sim import runs
from lpds_sim.rai.world import EMULATION, resolve_world, world_field, world_label
from lpds_sim.stages import Stage, run_stages
from lpds_sim.train_base import OBS_MODES, TASKS, BaseConfig, BCConfig
from lpds_sim.train_steer import ALGOS, PRIVILEGED_KEY, SteerConfig


@dataclasses.dataclass
class PipelineConfig:
    """`lpds pipeline`: its own settings, plus the `bc:`, `agent:` and `train:` sections it passes to
    `lpds train-base` / `lpds train-steer` (each setting declared once; the pipeline only picks its defaults)."""

    task: str = setting("pick_place", "task", choices=TASKS)
    obs: str = setting("state", "observation mode", choices=OBS_MODES)
    n_demos: int = setting(29, "emulated-teleoperation demos to record", min=1)
    demo_seed: int = setting(0, "seed of the demo recording", min=0)
    # not the emulation: demos are recorded there and both policies graded there too; steering stays in the emulation
    world: str = world_field()
    steer_world: str = setting(EMULATION, "world LP-DS trains in: emulation, randomised (the emulation with domain "
                               "randomisation, config/worlds/randomised.yaml), identified (the emulation fitted to "
                               "this run's demos by `lpds identify`: RUN/identified_world.yaml) or a world YAML file; "
                               "never graded in")
    grade_worlds: list[str] = setting([], "more worlds both policies are graded in, beside the emulation and `world` "
                                      "(e.g. reality: `make demo` shows base vs steered there)")
    algo: str = setting("lpds", "steering algorithm", choices=ALGOS)
    deploy_checkpoint: str = setting("best", "steer checkpoint exported: best (the best periodic grid of the world "
                                     "it trained in, never reality's) or latest (the final policy)",
                                     choices=("best", "latest"))
    # the steered policy's own noise-temperature curve: decoding it at c < 1 trades diversity for success as the
    # floor does, and lies above the floor at every c in reality (bench/RESULTS.md, ninth session)
    deploy_noise_scales: list[float] = setting([0.25, 0.5, 0.75, 1.0], "deploy temperatures c the exported LP-DS "
                                               "may decode c·ε at: each graded on the steering world's grid (its own "
                                               "seeds, never reality's), the best exported (ties: the larger c); "
                                               "[1] exports the policy as trained", min=0.0)
    trials: int = setting(5, "final grid trials per cell: 2×4×5 = 40 (pick-and-place), 2×2×5 = 20 (mug)", min=1)
    videos: int = setting(2, "GIFs of the first grid trials each grid evaluation writes (eval/*/videos/, a few "
                          "seconds each; skipped without a display or Xvfb); 0: none", min=0)
    bc: BCConfig = nested(BCConfig, bc_steps=3000)
    # LP-DS settings that made the pick_place gain (bench/RESULTS.md, "noise gain"): Δθ(s, ε) = h(s) − g(s)⊙ε,
    # chunks collected at noise levels c·ε with c ~ U(0, 1), a slow dual step, a faster critic; δ = 8 on E‖Δ‖²
    # summed over the 8×4 noise dims: room for a gain g = 0.5 on every dim (w = ε/2). The critic reads the
    # simulator state with image observations (asymmetric actor-critic). The same as config/agents/lpds_pipeline.yaml.
    # It keeps the update it was tuned with (float32 decoder, the actor decoding the current observations): with the
    # faster update (bf16, one shared decode) one fresh-clone `make demo` gave 32/40 instead of 35/40 — inside one
    # 40-trial grid's spread, but not measured over seeds, so the tuned preset stays as tuned until it is.
    agent: AgentConfig = nested(AgentConfig, delta=8.0, use_eps=True, eps_form="shrink", eta_lambda=0.001,
                                lr_critic=0.001, tau=0.02, critic_obs=PRIVILEGED_KEY, decoder_precision="float32",
                                shared_decode=False)
    # the budget; `make demo` (whole pipeline) stays within 15 min on 2 cores
    # periodic evaluation on the full grid (2×4×5 = 40 trials) every 20k env steps: 8 trials every 10k were too
    # noisy to pick a best checkpoint by, and this costs about as much
    train: LoopConfig = nested(LoopConfig, env_steps=100_000, warmup_steps=5_000, utd=1, batch_size=128,
                               eval_every=20_000, eval_trials=5, ckpt_every=10_000, explore_eps_scale=[0.0, 1.0])

    @classmethod
    def legacy_keys(cls, data: dict[str, Any]) -> dict[str, Any]:
        """pipeline.yaml files written before the schema read as today's (so their folders still continue)."""
        data = dict(data)
        if "trials_per_cell" in data:
            data.setdefault("trials", data.pop("trials_per_cell"))
        if "critic_state" in data:
            data.setdefault("critic_obs", PRIVILEGED_KEY if data.pop("critic_state") is True else None)
        return data

    def check(self) -> "PipelineConfig":
        from lpds_core.errors import ConfigError
        from lpds_core.onnx_policy import valid_noise_scale

        if not self.deploy_noise_scales or not all(map(valid_noise_scale, self.deploy_noise_scales)):
            raise ConfigError(f"deploy_noise_scales {self.deploy_noise_scales} must list at least one finite "
                              f"temperature c ≥ 0 (e.g. 0.5 1; 1 = the policy as trained)")
        resolve_world(self.world)  # one line if it is neither a preset nor a readable world file
        for w in [*([] if self.steer_world == IDENTIFIED else [self.steer_world]), *self.grade_worlds]:
            resolve_world(w)
        return self

    @property
    def graded_worlds(self) -> list[tuple[str, str]]:
        """(label, source) of every world other than the emulation that both policies are graded in: `world` (the
        demos' world), then `grade_worlds`; each once."""
        worlds: dict[str, str] = {}
        for source in [self.world, *self.grade_worlds]:
            label = world_label(source)
            if label != EMULATION:
                worlds.setdefault(label, source)
        return list(worlds.items())

    @property
    def world_label(self) -> str:
        return world_label(self.world)

    @property
    def noise_steered(self) -> bool:
        """LP-DS / LP-DS-A: policies that decode ε + Δ (the ones a deploy temperature and Δθ(s, ε) apply to)."""
        return self.algo in ("lpds", "lpds-a")

    @property
    def deploy_candidates(self) -> list[float]:
        """The deploy temperatures tried, ascending; [1] for algorithms that sample their own noise."""
        return sorted(set(float(c) for c in self.deploy_noise_scales)) if self.noise_steered else [1.0]

    def base_config(self, data: Path) -> BaseConfig:
        return BaseConfig(task=self.task, data=str(data), obs=self.obs, seed=self.train.seed,
                          threads=self.agent.threads, bc=dataclasses.replace(self.bc))

    def steer_config(self, base: Path, world: str | Path | None = None) -> SteerConfig:
        """The `lpds train-steer` settings; the Δθ(s, ε) form, the noise-level exploration and the state critic
        only where they apply (LP-DS / LP-DS-A; the state critic for image observations). `world`: instead of
        steer_world (the file the identify stage wrote, for steer_world = identified)."""
        noise_steer = self.noise_steered
        agent = dataclasses.replace(self.agent, use_eps=self.agent.use_eps and noise_steer,
                                    critic_obs=self.agent.critic_obs if noise_steer and self.obs == "image" else None)
        train = dataclasses.replace(self.train, explore_eps_scale=self.train.explore_eps_scale if noise_steer else None)
        world = self.steer_world if world is None else str(world)
        return validate(SteerConfig(base=str(base), task=self.task, algo=self.algo, world=world,
                                    agent=agent, train=train))


# ---------------------------------------------------------------------------------------------------------------
# stage outputs and their validity checks
# ---------------------------------------------------------------------------------------------------------------
def demos_valid(path: Path, task: str, n: int, obs: str, world: str = EMULATION) -> bool:
    from lpds_sim.demos_io import load_demos

    if not path.is_file():
        return False
    demos = load_demos(path)
    env_kwargs = (demos.meta.get("env_args") or {}).get("env_kwargs") or {}
    return (len(demos) >= n and demos.meta.get("task") == task and env_kwargs.get("obs_mode", obs) == obs
            and demos.meta.get("world", EMULATION) == world)


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
    lpds("demos", "--task", cfg.task, "--n-demos", str(cfg.n_demos), "--obs", cfg.obs, "--seed", str(cfg.demo_seed),
         "--out", str(tmp), "--no-progress", *_world_flag(cfg.world))
    os.replace(tmp, path)


IDENTIFIED = "identified"  # steer_world: the emulation fitted to the run's own demos (lpds_sim.rai.identify)
IDENTIFIED_FILE = "identified_world.yaml"


def identified_valid(path: Path, demos: Path) -> bool:
    """The identified world and its per-demo fits exist and are newer than the demos they were fitted to."""
    report = path.with_suffix(".json")
    return (path.is_file() and report.is_file() and demos.is_file()
            and report.stat().st_mtime >= demos.stat().st_mtime)


def identify_world(cfg: PipelineConfig, demos: Path, path: Path) -> None:
    """`lpds identify` on the run's demos (an outdated fit is moved aside to *.old.yaml/json, never deleted)."""
    for p in (path, path.with_suffix(".json")):
        if p.exists():
            os.replace(p, p.with_name(p.stem + ".old" + p.suffix))
    lpds("identify", "--demos", str(demos), "--task", cfg.task, "--out", str(path))


def identified_description(path: Path) -> list[str]:
    """The report's line on the identified world (none when the run did not identify one)."""
    if not path.is_file():
        return []
    w = resolve_world(str(path))
    return [f"Identified from the demos ({path.name}): command latency {list(w.command_latency_steps)} steps, "
            f"controller gain {list(w.controller_gain_scale)} × the emulation's, gripper close delay "
            f"{list(w.gripper_close_delay_steps)} steps, table {w.table_offset_mm[0]:+.1f} mm, object-estimate noise "
            f"{list(w.obj_pos_noise_mm)} mm; mass, friction, size and camera error kept at the randomised "
            "preset's ranges.", ""]


def _world_flag(world: str) -> list[str]:
    """`--world W` for a stage command; nothing for the emulation (its commands stay as they were)."""
    return [] if resolve_world(world) is None else ["--world", world]


def run_done(path: Path) -> bool:
    return (path / "done.json").is_file() and (path / "config.yaml").is_file()


def steer_finished(path: Path, env_steps: int) -> bool:
    """The steer run finished with at least this budget. A larger `--env-steps` on a started pipeline extends
    its steer run (train-steer --resume goes on from the last checkpoint); the new done.json makes the deploy
    choice, the export and the steered grades stale."""
    if not run_done(path):
        return False
    try:
        return int(json.loads((path / "done.json").read_text())["env_steps"]) >= env_steps
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _resume(path: Path) -> list[str]:
    return ["--resume"] if (path / "config.yaml").is_file() else []


def eval_valid(path: Path, n_trials: int, policy: Path, world: str = EMULATION, since: Path | None = None,
               noise_scale: float = 1.0) -> bool:
    """A complete grid of `policy` in `world` at noise scale `noise_scale`, newer than file `since` (the export or
    run it graded: a re-export makes its grades stale)."""
    res = path / "grid_results.json"
    if not res.is_file() or (since is not None and (not since.is_file()
                                                    or res.stat().st_mtime < since.stat().st_mtime)):
        return False
    doc = json.loads(res.read_text())
    meta = doc.get("meta", {})
    # the policy by its name in the pipeline folder (base, export), so a moved pipeline folder stays valid
    return (int(doc.get("total", -1)) == n_trials and not doc.get("partial")
            and Path(str(meta.get("policy"))).name == policy.name and meta.get("world", EMULATION) == world
            and float(meta.get("noise_scale", 1.0)) == noise_scale)


def n_grid_trials(cfg: PipelineConfig) -> int:
    from lpds_sim.evaluation import grid_shape

    rows, cols, _ = grid_shape(cfg.task)
    return rows * cols * cfg.trials


GRADE_SEED = 20_000   # + the run's seed: the final grids (the same cell jitter for base and steered, every world)
DEPLOY_SEED = 30_000  # + the run's seed: the grids that choose the deploy temperature (other draws than the final)


def evaluate_policy(cfg: PipelineConfig, policy: Path, out: Path, world: str = EMULATION, *extra: str,
                    seed: int = GRADE_SEED, videos: bool = True) -> None:
    """`lpds eval` on the task's grid in `world`. The stage's own folder: results there are stale (the stage is
    invalid), so they are replaced."""
    lpds("eval", "--task", cfg.task, "--policy", str(policy), "--obs", cfg.obs, "--out", str(out),
         "--seed", str(seed + cfg.train.seed), "--trials", str(cfg.trials), "--no-progress", "--overwrite",
         *(_videos_flag(cfg.videos) if videos else []), *_world_flag(world), *extra)


DEPLOY_DIR = "deploy"  # RUN/deploy/c<c>/ (one grid per candidate temperature) and RUN/deploy/choice.json
CHOICE_FILE = "choice.json"


def _steer_world_source(cfg: PipelineConfig, root: Path) -> str:
    return str(root / IDENTIFIED_FILE) if cfg.steer_world == IDENTIFIED else cfg.steer_world


def choice_valid(cfg: PipelineConfig, root: Path) -> bool:
    """RUN/deploy/choice.json was made for this steer run, with today's candidates and checkpoint."""
    path, done = root / DEPLOY_DIR / CHOICE_FILE, root / "steer" / "done.json"
    if not path.is_file() or not done.is_file() or path.stat().st_mtime < done.stat().st_mtime:
        return False
    doc = json.loads(path.read_text())
    return doc.get("candidates") == cfg.deploy_candidates and doc.get("checkpoint") == cfg.deploy_checkpoint


def choose_deploy(cfg: PipelineConfig, root: Path, steer: Path | None = None, folder: Path | None = None,
                  world: str | None = None) -> dict[str, Any]:
    """Grade the steer run's checkpoint at every candidate temperature on the steering world's grid (seeds of its
    own: neither the final grids' nor reality's) and keep the best, ties to the larger c (the more diverse policy).
    One candidate is taken as it is, ungraded. A candidate graded earlier for this run is not graded again.
    `steer`, `folder` (grids and choice.json) and `world` (its source): for runs outside the pipeline's layout."""
    steer, folder = steer or root / "steer", folder or root / DEPLOY_DIR
    cands, world = cfg.deploy_candidates, world or _steer_world_source(cfg, root)
    n_trials = n_grid_trials(cfg)
    successes: dict[str, int] = {}
    if len(cands) > 1:
        for c in cands:
            out = folder / f"c{c:g}"
            if not eval_valid(out, n_trials, steer, world_label(world), since=steer / "done.json", noise_scale=c):
                evaluate_policy(cfg, steer, out, world, "--checkpoint", cfg.deploy_checkpoint, "--noise-scale",
                                f"{c:g}", seed=DEPLOY_SEED, videos=False)
            successes[f"{c:g}"] = int(json.loads((out / "grid_results.json").read_text())["successes"])
    best = max(cands, key=lambda c: (successes.get(f"{c:g}", 0), c))
    doc = {"checkpoint": cfg.deploy_checkpoint, "noise_scale": best, "candidates": cands, "successes": successes,
           "n_trials": n_trials, "world": world_label(world), "seed": DEPLOY_SEED + cfg.train.seed}
    folder.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_json(folder / CHOICE_FILE, doc)
    return doc


def deployed(root: Path) -> dict[str, Any]:
    """RUN/deploy/choice.json: the checkpoint and temperature the export was made with."""
    return json.loads((root / DEPLOY_DIR / CHOICE_FILE).read_text())


def export_matches(root: Path) -> bool:
    """The export passed parity, was made after the deploy choice, and at its temperature and checkpoint."""
    from lpds_sim.export_run import PARITY_FILE, export_valid

    export, choice = root / "export", root / DEPLOY_DIR / CHOICE_FILE
    if not export_valid(export) or not choice.is_file():
        return False
    rec, doc = json.loads((export / PARITY_FILE).read_text()), deployed(root)
    ckpt = "agent.pt" if doc["checkpoint"] == "latest" else "best.pt"
    return ((export / PARITY_FILE).stat().st_mtime >= choice.stat().st_mtime
            and float(rec.get("noise_scale", 1.0)) == float(doc["noise_scale"])
            and Path(str(rec.get("checkpoint"))).name == ckpt)


def _videos_flag(videos: int) -> list[str]:
    """`--videos N` for a grid evaluation; nothing when N = 0 or when no display can be had for rendering (the
    GIFs are a picture for people, never a reason for the pipeline to fail)."""
    import shutil

    if videos <= 0:
        return []
    if not os.environ.get("DISPLAY") and shutil.which("Xvfb") is None:
        print("note: no display and no Xvfb: the grid evaluations write no videos (run under `xvfb-run -a` for "
              "them)", flush=True)
        return []
    return ["--videos", str(videos)]


def _grid(path: Path) -> dict[str, Any]:
    doc = json.loads((path / "grid_results.json").read_text())
    rets = [t["ret"] for t in doc["trials"]]
    return {"n_success": doc["successes"], "n_trials": doc["total"], "success_rate": doc["success_rate"],
            "mean_return": sum(rets) / len(rets)}


def steer_description(cfg: PipelineConfig) -> str:
    """One line on what the steering stage learned, for the report."""
    sc = cfg.steer_config(Path("base"), EMULATION)  # the algorithm's settings; the world is not described here
    if sc.algo not in ("lpds", "lpds-a"):
        return f"Steering: {sc.algo} (noise-space SAC baseline)."
    form = {"shrink": "Δθ(s, ε) = h(s) − g(s)⊙ε (shift + per-dimension noise gain)",
            "mlp": "Δθ(s, ε) (an MLP of state and noise)"}[sc.agent.eps_form] if sc.agent.use_eps else "Δθ(s)"
    lo_hi = sc.train.explore_eps_scale
    explore = f"; chunks collected at noise levels c·ε, c ~ U({lo_hi[0]:g}, {lo_hi[1]:g})" if lo_hi else ""
    critic = ("; the critic reads the simulator state (training only), Δθ the image features"
              if sc.critic_state else "")
    return (f"Steering: {sc.algo} with {form}, trust region E‖Δθ‖² ≤ {sc.agent.delta:g} (dual step η_λ = "
            f"{sc.agent.eta_lambda:g}){explore}{critic}.")


def deploy_description(root: Path) -> list[str]:
    """The report's line on what was exported: the checkpoint and the deploy temperature, with the grades that
    chose it (none for a run exported before the deploy stage existed)."""
    path = root / DEPLOY_DIR / CHOICE_FILE
    if not path.is_file():
        return []
    doc = deployed(root)
    ckpt = "the final policy" if doc["checkpoint"] == "latest" else "the best checkpoint of the periodic evaluation"
    best = root / "steer" / "checkpoints" / "best.json"
    if doc["checkpoint"] == "best" and best.is_file():
        b = json.loads(best.read_text())
        ckpt += f" (env step {b['step']}, success {b['score']:.2f} there)"
    c = doc["noise_scale"]
    noise = "ε ~ N(0, I)" if c == 1.0 else f"c·ε with c = {c:g}, ε ~ N(0, I)"
    line = f"Deployed: {ckpt}, decoding {noise}"
    if doc["successes"]:
        grades = ", ".join(f"c = {k}: {v}/{doc['n_trials']}" for k, v in doc["successes"].items())
        line += (f"; c chosen on the {doc['world']} world's grid (grid seed {doc['seed']}, not the final grids' "
                 f"draws): {grades}")
    return [line + ".", ""]


def write_report(cfg: PipelineConfig, root: Path) -> Path:
    """A short markdown report: the two grid results, the run settings and the plots."""
    base = _grid(root / "eval" / "base")
    steered = _grid(root / "eval" / "steered")
    world = cfg.world_label
    other = world != EMULATION  # demos recorded in, and both policies graded in, another world too
    steer_done = json.loads((root / "steer" / "done.json").read_text())
    export_meta = json.loads((root / "export" / "parity.json").read_text())
    plots = sorted((root / "steer" / "plots").glob("*.png")) + sorted((root / "base" / "plots").glob("*.png"))
    demos = f"{cfg.n_demos} demos recorded in the {world} world" if other else f"{cfg.n_demos} emulated demos"
    trained_in = IDENTIFIED if cfg.steer_world == IDENTIFIED else world_label(cfg.steer_world)
    graded = cfg.graded_worlds
    steer_world = (f" (in the {trained_in} world)" if trained_in != EMULATION
                   else " (in the emulation)" if graded else "")
    lines = [
        f"# LP-DS pipeline report: {cfg.task} ({cfg.obs} observations, {cfg.bc.backbone} backbone)",
        "",
        f"{demos} → behaviour cloning ({cfg.bc.bc_steps} gradient steps) → {cfg.algo} with "
        f"δ = {cfg.agent.delta} for {steer_done['env_steps']} env steps{steer_world} → ONNX export → grid evaluation "
        f"({n_grid_trials(cfg)} trials each, same seeds"
        f"{', in the emulation and in ' + ' and '.join(w for w, _ in graded) if graded else ''}).",
        "",
        steer_description(cfg),
        "",
        *deploy_description(root),
        *identified_description(root / IDENTIFIED_FILE),
        "| policy | grid success | mean return |",
        "|---|---|---|",
        f"| base ({cfg.bc.backbone}, torch) | {base['n_success']}/{base['n_trials']} | {base['mean_return']:.2f} |",
        f"| steered ({cfg.algo}, exported ONNX) | {steered['n_success']}/{steered['n_trials']} | "
        f"{steered['mean_return']:.2f} |",
    ]
    if graded:  # the same two policies on the other worlds' grids (same trial seeds)
        lines[-2] = lines[-2].replace("| base (", "| emulation: base (")
        lines[-1] = lines[-1].replace("| steered (", "| emulation: steered (")
    for label, _ in graded:
        for name in ("base", "steered"):
            g = _grid(root / f"eval_{label}" / name)
            what = f"base ({cfg.bc.backbone}, torch)" if name == "base" else f"steered ({cfg.algo}, exported ONNX)"
            lines.append(f"| {label}: {what} | {g['n_success']}/{g['n_trials']} | {g['mean_return']:.2f} |")
    lines += [
        "",
        f"ONNX export parity (max |torch − onnxruntime|): {export_meta.get('max_abs_diff', float('nan')):.2e}.",
        "",
    ]
    for p in plots:
        rel = p.relative_to(root)
        lines += [f"![{rel}]({rel})", ""]
    for label, folder in [(EMULATION, root / "eval")] + [(w, root / f"eval_{w}") for w, _ in graded]:
        lines += grid_pictures(root, folder, f"{cfg.task}, {label}")
    lines += ["Settings:", "", "```yaml", (root / "pipeline.yaml").read_text().rstrip(), "```", ""]
    path = root / "report.md"
    runs.atomic_write_bytes(path, "\n".join(lines).encode())
    return path


def grid_pictures(root: Path, folder: Path, what: str) -> list[str]:
    """The report section of one world's grid evaluations (`folder`/base, `folder`/steered): the two heatmaps side
    by side on one colour scale (written here), both policies' end-effector trajectories, links to the GIFs."""
    from lpds_sim import eval_pictures as pics

    pair = pics.plot_grid_pair(folder / "base", folder / "steered", folder / pics.GRID_PAIR_PNG, title=what)
    lines = [f"## Grid evaluation: {what}", "", f"![{pair.relative_to(root)}]({pair.relative_to(root)})", ""]
    for name in ("base", "steered"):
        png = folder / name / pics.TRAJECTORY_PNG
        if png.is_file():  # evaluations made before the trajectories were recorded have none
            lines += [f"![{png.relative_to(root)}]({png.relative_to(root)})", ""]
    videos = [(name, p) for name in ("base", "steered") for p in pics.videos_in(folder / name)]
    if videos:
        lines += ["Videos: " + ", ".join(f"[{name} {p.stem.replace('_', ' ')}]({p.relative_to(root)})"
                                         for name, p in videos), ""]
    return lines


def write_stage_config(cfg: Any, path: Path) -> Path:
    """Every setting of a stage in one YAML beside the run (`lpds train-base/train-steer --config` reads it)."""
    runs.save_config(path, cfg)
    return path


# settings that only add gradings or pictures, or whose stages check them themselves (the deploy choice and the
# export record theirs): changing them keeps every stage that does not depend on them. A larger env_steps is
# allowed too: it extends the steer run (steer_finished)
GRADING_ONLY = ("grade_worlds", "videos", "deploy_checkpoint", "deploy_noise_scales")


def run_pipeline(cfg: PipelineConfig, out: str | Path, force: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run (or continue) the pipeline in `out`; returns the names of the stages that ran and the report path."""
    validate(cfg)
    root = Path(out)
    saved = root / "pipeline.yaml"
    if root.is_file() or (root.is_dir() and any(root.iterdir()) and not saved.is_file()):
        raise runs.RunError(f"--out {root} already holds files that are not a pipeline run (no pipeline.yaml); "
                            f"nothing was changed: choose a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    if saved.exists() and _has_outputs(root):  # settings of a start that produced nothing may change freely
        old, new = flatten(runs.load_yaml_config(saved, PipelineConfig)), flatten(cfg)
        changed = [k for k in new if old.get(k) != new[k] and k not in GRADING_ONLY
                   and not (k == "env_steps" and isinstance(old.get(k), int) and new[k] > old[k])]
        if changed:
            raise runs.RunError(f"{root} was run with different settings ({', '.join(changed)}); "
                                f"use a new --out, or delete the stages that depend on them")
    if not saved.is_file() or runs.read_yaml_mapping(saved) != to_dict(cfg):  # unchanged: left alone
        runs.save_config(saved, cfg)
    demos, base, steer, export = root / "demos.hdf5", root / "base", root / "steer", root / "export"
    n_trials = n_grid_trials(cfg)
    identified = root / IDENTIFIED_FILE
    b = cfg.base_config(demos)
    world = cfg.world_label

    def steer_config() -> Path:  # built when the stage runs: an identified world exists only after its stage
        world = identified if cfg.steer_world == IDENTIFIED else None
        return write_stage_config(cfg.steer_config(base, world), root / "steer_config.yaml")

    stages = [
        Stage("demos", lambda: demos_valid(demos, cfg.task, cfg.n_demos, cfg.obs, world),
              lambda: record_demos(cfg, demos)),
    ]
    if cfg.steer_world == IDENTIFIED:
        stages.append(Stage("identify", lambda: identified_valid(identified, demos),
                            lambda: identify_world(cfg, demos, identified)))
    stages += [
        Stage("base", lambda: run_done(base), lambda: lpds(
            "train-base", "--config", str(write_stage_config(b, root / "base_config.yaml")), "--out", str(base),
            "--no-progress", *_resume(base))),
        Stage("steer", lambda: steer_finished(steer, cfg.train.env_steps), lambda: lpds(
            "train-steer", "--config", str(steer_config()), "--out", str(steer),
            "--no-progress", *_resume(steer))),
        Stage("deploy", lambda: choice_valid(cfg, root), lambda: choose_deploy(cfg, root)),
        Stage("export", lambda: export_matches(root), lambda: lpds(
            "export", "--run", str(steer), "--out", str(export), "--checkpoint", deployed(root)["checkpoint"],
            "--noise-scale", f"{deployed(root)['noise_scale']:g}")),
    ]
    graded = root / "export" / "parity.json"  # a re-export makes the steered grades stale
    for label, source in [(EMULATION, EMULATION), *cfg.graded_worlds]:  # the emulation, the demos' world, ...
        folder = root / ("eval" if label == EMULATION else f"eval_{label}")
        suffix = "" if label == EMULATION else f"-{label}"
        stages += [Stage(f"eval-{name}{suffix}", functools.partial(eval_valid, folder / name, n_trials, policy, label,
                                                                   since),
                         functools.partial(evaluate_policy, cfg, policy, folder / name, source))
                   for name, policy, since in (("base", base, None), ("steered", export, graded))]
    evals = [root / "eval"] + [root / f"eval_{label}" for label, _ in cfg.graded_worlds]
    stages.append(Stage("report", lambda: (root / "report.md").is_file()
                        and all(_newer(root / "report.md", ev) for ev in evals), lambda: write_report(cfg, root)))
    ran = run_stages(stages, force=force)
    return {"ran": ran, "report": str(root / "report.md")}


def _has_outputs(root: Path) -> bool:
    """Whether an earlier pipeline run in `root` produced anything (a demo file, run work, an export, results)."""
    return ((root / "demos.hdf5").exists() or (root / "export").exists() or (root / "eval").exists()
            or any(root.glob("eval_*"))
            or any(runs.RunDir(root / name).holds_work() for name in ("base", "steer")))


def _newer(path: Path, folder: Path) -> bool:
    mtime = path.stat().st_mtime
    return all(p.stat().st_mtime <= mtime for p in folder.rglob("grid_results.json"))
