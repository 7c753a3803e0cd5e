"""`lpds bench` without Ray: the runs themselves (in-process), aggregation from run folders, the δ ablation's plan,
and the one-line errors. The sweep on a real two-node cluster is test_bench_ray.py."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lpds_sim.benchmarks import one_run
from lpds_sim.benchmarks.aggregate import aggregate
from lpds_sim.benchmarks.suites import get_suite
from lpds_sim.benchmarks.sweep import bench_defaults, plan
from lpds_sim.cli import main

TINY = dict(env_steps=160, warmup_steps=60, eval_every=80, ckpt_every=80, utd=1, batch_size=32, eval_trials=8)


@pytest.fixture(scope="module")
def toy_cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    cfg = bench_defaults("toy")
    cfg.tasks, cfg.seeds, cfg.trials = ["four_goal"], [0, 1], 24
    cfg.entropy_states, cfg.entropy_samples, cfg.bc_steps = 2, 48, 150
    cfg.cache_dir, cfg.out = str(root / "cache"), str(root / "out")
    cfg.agent.hidden = cfg.agent.critic_hidden = (32, 32)
    for k, v in TINY.items():
        setattr(cfg.train, k, v)
    cfg.check()
    base = get_suite("toy").prepare("four_goal", cfg)
    return cfg, {("four_goal", "flow"): base}


def _jobs(cfg, bases, algos, **changes):
    cfg.algos = algos
    for k, v in changes.items():
        setattr(cfg, k, v)
    return plan(cfg, bases)


def test_base_and_temperature_runs_share_noise_and_c0_collapses(toy_cfg):
    cfg, bases = toy_cfg
    jobs = _jobs(cfg, bases, ["base", "temperature"], seeds=[0], temperatures=[0.0, 1.0])
    base, temp = (one_run.execute(j) for j in jobs)
    c0, c1 = temp["temperature"]
    assert c1["c"] == 1.0 and c1["return"] == base["return"]  # same seeds, same noise: c = 1 *is* the base
    assert c1["action_entropy"] == base["action_entropy"]
    assert c0["action_entropy"] < c1["action_entropy"] - 10  # c = 0 decodes one action per state
    assert base["env_steps"] == 0 and base["auc"] == base["return"]
    rows = [json.loads(x) for x in (Path(jobs[0]["root"]) / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, cfg.train.env_steps]  # a flat curve over the whole budget


def test_runs_aggregate_from_their_folders_and_refuse_other_settings(toy_cfg):
    cfg, bases = toy_cfg
    jobs = _jobs(cfg, bases, ["base", "lpds"], seeds=[0, 1], temperatures=[0.0, 1.0])
    for j in jobs:
        one_run.execute(j)
    lpds = json.loads((Path(jobs[-1]["root"]) / "metrics.json").read_text())
    assert lpds["env_steps"] == cfg.train.env_steps and lpds["resumed_from"] is None and lpds["updates"] > 0
    s = aggregate(cfg, jobs + [dict(jobs[0], name="four_goal/x/seed9", root=str(Path(cfg.out) / "none"))],
                  get_suite("toy"))
    assert s["unfinished"] == ["four_goal/x/seed9"]
    row = {r["method"]: r for r in s["table"]}["lpds"]
    vals = [json.loads((Path(j["root"]) / "metrics.json").read_text())["return"] for j in jobs[2:]]
    assert row["seeds"] == 2 and row["return"]["mean"] == pytest.approx(np.mean(vals))
    assert row["return"]["lo"] < row["return"]["mean"] < row["return"]["hi"]
    from lpds_sim.benchmarks.aggregate import collect, curve_band

    seeds = collect(jobs, "return")["groups"][("four_goal", "lpds")]
    band = curve_band(seeds)  # the curves figure's data: mean over seeds at every eval step
    assert band["n"] == 2 and band["steps"].tolist() == [0, 80, 160]
    assert band["mean"] == pytest.approx(np.mean([r["values"] for r in seeds], axis=0))
    md = (Path(cfg.out) / "table.md").read_text()
    assert "| four_goal | lpds | 2 |" in md and "Student-t" in md
    # a rerun with another budget into the same folders is refused (never mixed into one curve)
    other = _jobs(cfg, bases, ["lpds"], seeds=[0])
    other[0]["config"]["train"]["env_steps"] = 240
    with pytest.raises(one_run.runs.RunError, match="cannot resume .* env_steps=160 \\(run\\) vs 240"):
        one_run.execute(other[0])


def test_aggregate_only_tables_the_finished_runs_and_starts_none(toy_cfg, tmp_path):
    from lpds_sim.benchmarks.sweep import run_sweep

    cfg, bases = toy_cfg
    cfg = dataclasses.replace(cfg, out=str(tmp_path / "agg"), aggregate_only=True)
    jobs = _jobs(cfg, bases, ["base"], seeds=[0, 1])
    one_run.execute(jobs[0])
    s = run_sweep(cfg, progress=False)
    assert s["unfinished"] == ["four_goal/base/seed1"]
    assert not (Path(jobs[1]["root"]) / "done.json").exists()
    assert {r["method"]: r["seeds"] for r in s["table"]} == {"base": 1}
    empty = dataclasses.replace(cfg, out=str(tmp_path / "nothing"))
    with pytest.raises(one_run.runs.RunError, match="--aggregate-only: none of these 2 runs has finished"):
        run_sweep(empty, progress=False)
    assert not (tmp_path / "nothing" / "table.md").exists()


def test_temperature_rows_take_the_auc_of_the_suites_metric():
    from lpds_sim.benchmarks.aggregate import table_rows

    temp = [{"c": 0.5, "return": 95.0, "success": 0.1, "action_entropy": -70.0}]
    group = [{"algo": "temperature", "metrics": {"temperature": temp, "wall_s": 2.0}}] * 2
    row, = table_rows({("relocate", "temperature"): group}, metric="success")
    assert row["method"] == "temperature c=0.5" and row["seeds"] == 2
    assert row["auc"]["mean"] == pytest.approx(0.1)  # a success suite's AUC is a rate, never the return
    row, = table_rows({("hopper", "temperature"): group})
    assert row["auc"]["mean"] == pytest.approx(95.0)


def test_a_run_killed_after_its_first_checkpoint_resumes_from_it(toy_cfg, monkeypatch):
    cfg, bases = toy_cfg
    job = _jobs(cfg, bases, ["dsrl-sac"], seeds=[1])[0]

    class Killed(Exception):
        pass

    def die(self, state):
        self.inner.checkpoint(state)
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(one_run._BenchSink, "checkpoint", die)
        with pytest.raises(Killed):
            one_run.execute(job)
    root = Path(job["root"])
    assert not (root / "done.json").exists() and (root / "checkpoints" / "ckpt_0000000080.pt").is_file()
    m = one_run.execute(job)
    assert m["resumed_from"] == 80 and m["env_steps"] == 160
    steps = [json.loads(x)["step"] for x in (root / "scalars.jsonl").read_text().splitlines()
             if json.loads(x)["group"] == "eval"]
    assert steps == [0, 80, 160]  # the eval due at the checkpoint's step ran on resume; nothing twice
    assert len((root / "workers.jsonl").read_text().splitlines()) == 2


def test_dppo_runs_on_the_diffusion_base_in_the_same_machinery(toy_cfg):
    from lpds_core.agents import AGENTS

    if "dppo" not in AGENTS:
        pytest.skip("this lpds_core has no DPPO agent")
    cfg, bases = toy_cfg
    suite = get_suite("toy")
    assert suite.base_kind("dppo") == "diffusion" and suite.base_kind("lpds") == "flow"
    bases = {**bases, ("four_goal", "diffusion"): suite.prepare("four_goal", cfg, "diffusion")}
    saved = (cfg.agent.rollout_steps, cfg.agent.ppo_batch_size, cfg.agent.ppo_epochs)
    cfg.agent.rollout_steps, cfg.agent.ppo_batch_size, cfg.agent.ppo_epochs = 20, 100, 2
    try:
        (job,) = plan(dataclasses.replace(cfg, algos=["dppo"], seeds=[0]), bases, suite.base_kind)
    finally:
        cfg.agent.rollout_steps, cfg.agent.ppo_batch_size, cfg.agent.ppo_epochs = saved
    assert job["config"]["base_kind"] == "diffusion" and "diffusion" in Path(job["config"]["base"]).name
    m = one_run.execute(job)
    assert m["env_steps"] == 160 and m["updates"] == 2 and np.isfinite(m["return"])  # two rollouts of 20 chunks


def test_deltas_turn_lpds_into_one_run_per_delta(toy_cfg):
    cfg, bases = toy_cfg
    jobs = _jobs(cfg, bases, ["lpds", "dsrl-na"], seeds=[0], deltas=[0.01, 0.35])
    names = [j["name"] for j in jobs]
    assert names == ["four_goal/lpds_delta0.01/seed0", "four_goal/lpds_delta0.35/seed0", "four_goal/dsrl-na/seed0"]
    assert [j["config"]["agent"]["delta"] for j in jobs[:2]] == [0.01, 0.35]
    assert [j["config"]["label"] for j in jobs] == ["lpds δ=0.01", "lpds δ=0.35", "dsrl-na"]
    cfg.deltas = []


@pytest.mark.parametrize("argv, needle", [
    (["--algos", "base,sac"], "--algos: unknown sac; choose from base, temperature, lpds"),
    (["--tasks", "hopper"], "--tasks: hopper not in suite 'toy'; its tasks are four_goal"),
    (["--device", "cuda"], "--device cuda needs --gpus-per-run > 0"),
    (["--gpus-per-run", "1"], "--gpus-per-run > 0 reserves GPUs that --device cpu runs never use"),
    (["--algos", "dsrl-na", "--deltas", "0.1"], "--deltas needs one of lpds in --algos"),
    (["--seeds", "0,0"], "--seeds lists a seed twice"),
    (["--seeds", "a"], "--seeds=['a'] is not a list of int"),
    (["--address", "nohost"], "--address 'nohost' is not HOST:PORT"),
    (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray head answers there"),
])
def test_bad_bench_settings_are_one_line(tmp_path, capsys, argv, needle):
    rc = main(["bench", "toy", "--out", str(tmp_path / "b"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "b").exists()


def test_dppo_is_refused_in_one_line_where_lpds_core_has_no_dppo_agent(tmp_path, capsys, monkeypatch):
    from lpds_core.agents import AGENTS

    monkeypatch.delitem(AGENTS, "dppo", raising=False)  # an lpds_core without DPPO
    rc = main(["bench", "toy", "--algos", "lpds,dppo", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--algos dppo: this lpds_core has no such agent" in err and len(err.splitlines()) == 1


def test_gym_suite_says_what_it_waits_for(tmp_path, capsys, monkeypatch):
    from lpds_sim.benchmarks import gym_bases

    monkeypatch.setattr(gym_bases, "WEIGHTS_DIR", tmp_path / "no_weights")
    rc = main(["bench", "gym", "--tasks", "hopper", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "no shipped flow base for hopper" in err and "lpds datasets make hopper-medium" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "b" / "runs").exists()


def test_base_kinds_run_each_noise_steerer_on_each_base(toy_cfg):
    cfg, bases = toy_cfg
    suite = get_suite("toy")
    bases = {**bases, ("four_goal", "diffusion"): suite.prepare("four_goal", cfg, "diffusion")}
    jobs = _jobs(dataclasses.replace(cfg), bases, ["base", "lpds"], seeds=[0], base_kinds=["flow", "diffusion"])
    names = [j["name"] for j in jobs]
    assert names == ["four_goal/base_flowbase/seed0", "four_goal/base_diffusionbase/seed0",
                     "four_goal/lpds_flowbase/seed0", "four_goal/lpds_diffusionbase/seed0"]
    assert [j["config"]["label"] for j in jobs[2:]] == ["lpds [flow base]", "lpds [diffusion base]"]
    assert [Path(j["config"]["base"]).name for j in jobs[2:]] == [Path(bases[("four_goal", k)]).name
                                                                   for k in ("flow", "diffusion")]
    with pytest.raises(Exception, match="--base-kinds and --base-kind"):
        dataclasses.replace(cfg, base_kinds=["flow"], base_kind="diffusion").check()


def test_delta_ablation_figure_and_auc_ratio_come_from_the_folders(toy_cfg):
    from lpds_sim.benchmarks.aggregate import auc_ratios

    cfg, bases = toy_cfg
    cfg = dataclasses.replace(cfg, out=str(Path(cfg.out).parent / "out_delta"))
    jobs = _jobs(cfg, bases, ["base", "lpds"], seeds=[0], deltas=[0.01, 0.5], base_kinds=[])
    for j in jobs:
        one_run.execute(j)
    summary = aggregate(cfg, jobs, get_suite("toy"))
    assert "deltas.png" in summary["figures"] and (Path(cfg.out) / "deltas.png").stat().st_size > 10_000
    rows = [r for r in summary["table"] if r.get("delta_ablation")]
    assert sorted(r["delta"] for r in rows) == [0.01, 0.5]
    fake = [{"task": "t", "method": "lpds", "auc": {"mean": 3.0}}, {"task": "t", "method": "dsrl-na",
                                                                   "auc": {"mean": 2.0}}]
    assert auc_ratios(fake) == {"t": 1.5}
    assert auc_ratios(fake[:1]) == {"t": None}


def test_a_ray_node_that_misses_its_startup_window_is_retried_then_one_line(monkeypatch):
    import ray

    from lpds_core.errors import RunError
    from lpds_sim.benchmarks import sweep

    calls = []

    def slow_init(*a, **k):
        calls.append(k.get("address"))
        raise Exception("The current node timed out during startup. This could happen because ...")

    monkeypatch.setattr(ray, "init", slow_init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with pytest.raises(RunError, match="did not start within Ray's 30 s, twice"):
        sweep._init_ray(bench_defaults("toy"))
    assert calls == ["local", "local"]

    def other(*a, **k):
        raise ValueError("something else")

    monkeypatch.setattr(ray, "init", other)
    with pytest.raises(ValueError):
        sweep._init_ray(bench_defaults("toy"))
