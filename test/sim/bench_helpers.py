"""A tiny `lpds bench` config for a suite's end-to-end test: one task, one seed, 32-wide networks, a few env steps."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_bench_config(suite: str, task: str, out: Path, algos: list[str], trials: int, entropy_samples: int,
                      **train: Any) -> Any:
    from lpds_sim.benchmarks.sweep import bench_defaults

    cfg = bench_defaults(suite)
    cfg.tasks, cfg.seeds, cfg.trials, cfg.algos = [task], [0], trials, algos
    cfg.entropy_states, cfg.entropy_samples, cfg.out = 1, entropy_samples, str(out)
    cfg.agent.hidden = cfg.agent.critic_hidden = (32, 32)
    for k, v in train.items():
        setattr(cfg.train, k, v)
    cfg.check()
    return cfg
