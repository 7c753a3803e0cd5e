"""A small real LP-DS export for plumbing tests and the latency benchmark, made from scratch in seconds.

Demonstrations from the scripted operator (ScriptedPickPlace) in lpds_sim's RAI pick-and-place (state obs)
-> flow-matching behaviour cloning (lpds_core) -> ONNX export with a freshly initialised LP-DS noise perturbation
(Δθ ≈ 0, i.e. the steered policy starts as the frozen base). Needs torch + robotic: simulation/CI side only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def collect_scripted_demos(n_episodes: int = 8, seed: int = 0, max_steps: int = 150) -> list[dict]:
    import gymnasium as gym

    import lpds_sim.rai as rai

    from .rai_backend import state_names
    from .runner import ScriptedPickPlace

    env = gym.make(rai.ENV_IDS["pick_place"], obs_mode="state").unwrapped
    op = ScriptedPickPlace(state_names(env.state_layout), horizon=1,
                           action_scale=env.max_lin_speed / env.control_hz)
    rows, cols = env.grid_shape
    episodes = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i, options={"cell": (i // cols % rows, i % cols)})
        o_l, a_l = [], []
        for _ in range(max_steps):
            a = op.act(obs)[0].astype(np.float32)
            o_l.append(obs)
            a_l.append(a)
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
        episodes.append({"obs": np.asarray(o_l, np.float32), "actions": np.asarray(a_l, np.float32)})
    env.close()
    return episodes


def scripted_bc_export(out_dir: str | Path, n_episodes: int = 8, horizon: int = 4, bc_steps: int = 300,
                       hidden: int = 128, num_steps: int = 10, seed: int = 0) -> Path:
    """Writes decoder.onnx + perturbation.onnx into out_dir and returns it."""
    import torch

    from lpds_core.bc import make_chunks, train_bc
    from lpds_core.export import export_onnx
    from lpds_core.flow_matching import FlowMatchingPolicy
    from lpds_core.perturbation import NoisePerturbation

    torch.manual_seed(seed)
    obs, chunks = make_chunks(collect_scripted_demos(n_episodes, seed), horizon)
    model = FlowMatchingPolicy(obs.shape[1], chunks.shape[2], horizon, hidden=hidden, n_layers=2,
                               num_steps=num_steps)
    train_bc(model, obs, chunks, steps=bc_steps, batch_size=128, progress=False, seed=seed, threads=1)
    model.freeze()
    pert = NoisePerturbation(model.feature_dim, model.noise_shape, hidden=(64, 64)).eval()
    export_onnx(model, pert, out_dir, {"task": "pick_place", "algo": "lpds", "delta": 0.05,
                                        "source": "lpds_ros.demo_model (scripted-operator BC)"})
    return Path(out_dir)
