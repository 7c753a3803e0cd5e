"""A steering run killed with SIGKILL and resumed loses at most one checkpoint interval and then finishes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from lpds_sim import runs
from pipeline_helpers import make_base_run

pytest.importorskip("robotic")

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / "src" / p) for p in ("lpds_core", "lpds_sim"))}


def _steer_cmd(base: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lpds_sim.cli", "train-steer", "--base", str(base), "--algo", "lpds",
            "--delta", "0.05", "--env-steps", "2400", "--out", str(out), "--ckpt-every", "400",
            "--eval-every", "100000", "--warmup-steps", "200", "--utd", "1", "--no-progress", *extra]


def _last_train_step(run: Path) -> int:
    rows = runs.read_scalars(run)
    return max((r["step"] for r in rows), default=0)


@pytest.mark.slow
def test_sigkill_then_resume_loses_at_most_one_interval(tmp_path):
    base = make_base_run(tmp_path / "base")
    out = tmp_path / "steer"
    cfg = tmp_path / "small.yaml"
    cfg.write_text("batch_size: 32\nhidden: [64, 64]\ncritic_hidden: [64, 64]\neval_trials: 1\n")
    proc = subprocess.Popen(_steer_cmd(base, out, "--config", str(cfg)), env=ENV, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ck = runs.Checkpointer(out / "checkpoints")
    deadline = time.time() + 120
    # kill mid-interval: after the 2nd checkpoint, once the run has logged progress beyond it
    while time.time() < deadline and proc.poll() is None:
        paths = ck.paths()
        if len(paths) >= 2 and _last_train_step(out) > int(re.search(r"\d+", paths[-1].name).group()) + 100:
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"run ended before it could be killed:\n{proc.stdout.read()}"
    killed_at = _last_train_step(out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "done.json").exists()
    last_ckpt = int(re.search(r"\d+", ck.paths()[-1].name).group())
    assert killed_at - last_ckpt <= 400 + 32  # at most one interval (+ one vector step of 2 chunks × H=4... × 4)

    res = subprocess.run(_steer_cmd(base, out, "--config", str(cfg), "--resume"), env=ENV, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"resumed .* at env step (\d+)", res.stdout)
    assert m and int(m.group(1)) == last_ckpt
    done = json.loads((out / "done.json").read_text())
    assert done["env_steps"] >= 2400
    steps = [r["step"] for r in runs.read_scalars(out, "train")]
    assert steps == sorted(steps), "scalars after the kill point must have been dropped on resume"
    assert (out / "plots" / "lambda_delta.png").is_file() and (out / "plots" / "success_return.png").is_file()


def test_resume_refuses_a_different_base_task(tmp_path, capsys):
    from lpds_sim.cli import main

    base = make_base_run(tmp_path / "mugbase", task="mug_hang")
    rc = main(["train-steer", "--base", str(base), "--task", "pick_place", "--algo", "lpds", "--delta", "0.05",
               "--env-steps", "10", "--warmup-steps", "0", "--out", str(tmp_path / "steer")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "task 'mug_hang'" in err and "'pick_place'" in err


def test_corrupt_checkpoint_on_resume_is_a_clear_error(tmp_path, capsys):
    from lpds_sim.cli import main

    base = make_base_run(tmp_path / "base")
    out = tmp_path / "steer"
    from lpds_sim.train_steer import SteerConfig

    cfg = runs.config_from_dict(SteerConfig, {"base": str(base), "task": "pick_place", "env_steps": 10,
                                              "warmup_steps": 0})
    runs.RunDir.open(out, cfg, resume=False, kind="steer")
    bad = out / "checkpoints" / "ckpt_0000000400.pt"
    runs.save_checkpoint(bad, {"x": torch.zeros(1000)})
    bad.write_bytes(bad.read_bytes()[:-100])  # truncated, as a copy cut short would leave it
    rc = main(["train-steer", "--out", str(out), "--resume"])  # the saved config.yaml gives the rest
    assert rc == 2
    err = capsys.readouterr().err
    assert "ckpt_0000000400.pt" in err and "corrupt" in err


def test_steer_config_checks_eps_form_and_exploration_keys():
    from lpds_sim.train_steer import SteerConfig

    def steer(**kw):
        return runs.config_from_dict(SteerConfig, {"base": "b", **kw}, "test")

    ok = steer(algo="lpds", explore_eps_scale=[0, 1], eps_form="shrink")
    assert ok.train.explore_eps_scale == [0.0, 1.0] and ok.agent.eps_form == "shrink"
    with pytest.raises(runs.ConfigError, match="eps_form"):
        steer(eps_form="free")
    with pytest.raises(runs.ConfigError, match=r"\[lo, hi\]"):
        steer(explore_eps_scale=[1.0, 0.5])
    with pytest.raises(runs.ConfigError, match="dsrl-na samples its own noise"):
        steer(algo="dsrl-na", explore_eps_scale=[0, 1])


def test_resume_accepts_a_run_started_before_a_config_key_existed(tmp_path):
    from lpds_sim.train_steer import SteerConfig

    cfg = runs.config_from_dict(SteerConfig, {"base": "b", "task": "pick_place"})
    run = runs.RunDir.open(tmp_path / "r", cfg, resume=False, kind="steer")
    saved = yaml.safe_load(run.config_path.read_text())
    del saved["agent"]["eps_form"]  # as written by a version without the key
    run.config_path.write_text(yaml.safe_dump(saved))
    runs.RunDir.open(tmp_path / "r", cfg, resume=True, kind="steer", must_match=("eps_form", "use_eps"))
    shrink = runs.config_from_dict(SteerConfig, {"base": "b", "task": "pick_place", "eps_form": "shrink"})
    with pytest.raises(runs.RunError, match="eps_form"):
        runs.RunDir.open(tmp_path / "r", shrink, resume=True, kind="steer", must_match=("eps_form",))


def test_resume_reads_a_flat_run_config_written_before_the_schema(tmp_path):
    """Run folders from before the `agent:`/`train:` sections (flat keys, `hidden: 256`, `critic_state`) still
    resume: their config reads as today's, and only a flag that really differs is a conflict."""
    from lpds_sim.train_steer import SteerConfig

    old = {"kind": "steer", "base": "b", "task": "pick_place", "algo": "lpds", "delta": 8.0, "hidden": 64,
           "critic_state": False, "threads": 1, "eval_trials_per_cell": 1, "final_trials_per_cell": 5,
           "env_steps": 1000, "warmup_steps": 100}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text(yaml.safe_dump(old))
    saved = runs.config_from_dict(SteerConfig, old, "old run", kind="steer")
    assert saved.agent.hidden == (64, 64) and saved.agent.critic_hidden == (64, 64)
    assert saved.agent.critic_obs is None and saved.train.eval_trials == 1
    runs.RunDir.open(tmp_path / "r", saved, resume=True, kind="steer", must_match=("delta", "hidden"))


@pytest.mark.slow
@pytest.mark.display
def test_image_steering_stores_encoded_features_and_gives_the_critic_the_sim_state(tmp_path):
    """The image path end to end: privileged-state envs, a replay of encoded features (no images), resume."""
    from lpds_sim.train_steer import load_replay_state

    base = make_base_run(tmp_path / "base", obs="image")
    out = tmp_path / "steer"
    cmd = [sys.executable, "-m", "lpds_sim.cli", "train-steer", "--base", str(base), "--algo", "lpds",
           "--delta", "8", "--use-eps", "--eps-form", "shrink", "--critic-obs", "state", "--out", str(out),
           "--warmup-steps", "96", "--batch-size", "16", "--ckpt-every", "160", "--eval-every", "100000",
           "--no-progress"]
    r = subprocess.run([*cmd, "--env-steps", "160"], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    state = runs.load_checkpoint(out / "checkpoints" / "ckpt_0000000160.pt")
    replay_obs = state["replay"]["native"]["obs"] if "native" in state["replay"] else state["replay"]["obs"]
    assert set(replay_obs) == {"features", "state"}  # 16 + 8 features and the 18-value sim state, no images
    assert replay_obs["features"].shape[1:] == (24,) and replay_obs["state"].shape[1:] == (18,)
    critic_in = state["agent"]["modules"]["critic.q1.0.weight"].shape[1]
    assert critic_in == 18 + 16  # state + the 4×4 action chunk
    assert bool(state["agent"]["modules"]["critic_norm.fitted"])
    # the checkpointed replay restores into a buffer whose batches the agent trains on without the images
    from lpds_core.agents import make_agent
    from lpds_core.replay import ReplayBuffer
    from lpds_sim.train_steer import load_base

    buf = ReplayBuffer(1000, (4, 4), seed=0)
    load_replay_state(buf, state["replay"])
    assert len(buf) == 160 // 4
    backbone, _ = load_base(base)
    space = gym.spaces.Dict({"state": gym.spaces.Box(-np.inf, np.inf, (18,), np.float32)})
    agent = make_agent("lpds", backbone, space, {**state["agent"]["config"]},
                       gym.spaces.Box(-1, 1, (4,), np.float32))
    agent.load_state_dict(state["agent"])
    assert np.isfinite(agent.update(buf.sample(16))["critic_loss"])
    # export and evaluation rebuild the agent from envs without the privileged state: only Δθ ships
    r = subprocess.run([sys.executable, "-m", "lpds_sim.cli", "export", "--run", str(out), "--out",
                        str(tmp_path / "onnx")], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "onnx" / "perturbation.onnx").is_file()
    r = subprocess.run([*cmd[:-1], "--env-steps", "160", "--out", str(tmp_path / "bad"), "--algo", "dsrl-na"],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "critic_obs applies to lpds" in r.stderr
