"""Gym locomotion benchmark data: the SAC expert trainer (maths, resume, medium snapshot) and the Minari datasets."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from lpds_core.agents.sac_common import TanhNoiseActor
from lpds_core.errors import DataError, RunError
from lpds_sim.benchmarks import experts
from lpds_sim.benchmarks.datasets import dataset_id, load_episodes, make_dataset, parse_name
from lpds_sim.benchmarks.experts import SACConfig, SACExpert, load_policy, save_policy, train_expert
from lpds_sim.benchmarks.gym_tasks import get_task

@pytest.fixture(autouse=True)
def one_thread():
    """Like the trainer's command: tiny networks on 2 threads spend their time in thread hand-offs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(warmup_steps=100, batch_size=32, hidden=(32, 32), eval_every=100, eval_episodes=1,
            checkpoint_every=100, replay_size=1000)


# ---------------------------------------------------------------------------------------------------------------
# SAC maths: one update against the textbook formulas written out by hand
# ---------------------------------------------------------------------------------------------------------------
def _batch(n: int = 16, obs_dim: int = 5, act_dim: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"obs": torch.randn(n, obs_dim, generator=g), "next_obs": torch.randn(n, obs_dim, generator=g),
            "action": torch.rand(n, 1, act_dim, generator=g) * 2 - 1, "reward": torch.randn(n, generator=g),
            "discount": torch.full((n,), 0.99), "done": (torch.rand(n, generator=g) < 0.3).float()}


def _gaussian_tanh(actor: TanhNoiseActor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(μ + σ z), log π(a) = Σ log N(μ + σ z; μ, σ) − log(1 − a²): SAC's squashed Gaussian."""
    mu, log_std = actor.net(obs).chunk(2, -1)
    log_std = log_std.clamp(-5, 2)
    z = torch.randn_like(mu)
    u = mu + log_std.exp() * z
    a = torch.tanh(u)
    logp = (torch.distributions.Normal(mu, log_std.exp()).log_prob(u) - torch.log(1 - a.pow(2) + 1e-6)).sum(-1)
    return a, logp


def _q(net: torch.nn.Module, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return net(torch.cat([obs, a.reshape(a.shape[0], -1)], 1)).squeeze(-1)


def test_sac_update_matches_the_textbook_step():
    torch.manual_seed(0)
    agent = SACExpert(5, 2, SACConfig(hidden=(16, 16), alpha_init=0.3, lr=1e-2))
    ref = copy.deepcopy(agent)
    b = _batch()
    torch.manual_seed(7)
    agent.update(b)

    torch.manual_seed(7)  # the same noise draws, in the same order (next action, then current action)
    c = ref.critic
    alpha = ref.temperature.log_alpha.exp().detach()
    with torch.no_grad():
        a2, logp2 = _gaussian_tanh(ref.actor, b["next_obs"])
        soft_v = torch.min(_q(c.target_q1, b["next_obs"], a2), _q(c.target_q2, b["next_obs"], a2)) - alpha * logp2
        y = b["reward"] + b["discount"] * (1 - b["done"]) * soft_v
    q_loss = 0.5 * (((_q(c.q1, b["obs"], b["action"]) - y) ** 2).mean()
                    + ((_q(c.q2, b["obs"], b["action"]) - y) ** 2).mean())
    opt_q = torch.optim.Adam([*c.q1.parameters(), *c.q2.parameters()], lr=1e-2)
    opt_q.zero_grad()
    q_loss.backward()
    opt_q.step()
    a, logp = _gaussian_tanh(ref.actor, b["obs"])
    pi_loss = (alpha * logp - torch.min(_q(c.q1, b["obs"], a), _q(c.q2, b["obs"], a))).mean()
    opt_pi = torch.optim.Adam(ref.actor.parameters(), lr=1e-2)
    opt_pi.zero_grad()
    pi_loss.backward()
    opt_pi.step()
    alpha_loss = -(ref.temperature.log_alpha * (logp.detach() - 2.0)).mean()  # target entropy −|A| = −2
    opt_a = torch.optim.Adam([ref.temperature.log_alpha], lr=1e-2)
    opt_a.zero_grad()
    alpha_loss.backward()
    opt_a.step()
    with torch.no_grad():
        for online, target in ((c.q1, c.target_q1), (c.q2, c.target_q2)):
            for p, t in zip(online.parameters(), target.parameters()):
                t.mul_(1 - 0.005).add_(0.005 * p)

    for (name, got), want in zip(agent.critic.state_dict().items(), c.state_dict().values()):
        torch.testing.assert_close(got, want, msg=f"critic {name}")
    for (name, got), want in zip(agent.actor.state_dict().items(), ref.actor.state_dict().values()):
        torch.testing.assert_close(got, want, msg=f"actor {name}")
    torch.testing.assert_close(agent.temperature.log_alpha, ref.temperature.log_alpha)


# ---------------------------------------------------------------------------------------------------------------
# trainer: resume == never stopped; the medium snapshot; refusing foreign folders
# ---------------------------------------------------------------------------------------------------------------
def _evals(folder) -> list[dict]:
    # wall_s is the clock; train_return averages the last training episodes, which a resume starts afresh
    return [{k: v for k, v in json.loads(line).items() if k not in ("wall_s", "train_return")}
            for line in (folder / "evals.jsonl").read_text().splitlines()]


def test_trainer_resumes_to_the_same_state(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train_expert("hopper", straight, SACConfig(total_steps=300, **TINY), log=lambda m: None)
    train_expert("hopper", stopped, SACConfig(total_steps=200, **TINY), log=lambda m: None)
    with open(stopped / "evals.jsonl", "a") as fh:  # killed after an eval that its checkpoint does not hold
        fh.write(json.dumps({"steps": 250, "eval_return": -1.0}) + "\n")
    train_expert("hopper", stopped, SACConfig(total_steps=300, **TINY), log=lambda m: None)  # the same command
    a = experts.runs.load_checkpoint(experts.runs.Checkpointer(straight / "checkpoints").latest())
    b = experts.runs.load_checkpoint(experts.runs.Checkpointer(stopped / "checkpoints").latest())
    assert a["step"] == b["step"] == 300
    for part in ("actor", "critic", "temperature"):
        for k, v in a["agent"][part].items():
            assert torch.equal(v, b["agent"][part][k]), f"{part}.{k} differs after resume"
    assert _evals(straight) == _evals(stopped) and len(_evals(straight)) == 3
    actor, meta = load_policy(stopped / "snapshots" / "actor_0000000300.safetensors")
    assert meta["steps"] == 300 and meta["task"] == "hopper"
    assert torch.equal(actor.state_dict()["net.0.weight"], a["agent"]["actor"]["net.0.weight"])


def test_trainer_keeps_the_first_medium_snapshot_and_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(experts, "MEDIUM_TOLERANCE", 1e9)  # any return is "medium": the first eval is kept
    out = tmp_path / "run"
    summary = train_expert("hopper", out, SACConfig(total_steps=1000, **TINY), log=lambda m: None)
    assert summary["steps"] == 100 and summary["medium"]["steps"] == 100
    medium = json.loads((out / "medium.json").read_text())
    assert medium["eval_return"] == pytest.approx(_evals(out)[0]["eval_return"])
    _, meta = load_policy(out / "medium.safetensors")
    assert meta["steps"] == 100
    again = train_expert("hopper", out, SACConfig(total_steps=1000, **TINY), log=lambda m: None)
    assert again["steps"] == 100  # already has its medium snapshot: nothing more to do


def test_trainer_refuses_foreign_folders_and_changed_settings(tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(RunError, match="not an expert training folder"):
        train_expert("hopper", tmp_path, SACConfig(total_steps=100, **TINY), log=lambda m: None)
    out = tmp_path / "run"
    train_expert("hopper", out, SACConfig(total_steps=100, **TINY), log=lambda m: None)
    with pytest.raises(RunError, match="other settings"):
        train_expert("hopper", out, SACConfig(total_steps=200, **{**TINY, "batch_size": 64}), log=lambda m: None)


# ---------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def policy_file(tmp_path):
    torch.manual_seed(3)
    actor = TanhNoiseActor(11, (1, 3), (32, 32), 1.0)
    return save_policy(actor, tmp_path / "hopper_medium.safetensors",
                       {"task": "hopper", "hidden": [32, 32], "eval_return": 123.0, "steps": 1})


def test_make_dataset_is_minari_deterministic_and_never_overwrites(tmp_path, monkeypatch, policy_file):
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "a"))
    s = make_dataset("hopper-medium", n_steps=300, seed=5, policy_path=str(policy_file))
    assert s.dataset_id == "lpds/hopper/medium-v0" and s.n_steps == 300
    ds = minari.load_dataset("lpds/hopper/medium-v0")
    assert ds.total_steps == 300 and ds.total_episodes == s.n_episodes
    eps = list(ds.iterate_episodes())
    assert eps[-1].terminations[-1] or eps[-1].truncations[-1]
    with pytest.raises(DataError, match="--overwrite"):
        make_dataset("hopper-medium", n_steps=300, seed=5, policy_path=str(policy_file))

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "b"))
    make_dataset("hopper-medium", n_steps=300, seed=5, policy_path=str(policy_file))
    mine, again = load_episodes("hopper-medium"), None
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "a"))
    again = load_episodes("lpds/hopper/medium-v0")
    assert len(mine) == len(again) == s.n_episodes
    for x, y in zip(mine, again):
        for k in ("observations", "actions", "rewards", "terminations", "truncations"):
            np.testing.assert_array_equal(x[k], y[k])
    assert sum(len(e["actions"]) for e in mine) == 300
    assert all(len(e["observations"]) == len(e["actions"]) + 1 for e in mine)
    assert float(np.mean([e["rewards"].sum() for e in mine])) == pytest.approx(s.return_mean, rel=1e-5)

    other = make_dataset("hopper-medium", n_steps=300, seed=6, policy_path=str(policy_file), overwrite=True)
    assert other.n_steps == 300
    assert not np.array_equal(load_episodes("hopper-medium")[0]["actions"], mine[0]["actions"])


def test_dataset_errors_are_one_line(tmp_path, monkeypatch, capsys, policy_file):
    from lpds_sim.cli import main

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(["datasets", "make", "hopper-expert"]) == 2
    assert "unknown dataset 'hopper-expert'" in capsys.readouterr().err
    assert main(["datasets", "make", "walker2d-medium", "--policy", str(policy_file)]) == 2
    assert "is a policy for 'hopper', not walker2d" in capsys.readouterr().err
    with pytest.raises(DataError, match="lpds datasets make hopper-medium"):
        load_episodes("hopper-medium")
    with pytest.raises(DataError, match="minari download"):
        load_episodes("mujoco/hopper/medium-v0")
    assert main(["datasets", "train-expert", "--task", "ant", "--out", str(tmp_path / "x")]) == 2
    assert "unknown gym task 'ant'" in capsys.readouterr().err
    assert main(["datasets", "train-expert", "--task", "hopper", "--out", str(tmp_path / "x"),
                 "--eval-every", "3000"]) == 2
    assert "must be a multiple of --eval-every" in capsys.readouterr().err
    assert main(["datasets", "make", "hopper-medium", "--n-steps", "0"]) == 2
    assert "--n-steps must be >= 1, got 0" in capsys.readouterr().err
    assert parse_name("walker2d-medium")[0] is get_task("walker2d")
    assert dataset_id(get_task("halfcheetah"), "medium") == "lpds/halfcheetah/medium-v0"


def test_loader_reads_a_community_dataset_id(tmp_path, monkeypatch):
    """A dataset under Minari's own id (as `minari download mujoco/hopper/medium-v0` leaves it) loads the same way."""
    import minari
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    rng = np.random.default_rng(0)
    ep = {"observations": rng.normal(size=(6, 11)).astype(np.float32),
          "actions": rng.uniform(-1, 1, (5, 3)).astype(np.float32), "rewards": np.ones(5, np.float32),
          "terminations": np.array([0, 0, 0, 0, 1], bool), "truncations": np.zeros(5, bool)}
    minari.create_dataset_from_buffers("mujoco/hopper/medium-v0", [EpisodeBuffer(**ep)], env="Hopper-v5")
    (got,) = load_episodes("mujoco/hopper/medium-v0")
    for k, v in ep.items():
        np.testing.assert_array_equal(got[k], v)
