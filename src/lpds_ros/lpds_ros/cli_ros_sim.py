"""`lpds ros-sim`: the ROS 2 deployment graph against the simulated robot, as plain processes (no ros2cli/launch).

Starts sim robot + perception + policy + franka adapter + grid evaluator (lpds_ros.graph.grid_eval_graph) on a
private ROS domain, waits for the evaluator, and prints the grid result. The command lives with the ROS package
(dependencies run core <- sim <- ros): `lpds` finds it through the `lpds.commands` entry point of lpds_ros.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lpds_core import jsonio


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ros-sim", help="run the ROS 2 graph (policy node + sim robot) for N grid trials",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", default="pick_place", choices=["pick_place", "mug_hang"])
    p.add_argument("--max-trials", dest="max_trials", type=int, default=0,
                   help="stop after N grid trials, like `lpds eval --max-trials` (0: all rows x cols x trials)")
    p.add_argument("--trials", type=int, default=5, help="trials per grid cell")
    p.add_argument("--model-dir", default="", help="ONNX export folder (decoder.onnx + perturbation.onnx)")
    p.add_argument("--runner", default=None, help="onnx | scripted | package.module:factory "
                                                  "(default: onnx with --model-dir, else scripted)")
    p.add_argument("--obs", dest="obs_mode", default="state", choices=["state", "image"], help="observation mode")
    p.add_argument("--backend", default="rai", choices=["rai", "kinematic"], help="sim robot backend")
    p.add_argument("--rate", type=float, default=10.0, help="control rate in Hz (the policy's training rate)")
    p.add_argument("--speedup", type=float, default=1.0, help="run the sim robot's clock this much faster than "
                                                                 "real time (the policy keeps the env's step semantics)")
    p.add_argument("--episode-timeout", type=float, default=120.0, help="wall-clock seconds per trial")
    p.add_argument("--out", default="runs/ros_sim", help="output folder (grid results, node logs, bags/: one "
                                                             "rosbag2 MCAP bag per trial, see `lpds replay`)")
    p.add_argument("--no-bags", dest="bags", action="store_false", help="do not record the trials into OUT/bags")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpds_ros.graph import NodeSpec, grid_eval_graph
    from lpds_ros.process_graph import GraphProcesses

    from lpds_core.errors import ConfigError, RunError

    for flag, value, ok, want in (("--rate", args.rate, args.rate > 0, "a positive rate in Hz"),
                                  ("--speedup", args.speedup, args.speedup > 0, "a positive factor"),
                                  ("--trials", args.trials, args.trials >= 1, "at least 1"),
                                  ("--max-trials", args.max_trials, args.max_trials >= 0, "0 (all) or more"),
                                  ("--episode-timeout", args.episode_timeout, args.episode_timeout > 0,
                                   "a positive number of seconds")):
        if not ok or value != value:  # also NaN
            raise ConfigError(f"{flag} {value} is invalid: give {want}")
    runner = args.runner or ("onnx" if args.model_dir else "scripted")
    if runner == "onnx" and not args.model_dir:
        raise ConfigError("--runner onnx needs --model-dir (an `lpds export` folder)")
    out = Path(args.out)
    bags = out / "bags"
    if args.bags and bags.is_dir() and any(bags.iterdir()):
        raise ConfigError(f"{bags} already holds bags of an earlier run and bags are never overwritten: pass a new "
                          "--out, or move that folder away")
    nodes, _ = grid_eval_graph(bags_dir=str(bags) if args.bags else "",use_sim=True, episodes=args.max_trials, out_dir=str(out), trials=args.trials,
                               model_dir=args.model_dir, runner=runner, obs_mode=args.obs_mode, task=args.task,
                               sim_backend=args.backend, control_rate=args.rate, speedup=args.speedup,
                               episode_timeout=args.episode_timeout)
    nodes = [NodeSpec(n.executable, n.name, n.namespace, {**n.parameters, "seed": args.seed}
                      if n.executable == "grid_evaluator_node" else n.parameters, n.remappings) for n in nodes]
    graph = GraphProcesses(nodes, log_dir=str(out / "logs"))
    print(f"starting {len(nodes)} nodes ({', '.join(n.name for n in nodes)}) on ROS_DOMAIN_ID="
          f"{graph.env['ROS_DOMAIN_ID']}; logs in {graph.log_dir}")
    with graph:
        rc = graph.wait("grid_evaluator")
    if graph.peak_rss:  # the evaluator has exited by now; the other nodes were still up
        (out / "memory.json").write_text(jsonio.dumps({"peak_rss_mib": graph.peak_rss}, indent=2))
        print("peak resident memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(graph.peak_rss.items())))
    if rc != 0:
        from lpds_ros.process_graph import last_error_line

        raise RunError(f"node grid_evaluator exited with code {rc}: {last_error_line(graph.log('grid_evaluator'))} "
                       f"(log: {graph.log_dir / 'grid_evaluator.log'})")
    summary = json.loads((out / "grid_results.json").read_text())
    print(f"ROS grid ({args.task}, runner={runner}, backend={args.backend}): "
          f"{summary['successes']}/{summary['total']} successes; per cell {summary['success_table']}")
    if args.bags:
        print(f"one MCAP bag per trial in {bags} (review: lpds replay {bags / 'trial_000'})")
    return 0
