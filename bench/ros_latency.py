"""ROS 2 deployment benchmark: policy node latency against the RAI sim robot, and ROS grid vs direct grid.

1. Latency: sim robot (RAI, 30 Hz) + perception + policy (ONNX, state obs) + franka adapter as processes over
   DDS; the policy node reports per tick [obs receipt -> command publish ms, obs stamp -> publish ms, compute ms,
   missed ticks, commands, input gaps]. >= 1,000 ticks. Target (DESIGN §6): p99 <= 10 ms, 0 missed ticks.
   missed = an observation that got no command within one period (the policy node's fault); input gaps = periods
   in which the sim robot published nothing (the simulator fell behind real time on this shared 2-core box).
2. Agreement: the same policy on the same GridProtocol trials (2x4 cells x --trials) through the ROS graph
   (sim robot at --speedup x real time) and directly in lpds_sim (GridProtocol.run, chunks replayed exactly as the
   policy node streams them).

  python bench/ros_latency.py [--model-dir DIR] [--ticks 1000] [--trials 5] [--speedup 3]
Without --model-dir a small model is trained from scripted demos and exported first (lpds_ros.demo_model).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from lpds_core import jsonio

ROOT = Path(__file__).resolve().parents[1]
for p in ("lpds_core", "lpds_sim", "lpds_ros"):
    sys.path.insert(0, str(ROOT / "src" / p))


def _env_for_children() -> dict[str, str]:
    from lpds_ros.process_graph import isolated_ros_env

    env = isolated_ros_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src" / p) for p in ("lpds_core", "lpds_sim", "lpds_ros")]
                                        + [env.get("PYTHONPATH", "")])
    return env


def measure_latency(model_dir: str, ticks: int, rate: float, images: bool, log_dir: Path) -> dict:
    import rclpy
    from rclpy.node import Node
    from std_msgs.msg import Float64MultiArray

    from lpds_ros.graph import NodeSpec, pick_place_graph
    from lpds_ros.process_graph import GraphProcesses

    env = _env_for_children()
    nodes, _ = pick_place_graph(use_sim=True, model_dir=model_dir, runner="onnx", control_rate=rate)
    sim_params = {"publish_images": images, "image_every": 3}  # camera at 10 Hz: the state policy does not use it
    nodes = [NodeSpec(n.executable, n.name, n.namespace, {**n.parameters, **sim_params}
                      if n.executable == "sim_robot_node" else n.parameters) for n in nodes]
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION")})
    rows: list[list[float]] = []
    done = threading.Event()
    rclpy.init()
    node = Node("ros_latency_bench")

    def on_stats(msg):
        rows.append(list(msg.data))
        if len(rows) >= ticks + 30:
            done.set()

    node.create_subscription(Float64MultiArray, "policy/tick_stats", on_stats, 1000)
    graph = GraphProcesses(nodes, env=env, log_dir=str(log_dir))
    t0 = time.monotonic()
    with graph:
        while not done.is_set() and time.monotonic() - t0 < 60 + 2 * ticks / rate:
            rclpy.spin_once(node, timeout_sec=0.1)
            graph.check_alive()
    node.destroy_node()
    rclpy.shutdown()
    if len(rows) < ticks + 30:
        raise RuntimeError(f"only {len(rows)} ticks arrived; see the logs in {log_dir}")
    a = np.array(rows[30:30 + ticks])  # skip warm-up (model load, DDS discovery)
    missed = int(a[-1, 3] - a[0, 3])
    gaps = int(a[-1, 5] - a[0, 5]) if a.shape[1] > 5 else -1
    return {"ticks": ticks, "rate_hz": rate, "images": images,
            "obs_to_cmd_ms": {"p50": float(np.percentile(a[:, 0], 50)), "p99": float(np.percentile(a[:, 0], 99)),
                              "max": float(a[:, 0].max())},
            "stamp_to_cmd_ms": {"p50": float(np.percentile(a[:, 1], 50)), "p99": float(np.percentile(a[:, 1], 99))},
            "compute_ms": {"p50": float(np.percentile(a[:, 2], 50)), "p99": float(np.percentile(a[:, 2], 99))},
            "missed_ticks": missed, "input_gaps": gaps}


class ChunkStreamer:
    """policy(obs) -> one action, streaming chunks exactly like the policy node (replan every `replan_after`)."""

    def __init__(self, runner, replan_after: int = 4):
        from lpds_ros.chunk_scheduler import ChunkScheduler

        self.runner, self.sched = runner, ChunkScheduler(replan_after)

    def reset(self) -> None:
        self.sched.clear()

    def __call__(self, obs):
        if self.sched.needs_plan():
            self.sched.set_chunk(self.runner.act(obs))
        return np.clip(self.sched.pop(), -1.0, 1.0).astype(np.float32)


def direct_grid(model_dir: str, trials: int, seed: int, out: Path):
    import gymnasium as gym

    import lpds_sim.rai as rai
    from lpds_core.grid_protocol import GridProtocol
    from lpds_ros.runner import load_runner

    env = gym.make(rai.ENV_IDS["pick_place"], obs_mode="state")
    res = GridProtocol(2, 4, trials, seed).run(env, ChunkStreamer(load_runner("onnx", model_dir, seed=seed)),
                                               progress=False, meta={"title": "direct (lpds_sim)"})
    res.write(out)
    return res


def ros_grid(model_dir: str, trials: int, seed: int, speedup: float, out: Path) -> dict:
    from lpds_ros.graph import NodeSpec, grid_eval_graph
    from lpds_ros.process_graph import GraphProcesses

    nodes, _ = grid_eval_graph(use_sim=True, out_dir=str(out), trials=trials, model_dir=model_dir, runner="onnx",
                               speedup=speedup)
    nodes = [NodeSpec(n.executable, n.name, n.namespace, {**n.parameters, "seed": seed, "episode_timeout": 120.0}
                      if n.executable == "grid_evaluator_node" else n.parameters) for n in nodes]
    graph = GraphProcesses(nodes, env=_env_for_children(), log_dir=str(out / "logs"))
    with graph:
        rc = graph.wait("grid_evaluator")
    if rc != 0:
        raise RuntimeError(graph.log("grid_evaluator")[-2000:])
    return json.loads((out / "grid_results.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default="")
    ap.add_argument("--ticks", type=int, default=1000, help="latency ticks per configuration (0: skip)")
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--trials", type=int, default=5, help="trials per cell for the grid agreement (0: skip)")
    ap.add_argument("--speedup", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench_ros")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir
    if not model_dir:
        from lpds_ros.demo_model import scripted_bc_export

        t = time.monotonic()
        model_dir = str(scripted_bc_export(out / "model", n_episodes=16, bc_steps=1500))
        print(f"trained + exported a scripted-BC model in {time.monotonic() - t:.0f} s -> {model_dir}")
    report: dict = {"model_dir": model_dir}
    for images in ((False, True) if args.ticks > 0 else ()):
        lat = measure_latency(model_dir, args.ticks, args.rate, images, out / f"logs_latency_images{int(images)}")
        report[f"latency_images_{images}"] = lat
        print(f"latency @ {args.rate:.0f} Hz, sim camera {'on (10 Hz) + perception' if images else 'off'}: obs->cmd p50 "
              f"{lat['obs_to_cmd_ms']['p50']:.2f} ms, p99 {lat['obs_to_cmd_ms']['p99']:.2f} ms "
              f"(max {lat['obs_to_cmd_ms']['max']:.1f}); stamp->cmd p50 {lat['stamp_to_cmd_ms']['p50']:.2f} ms; "
              f"compute p50 {lat['compute_ms']['p50']:.2f} ms; missed ticks {lat['missed_ticks']}/{lat['ticks']}; "
              f"sim-side input gaps {lat['input_gaps']}")
    if args.trials > 0:
        t = time.monotonic()
        d = direct_grid(model_dir, args.trials, args.seed, out / "grid_direct")
        t_direct = time.monotonic() - t
        t = time.monotonic()
        r = ros_grid(model_dir, args.trials, args.seed, args.speedup, out / "grid_ros")
        t_ros = time.monotonic() - t
        report["grid"] = {"direct": {"successes": d.successes, "total": len(d.trials),
                                     "table": d.success_table.tolist(), "seconds": t_direct},
                          "ros": {"successes": r["successes"], "total": r["total"], "table": r["success_table"],
                                  "seconds": t_ros, "timeouts": r["meta"]["timeouts"],
                                  "unanswered_steps": r["meta"].get("unanswered_steps")}}
        print(f"grid direct: {d.successes}/{len(d.trials)} {d.success_table.tolist()} ({t_direct:.0f} s)")
        print(f"grid ROS   : {r['successes']}/{r['total']} {r['success_table']} ({t_ros:.0f} s, "
              f"{args.speedup}x real time, {r['meta'].get('unanswered_steps')} sim steps without a fresh command)")
    (out / "ros_bench.json").write_text(jsonio.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
