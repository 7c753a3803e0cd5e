"""Which noise dimensions make the pick_place base fail? Grid-evaluate the frozen base with ε scaled per action dim.

Usage: python bench/noise_dims_probe.py BASE_RUN [--seed 20000] [--scales 0.5 0.7]
Rows: w = ε (the base), ε with the gripper dim zeroed, ε with the xyz dims zeroed, w = 0, then w = c·ε for each
`--scales` c (a global noise temperature). Not methods: a diagnostic of where steering would have to act (the
gripper opens for a ≥ 0, so noise can flip it mid-grasp) and of what a given noise gain g (w ≈ (1 − g)·ε) buys.
"""
import argparse

import numpy as np
import torch

from lpds_core.agents import make_agent
from lpds_sim.evaluation import evaluate_grid, make_env
from lpds_sim.train_steer import load_base

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("--seed", type=int, default=20000)
ap.add_argument("--scales", type=float, nargs="*", default=[], help="extra rows w = c·ε")
args = ap.parse_args()
torch.set_num_threads(1)
backbone, cfg = load_base(args.base)
env = make_env(cfg["task"], cfg["obs"])
agent = make_agent("base", backbone, obs_space=env.observation_space, action_space=env.action_space)
h, a = backbone.noise_shape
rows = [("eps", np.ones(a)), ("gripper noise 0", np.r_[np.ones(a - 1), 0.0]),
        ("xyz noise 0", np.r_[np.zeros(a - 1), 1.0]), ("w = 0", np.zeros(a))]
rows += [(f"w = {c:g}·eps", np.full(a, c)) for c in args.scales]
for name, mask in rows:
    torch.manual_seed(0)
    m = torch.as_tensor(mask, dtype=torch.float32)

    def policy(obs, m=m):
        with torch.no_grad():
            t, _ = agent.obs_to_tensor(obs)
            feats = agent.features(t)
            w = torch.randn(feats.shape[0], h, a) * m
            return agent.decode(feats, w)[0].numpy()

    res = evaluate_grid(cfg["task"], cfg["obs"], policy, backbone.horizon, trials_per_cell=5, seed=args.seed, env=env)
    print(f"{name:16s} success {res['success_rate']:.3f} ({round(res['success_rate'] * 40)}/40) "
          f"return {res['mean_return']:.2f}", flush=True)
env.close()
