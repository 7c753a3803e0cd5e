"""`lpds identify`: a world YAML fitted to demos recorded on the bench, to steer in (`--steer-world FILE`).

Each demo is replayed open-loop in the emulation under candidate command latencies, controller gains and gripper
delays; the settings whose replay tracks the recorded end effector and fingers best are kept, with the object-pose
noise and the table height read off the resting object (lpds_sim.rai.identify says how). Writes OUT.yaml (the
world) and OUT.json (each demo's fit); never over an existing file.
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from lpds_core.config import add_flags
    from lpds_sim.rai.identify import IdentifyConfig

    p = subparsers.add_parser("identify", help="fit the emulation's latency, gain and gripper timing to bench demos "
                              "(a world YAML to steer in)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="world YAML to write (OUT.json beside it: every demo's fit)")
    add_flags(p, IdentifyConfig, required=("demos",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from lpds_core.config import given_flags, resolve
    from lpds_core.errors import ConfigError
    from lpds_sim.rai.identify import IdentifyConfig, check_out, identify, write_identified
    from lpds_sim.tasks import TASKS

    cfg = resolve(IdentifyConfig, None, given_flags(IdentifyConfig, args))
    if not cfg.demos:
        raise ConfigError("--demos is required: the demo file recorded on the bench (`lpds demos --world reality`)")
    if cfg.task not in TASKS:
        raise ConfigError(f"unknown --task {cfg.task!r}; choose one of {', '.join(sorted(TASKS))}")
    check_out(args.out)  # before minutes of replays
    t0 = time.time()

    def progress(i: int, n: int, fit) -> None:
        close = "–" if fit.close_delay is None else fit.close_delay
        open_ = "–" if fit.open_delay is None else fit.open_delay
        print(f"[{i}/{n}] {fit.demo}: latency {fit.latency}, gain {fit.gain:.3f} (end effector {fit.ee_error_mm:.1f} "
              f"mm off; nominal {fit.nominal_ee_error_mm:.1f}), gripper delays close {close} / open {open_} "
              f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    world, fits, _ = identify(cfg, progress)
    out = write_identified(world, fits, cfg, args.out)
    print(f"wrote {out}: latency {list(world.command_latency_steps)} steps, gain {list(world.controller_gain_scale)}, "
          f"gripper close {list(world.gripper_close_delay_steps)} / open {list(world.gripper_open_delay_steps)}, "
          f"table {world.table_offset_mm[0]:+.1f} mm, object noise {list(world.obj_pos_noise_mm)} mm; "
          f"steer in it with --steer-world {out}")
    return 0
