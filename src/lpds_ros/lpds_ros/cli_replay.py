"""`lpds replay BAG`: review one recorded episode (a bag from `lpds ros-sim --out DIR` or the episode_recorder).

Plots the end-effector trajectory (top-down and side), the commanded targets before and after the safety filter
against time, the policy's hold reasons as a band, and the outcome in the title. With --model-dir it re-runs the
exported ONNX policy offline on the recorded observations (with the recorded noise ε when the bag has it) and
reports how far its action chunks are from the ones the deployed policy produced (max / mean |Δ|).
Reading needs rosbags, numpy, matplotlib (and onnxruntime for --model-dir), not rclpy — except image-mode
re-runs, which build the proprioception with the policy node's own function.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="plot a recorded episode bag; optionally re-run the policy on it offline",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("bag", help="episode bag folder (e.g. runs/ros_sim/bags/trial_000) or its .mcap file")
    p.add_argument("--out", default="", help="figure path (default: BAG.png next to the bag folder)")
    p.add_argument("--model-dir", default="", help="ONNX export folder: re-run this policy on the recorded "
                                                   "observations and compare its actions with what was sent")
    p.set_defaults(func=run)


POSE, TARGET, RAW_TARGET = "franka_robot_state_broadcaster/current_pose", "lpds/target_pose", "policy/raw_target"
PLAN, TASK_STATE, REASON, GRIPPER = "policy/plan", "sim/task_state", "policy/hold_reason", "lpds/gripper_command"
MATCH_NS = 1_000_000  # a plan's stamp (float seconds in the node) matches its observation's stamp to within 1 ms


def _xyz(msgs: list[tuple[int, Any]]) -> np.ndarray:
    return np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for _, m in msgs]).reshape(-1, 3)


def _times(msgs: list[tuple[int, Any]], t0: int) -> np.ndarray:
    return (np.array([t for t, _ in msgs], dtype=np.int64) - t0) * 1e-9


def _title(bag: Any) -> str:
    o, m = bag.outcome or {}, bag.meta
    where = f"trial {m['trial']} cell {tuple(m.get('cell', ()))} seed {m.get('seed')}" if "trial" in m else \
        f"episode {m.get('episode', '?')}"
    if o.get("success") is None:
        verdict = f"outcome not graded ({o.get('ended') or o.get('aborted') or 'no outcome recorded'})"
    else:
        verdict = f"{'SUCCESS' if o['success'] else 'failure'} in {o.get('steps')} steps" + \
                  (" (timeout)" if o.get("timeout") else "")
    return f"{m.get('task', '?')} {where}: {verdict}"


def _reason_spans(reasons: list[tuple[int, Any]], t0: int, t_end: int) -> list[tuple[float, float, str]]:
    from .hold_reasons import reason_kind

    out = []
    for i, (t, m) in enumerate(reasons):
        nxt = reasons[i + 1][0] if i + 1 < len(reasons) else t_end
        out.append(((t - t0) * 1e-9, (nxt - t0) * 1e-9, reason_kind(m.data) if m.data else "streaming"))
    return out


def replay_actions(bag: Any, model_dir: str) -> dict[str, Any]:
    """Re-run the exported policy on each planning tick's recorded observation; Δ to the recorded chunks."""
    from lpds_core.errors import DataError
    from lpds_core.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(model_dir)
    task, model_task = bag.meta.get("task"), policy.spec.get("task")
    if model_task and task and model_task != task:
        raise DataError(f"the model in {model_dir} was exported for task {model_task!r} but the bag {bag.path} is "
                        f"an episode of {task!r}: give the model that ran this episode")
    plans = bag.topic(PLAN)
    if not plans:
        raise DataError(f"bag {bag.path} has no {PLAN} messages (the policy never planned): nothing to re-run")
    obs_at = _observations(bag, policy)
    deltas, times, missing, noise = [], [], 0, True
    t0 = min(t for msgs in bag.messages.values() for t, _ in msgs[:1])
    rng = np.random.default_rng(0)
    for t, m in plans:
        obs = obs_at(int(m.header.stamp.sec) * 1_000_000_000 + int(m.header.stamp.nanosec))
        if obs is None:
            missing += 1
            continue
        sent = np.asarray(m.position, float).reshape(-1, policy.act_dim)
        if sent.shape[0] != policy.horizon:
            raise DataError(f"bag {bag.path} holds chunks of {sent.shape[0]} x {sent.shape[1]} but the model plans "
                            f"{policy.horizon} x {policy.act_dim}: give the model that ran this episode")
        eps = np.asarray(m.effort, np.float32).reshape(sent.shape) if len(m.effort) == sent.size else None
        noise = noise and eps is not None
        try:
            mine = policy.act(obs, eps=eps, rng=rng)
        except ValueError as exc:
            raise DataError(f"the model in {model_dir} cannot act on the bag's observations ({exc}): give the model "
                            "that ran this episode") from exc
        deltas.append(np.abs(np.asarray(mine, float) - sent))
        times.append((t - t0) * 1e-9)
    if not deltas:
        raise DataError(f"bag {bag.path}: none of its {len(plans)} plans has a recorded observation with its stamp")
    d = np.stack(deltas)
    return {"max": float(d.max()), "mean": float(d.mean()), "per_plan": d.reshape(len(d), -1).max(axis=1),
            "times": np.array(times), "plans": len(d), "unmatched": missing, "recorded_noise": noise}


def _observations(bag: Any, policy: Any):
    """stamp (ns) -> the observation the policy node saw at that stamp (state or image mode), or None."""
    from lpds_core.errors import DataError

    from .episode_bag import decode_compressed, stamp_ns

    def index(msgs):
        return {stamp_ns(m.header): m for _, m in msgs}

    def near(table: dict[int, Any], s: int):
        if not table:
            return None
        k = min(table, key=lambda x: abs(x - s))
        return table[k] if abs(k - s) <= MATCH_NS else None

    if list(policy.obs_spec) == ["state"]:
        states = index(bag.topic(TASK_STATE))
        if not states:
            raise DataError(f"bag {bag.path} has no {TASK_STATE} messages, but the model takes a state observation: "
                            "this episode ran in image mode or on another task")
        return lambda s: (None if (m := near(states, s)) is None else np.asarray(m.position, np.float32))
    rgb, depth = index(bag.topic("lpds/obs/rgb/compressed")), index(bag.topic("lpds/obs/depth"))
    poses, grip = index(bag.topic(POSE)), index(bag.topic("franka_gripper/joint_states"))
    if not rgb or not depth:
        raise DataError(f"bag {bag.path} has no lpds/obs/rgb + lpds/obs/depth images, but the model takes image "
                        "observations: this episode ran in state mode")
    from .graph import NODE_PARAMETERS
    from .policy_core import RobotState
    from .policy_node import proprio_from_state

    layout = list(NODE_PARAMETERS["policy_node"]["proprio_layout"])  # the policy node's default layout

    def obs(s: int):
        c, d, p, g = near(rgb, s), near(depth, s), near(poses, s), near(grip, s)
        if c is None or d is None or p is None:
            return None
        q = p.pose.orientation
        state = RobotState(s * 1e-9, np.array([p.pose.position.x, p.pose.position.y, p.pose.position.z]),
                           np.array([q.x, q.y, q.z, q.w]), float(np.sum(g.position)) if g is not None else 0.08)
        dep = np.frombuffer(bytes(d.data), np.float32).reshape(d.height, d.width)
        return {"rgb": np.ascontiguousarray(decode_compressed(c.format, c.data).transpose(2, 0, 1)),
                "depth": dep[None].copy(), "proprio": proprio_from_state(state, layout)}

    return obs


def plot(bag: Any, out: Path, replay: dict[str, Any] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    poses, targets, raws = bag.topic(POSE), bag.topic(TARGET), bag.topic(RAW_TARGET)
    t0 = min(t for msgs in bag.messages.values() for t, _ in msgs[:1])
    t_end = max(t for msgs in bag.messages.values() for t, _ in msgs[-1:])
    ee, tg, rw = _xyz(poses), _xyz(targets), _xyz(raws)
    rows = 4 if replay else 3
    fig = plt.figure(figsize=(11, 3.2 * rows))
    gs = fig.add_gridspec(rows, 2, height_ratios=[3, 2, 0.6] + ([1.5] if replay else []))
    for k, (ax_i, ax_j, name) in enumerate(((0, 1, "top-down (x, y)"), (0, 2, "side (x, z)"))):
        ax = fig.add_subplot(gs[0, k])
        ax.plot(ee[:, ax_i], ee[:, ax_j], "-", color="k", lw=1.5, label="measured EE")
        if len(rw):
            ax.plot(rw[:, ax_i], rw[:, ax_j], ".", color="tab:orange", ms=3, label="target before safety")
        if len(tg):
            ax.plot(tg[:, ax_i], tg[:, ax_j], "-", color="tab:blue", lw=0.8, label="target sent")
        if len(ee):
            ax.plot(*ee[0, [ax_i, ax_j]], "go", label="start")
            ax.plot(*ee[-1, [ax_i, ax_j]], "rs", label="end")
        ax.set_xlabel("xyz"[ax_i] + " [m]")
        ax.set_ylabel("xyz"[ax_j] + " [m]")
        ax.set_title(name)
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[1, :])
    for i, c in enumerate(("tab:red", "tab:green", "tab:blue")):
        if len(raws):
            ax.plot(_times(raws, t0), rw[:, i], "--", color=c, lw=0.8, label=f"{'xyz'[i]} before safety")
        if len(targets):
            ax.plot(_times(targets, t0), tg[:, i], "-", color=c, lw=1.2, label=f"{'xyz'[i]} sent")
    grip = bag.topic(GRIPPER)
    if grip:
        ax2 = ax.twinx()
        ax2.step(_times(grip, t0), [m.data for _, m in grip], "k:", where="post", lw=0.8)
        ax2.set_ylabel("gripper (0 open .. 1 closed)")
    ax.set_ylabel("target [m]")
    ax.legend(fontsize=7, ncol=6, loc="upper left")
    axb = fig.add_subplot(gs[2, :], sharex=ax)
    spans = _reason_spans(bag.topic(REASON), t0, t_end)
    kinds = list(dict.fromkeys(k for *_, k in spans))
    cmap = plt.get_cmap("tab10")
    for a, b, k in spans:
        colour = "tab:green" if k == "streaming" else "0.7" if k.startswith("stopped") else \
            cmap((kinds.index(k) % 8) + 2)
        axb.axvspan(a, b, color=colour, alpha=0.8, label=k[:70])
    handles, labels = axb.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axb.legend(uniq.values(), uniq.keys(), fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.6),
               ncol=min(3, max(1, len(uniq))))
    axb.set_yticks([])
    axb.set_ylabel("hold")
    axb.set_xlabel("time since the bag's start [s]")
    if replay:
        axr = fig.add_subplot(gs[3, :], sharex=ax)
        axr.plot(replay["times"], replay["per_plan"], "o-", ms=3)
        axr.set_ylabel("max |Δ action|")
        axr.set_title(f"offline re-run vs recorded chunks: max {replay['max']:.3g}, mean {replay['mean']:.3g}"
                      f"{'' if replay['recorded_noise'] else ' (no recorded noise: fresh ε)'}", fontsize=9)
    fig.suptitle(_title(bag))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from lpds_core.errors import ConfigError, DataError

    from .episode_bag import read_episode

    bag = read_episode(args.bag)
    missing = [t for t in (POSE, TARGET, REASON) if not bag.topic(t)]
    if missing:
        raise DataError(f"bag {bag.path} has no messages on {', '.join(missing)}: it is not a recording of the "
                        "policy graph (record with `lpds ros-sim --out DIR` or the episode_recorder node)")
    out = Path(args.out) if args.out else bag.path.with_name(bag.path.name + ".png")
    if out.exists():
        raise ConfigError(f"{out} already exists and is never overwritten: pass another --out")
    replay = replay_actions(bag, args.model_dir) if args.model_dir else None
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(bag, out, replay)
    n_t = len(bag.topic(TARGET))
    print(f"{_title(bag)}; {len(bag.topic(POSE))} poses, {n_t} targets sent, {len(bag.topic(PLAN))} plans, "
          f"{len(bag.topic(REASON))} hold-reason changes")
    if replay:
        print(f"offline re-run of {args.model_dir} on {replay['plans']} recorded observations: |Δ action| max "
              f"{replay['max']:.3g}, mean {replay['mean']:.3g}"
              + ("" if replay["recorded_noise"] else " (the bag has no recorded noise ε: Δ includes sampling noise)")
              + (f"; {replay['unmatched']} plans without their observation" if replay["unmatched"] else ""))
    print(f"figure: {out}")
    return 0
