"""Probe a steer run's newest checkpoint: does its critic prefer shrunk base noise, and does Δθ(s, ε) shrink it?

Usage: python bench/critic_noise_probe.py RUN   (a `lpds train-steer` run folder with checkpoints/)
Prints, on 1024 replay states and fresh ε, min-twin Q(s, Φ(s, c·ε)) for c = 1, 0.5, 0 and for the steered
action Φ(s, ε + Δθ(s, ε)), the fraction of states where each beats c = 1, ‖Δ‖², ‖w‖², and cos(Δ, −ε)
(≈ 1 would mean the perturbation learned to shrink the noise, 0 that it moves orthogonally to it).
Why: decoding the pick_place base with w = 0.5·ε gives 34/40 grid successes against 19/40 with w = ε.
"""
import sys, torch, numpy as np
from pathlib import Path
from lpds_sim import runs
from lpds_sim.train_steer import SteerConfig, load_base, load_replay_state, steering_obs_space
from lpds_sim.evaluation import make_env
from lpds_core.agents import make_agent
from lpds_core.replay import ReplayBuffer
torch.set_num_threads(1)
run = Path(sys.argv[1])
cfg = runs.read_config_dict(run)
scfg = runs.config_from_dict(SteerConfig, {k: v for k, v in cfg.items() if k != "kind"}, str(run))
backbone, base_cfg = load_base(scfg.base, scfg.task)
env = make_env(scfg.task, base_cfg["obs"])
agent = make_agent(scfg.algo, backbone, obs_space=steering_obs_space(scfg, env), action_space=env.action_space,
                   config=scfg.agent)
ck = run.joinpath("checkpoints"); p = sorted(ck.iterdir())[-1]
st = runs.load_checkpoint(p)
agent.load_state_dict(st["agent"])
rb = ReplayBuffer(scfg.train.env_steps, backbone.noise_shape, seed=1); load_replay_state(rb, st["replay"])
torch.manual_seed(0)
b = rb.sample(1024)
with torch.no_grad():
    obs, _ = agent._batch_obs(b)
    feats = agent.features(obs)
    cin = agent.critic_inputs(obs, feats)  # the features, or the sim state for a --critic-state run
    eps = torch.randn(feats.shape[0], *backbone.noise_shape)
    qs = {}
    for c in (1.0, 0.5, 0.0):
        qs[c] = torch.min(*agent.critic(cin, agent.decode(feats, c * eps)))
    a, w, d = agent.steered(feats, eps)
    qs["steer"] = torch.min(*agent.critic(cin, a))
    qd = torch.min(*agent.critic(cin, b["action"]))
print(p.name, "replay", len(rb), "Q(data)=%.3f" % qd.mean())
for k, v in qs.items():
    print(f"c={k}: Q mean {v.mean():.4f}  frac>Q(c=1) {(v > qs[1.0]).float().mean():.2f}")
print("|delta|^2 %.2f, |w|^2 %.2f |eps|^2 %.2f, cos(delta,-eps) %.2f" % (d.pow(2).sum((1,2)).mean(), w.pow(2).sum((1,2)).mean(), eps.pow(2).sum((1,2)).mean(),
      torch.nn.functional.cosine_similarity(d.flatten(1), -eps.flatten(1)).mean()))
env.close()
gain = agent.perturbation.gain(feats) if hasattr(agent.perturbation, "gain") else None
if gain is not None:  # the "shrink" form Δθ(s, ε) = h(s) − g(s)⊙ε: how much noise it removes, per action dim
    shift = agent.perturbation(feats, torch.zeros_like(eps))
    names = {4: ["x", "y", "z", "grip"], 5: ["x", "y", "z", "yaw", "grip"]}.get(backbone.noise_shape[1])
    per_dim = gain.mean(dim=(0, 1)).tolist()
    print("noise gain g per action dim (mean over states and chunk steps):",
          ", ".join(f"{n if names else i}={v:.2f}" for i, (n, v) in enumerate(zip(names or range(99), per_dim))),
          f"| E Σg² = {gain.pow(2).sum(dim=(1, 2)).mean():.2f}, ‖h‖² = {shift.pow(2).sum(dim=(1, 2)).mean():.2f}")
