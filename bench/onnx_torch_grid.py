"""Closed-loop grid success of an exported ONNX policy against the torch policy it was exported from.

Usage: python bench/onnx_torch_grid.py PIPELINE_RUN [--grids 8] [--first 1]
PIPELINE_RUN holds `steer/` (a finished `lpds train-steer` run) and `export/` (its `lpds export`), as `lpds pipeline`
writes them. Grid g (seed 20000 + g, 40 trials) is run twice: ONNX with ε from numpy default_rng(g), torch with
torch.manual_seed(g), so the two rows are independent samples of the same grids. Export parity (≤ 1e-4 on the same
observation and ε) is checked first on the observations the torch rollout visits. Why: `make demo` reports the
exported policy, the steering runs report torch; this says whether they should agree.
"""
import argparse

import numpy as np
import torch

from lpds_core.onnx_policy import OnnxPolicy
from lpds_sim.evaluation import evaluate_grid, make_env
from lpds_sim.export_run import load_steered_policy

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("--grids", type=int, default=8)
ap.add_argument("--first", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(1)
env = make_env("pick_place", "state")
backbone, agent, cfg = load_steered_policy(f"{args.run}/steer", env=env)
pol = OnnxPolicy(f"{args.run}/export")
h, a = backbone.noise_shape
low, high = env.action_space.low, env.action_space.high

seen = []
torch.manual_seed(0)
evaluate_grid(cfg["task"], "state", lambda o: seen.append(np.asarray(o, np.float32)) or agent.act(o), h,
              trials_per_cell=1, seed=20000, env=env)
obs = np.stack(seen)
eps = np.random.default_rng(0).standard_normal((len(obs), h, a)).astype(np.float32)
with torch.no_grad():
    ref = agent.steered(agent.features(torch.as_tensor(obs)), torch.as_tensor(eps), averaged=True)[0].numpy()
diff = np.abs(np.clip(pol.act(obs, eps=eps), low, high) - ref).max()
print(f"parity on {len(obs)} visited states: max |onnx - torch| = {diff:.2e}")

tot = {"onnx": 0, "torch": 0}
for g in range(args.first, args.first + args.grids):
    rng = np.random.default_rng(g)
    r_onnx = evaluate_grid(cfg["task"], "state", lambda o: np.clip(pol.act(o, rng=rng), low, high), h,
                           trials_per_cell=5, seed=20000 + g, env=env)
    torch.manual_seed(g)
    r_torch = evaluate_grid(cfg["task"], "state", lambda o: agent.act(o), h, trials_per_cell=5, seed=20000 + g,
                            env=env)
    tot["onnx"] += r_onnx["n_success"]
    tot["torch"] += r_torch["n_success"]
    print(f"grid {g}: onnx {r_onnx['n_success']}/40  torch {r_torch['n_success']}/40", flush=True)
n = 40 * args.grids
p_o, p_t = tot["onnx"] / n, tot["torch"] / n
se = np.sqrt(p_o * (1 - p_o) / n + p_t * (1 - p_t) / n)
print(f"onnx {tot['onnx']}/{n} ({p_o:.3f})  torch {tot['torch']}/{n} ({p_t:.3f})  "
      f"ratio onnx/torch {p_o / max(p_t, 1e-9):.3f}  difference {p_o - p_t:+.3f} ± {se:.3f} (1 s.e.)")
env.close()
