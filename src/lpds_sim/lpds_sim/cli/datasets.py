"""`lpds datasets`: Gym locomotion datasets made here, D4RL's way, in Minari's format.

  train-expert  train (or resume) a SAC expert; keeps the first snapshot near one third of expert return
  make          roll a shipped medium policy out into a Minari dataset (deterministic, in minutes); or, for
                lift-scripted / can-scripted / square-scripted, the scripted RoboMimic operators' successful
                episodes into a robomimic HDF5 file; relocate-scripted / hammer-scripted the same from the Adroit
                operators
  base          train a flow or diffusion base policy on a task's dataset (the bench's frozen base)
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("datasets", help="make the Gym locomotion 'medium' datasets (Minari format)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="datasets_command", metavar="ACTION")

    fmt = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter, "allow_abbrev": False}
    t = sub.add_parser("train-expert", help="train or resume a SAC expert for hopper, walker2d or halfcheetah",
                       **fmt)
    t.add_argument("--task", required=True, help="hopper, walker2d or halfcheetah")
    t.add_argument("--out", required=True, help="run folder; the same command on it resumes")
    t.add_argument("--env-steps", type=int, default=1_000_000, help="env steps at most")
    t.add_argument("--seed", type=int, default=0, help="seeds the networks, the env and the replay sampling")
    t.add_argument("--warmup-steps", type=int, default=5_000, help="random-action steps before the first update")
    t.add_argument("--eval-every", type=int, default=5_000, help="env steps between deterministic evaluations")
    t.add_argument("--trials", type=int, default=10, help="episodes per evaluation")
    t.add_argument("--checkpoint-every", type=int, default=10_000, help="env steps between checkpoints")
    t.add_argument("--batch-size", type=int, default=256, help="SAC minibatch")
    t.add_argument("--no-stop-at-medium", action="store_true",
                   help="keep training after the medium snapshot (towards the expert)")
    t.add_argument("--threads", type=int, default=1, help="torch threads")
    t.set_defaults(func=run_train)

    m = sub.add_parser("make", help="write a dataset, e.g. hopper-medium or lift-scripted, into the cache folder",
                       **fmt)
    m.add_argument("name", help="TASK-medium: hopper-medium, walker2d-medium or halfcheetah-medium; or "
                                "TASK-scripted: lift-scripted, can-scripted or square-scripted (robomimic HDF5), "
                                "relocate-scripted or hammer-scripted (Adroit, robomimic-style HDF5)")
    m.add_argument("--n-demos", type=int, default=200,
                   help="TASK-scripted: successful demos to keep")
    m.add_argument("--out", help="TASK-scripted: the .hdf5 file (default: ~/.cache/lpds/robomimic/TASK/"
                                 "scripted_nN_seedS.hdf5, or under $LPDS_ROBOMIMIC_DIR; Adroit: "
                                 "~/.cache/lpds/adroit/TASK/..., or under $LPDS_CACHE)")
    m.add_argument("--n-steps", type=int, default=1_000_000, help="transitions (1M as D4RL)")
    m.add_argument("--seed", type=int, default=0, help="seeds the env resets and the policy's sampling")
    m.add_argument("--policy", help="policy file (default: the medium policy shipped with lpds_sim)")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.add_argument("--overwrite", action="store_true", help="replace the dataset if it exists")
    m.set_defaults(func=run_make)

    from lpds_sim import runs
    from lpds_sim.benchmarks.gym_bases import GymBaseConfig

    b = sub.add_parser("base", help="train a flow/diffusion base on TASK's medium dataset (or --dataset)")
    b.add_argument("task", help="hopper, walker2d or halfcheetah")
    b.add_argument("--out", help="safetensors file (default: the shipped place, lpds_sim/benchmarks/weights/"
                                 "TASK_KIND_base.safetensors)")
    b.add_argument("--dataset", help="Minari dataset id (default: ours, lpds/TASK/medium-v0; a community id such "
                                     "as mujoco/hopper/medium-v0 works when downloaded)")
    b.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    runs.add_config_flags(b, GymBaseConfig)
    b.set_defaults(func=run_base)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_train(args: argparse.Namespace) -> int:
    import torch

    from lpds_core.errors import ConfigError

    from lpds_sim.benchmarks.experts import SACConfig, train_expert

    for flag in ("env_steps", "eval_every", "trials", "checkpoint_every", "batch_size", "threads"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.checkpoint_every % args.eval_every:
        raise ConfigError(f"--checkpoint-every ({args.checkpoint_every}) must be a multiple of --eval-every "
                          f"({args.eval_every})")
    torch.set_num_threads(args.threads)
    cfg = SACConfig(total_steps=args.env_steps, warmup_steps=args.warmup_steps, batch_size=args.batch_size,
                    eval_every=args.eval_every, eval_episodes=args.trials,
                    checkpoint_every=args.checkpoint_every, seed=args.seed,
                    stop_at_medium=not args.no_stop_at_medium)
    summary = train_expert(args.task, args.out, cfg, log=lambda m: print(m, flush=True))
    med = summary["medium"]
    print(f"{summary['task']}: {summary['steps']} steps, {summary['wall_s'] / 60:.1f} min; medium snapshot: "
          + (f"step {med['steps']}, eval return {med['eval_return']:.1f}" if med else "not yet"), flush=True)
    return 0


def run_make(args: argparse.Namespace) -> int:
    if args.name.endswith("-scripted"):
        return run_make_scripted(args)
    import torch

    from lpds_sim.benchmarks.datasets import make_dataset

    torch.set_num_threads(1)
    s = make_dataset(args.name, n_steps=args.n_steps, seed=args.seed, policy_path=args.policy,
                     overwrite=args.overwrite, progress=not args.no_progress)
    print(f"wrote {s.dataset_id} to {s.path}: {s.n_steps} steps, {s.n_episodes} episodes, return "
          f"{s.return_mean:.1f} ± {s.return_std:.1f} per episode (D4RL-normalised {s.normalized_mean:.1f}); "
          f"policy {s.policy}")
    return 0


ADROIT_TASKS = ("relocate", "door", "hammer", "pen")  # TASK-scripted names that go to the Adroit operators


def run_make_scripted(args: argparse.Namespace) -> int:
    task = args.name[: -len("-scripted")]
    if task in ADROIT_TASKS:
        from lpds_sim.benchmarks.adroit.demos import make_demos
    else:
        from lpds_sim.benchmarks.robomimic_data import make_demos

    s = make_demos(task, args.n_demos, seed=args.seed, out=args.out, overwrite=args.overwrite,
                   progress=not args.no_progress)
    styles = ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in s.per_style.items())
    print(f"wrote {s.n_demos} demos to {s.path}: operator success {s.success_rate:.0%} over {s.attempts} episodes "
          f"({styles}); {s.mean_length:.0f} steps per demo on average"
          + ("" if s.return_mean is None else f", operator return {s.return_mean:.1f} per episode"))
    return 0


def run_base(args: argparse.Namespace) -> int:
    import torch

    from lpds_sim import runs
    from lpds_sim.benchmarks.gym_bases import GymBaseConfig, shipped_base, train_gym_base
    from lpds_sim.benchmarks.gym_tasks import get_task

    task = get_task(args.task).name
    cfg = runs.config_from_args(GymBaseConfig, args)
    torch.set_num_threads(1)
    out = args.out or str(shipped_base(task, cfg.kind))
    meta = train_gym_base(task, cfg, out, dataset=args.dataset, overwrite=args.overwrite)
    print(f"wrote {out}: {cfg.kind} base, {meta['n_params']} parameters, BC on {meta['dataset']} "
          f"({meta['transitions']} transitions); eval return {meta['eval_return']:.1f} ± "
          f"{meta['eval_return_std']:.1f} over {meta['eval_episodes']} episodes (D4RL-normalised "
          f"{meta['eval_normalized']:.1f})")
    return 0
