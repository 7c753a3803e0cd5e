"""Training hooks the trainer node can run: generators that train, export, and yield progress.

Contract (what trainer_node calls): `hook(task: str, out_dir: str, config: dict) -> Iterator[dict]`. Each yielded
dict is published as progress; a dict with "onnx_dir" announces a fresh export, and the node then points the
policy at it and calls the policy's ~/reload. The generator is closed when the node shuts down.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator


def pipeline_train_steer(task: str, out_dir: str, config: dict[str, Any]) -> Iterator[dict]:
    """LP-DS steering in RAI through lpds_sim's resumable `train_steer`, exported to ONNX after every round.

    config: any `SteerConfig` field (base is required) plus `rounds` (default 5); env_steps is the total budget,
    trained in equal rounds (each round resumes the run) so the robot side gets a new model after each.
    """
    from lpds_sim.export_run import export_run
    from lpds_sim.train_steer import SteerConfig, train_steer

    cfg_kw = dict(config)
    rounds = int(cfg_kw.pop("rounds", 5))
    total = int(cfg_kw.get("env_steps", SteerConfig.env_steps))
    run_dir = Path(out_dir) / "steer"
    for k in range(1, rounds + 1):
        cfg = SteerConfig(**{**cfg_kw, "task": cfg_kw.get("task", task), "env_steps": max(1, total * k // rounds)})
        summary = train_steer(cfg, run_dir, resume=run_dir.exists(), progress=False)
        onnx_dir = Path(out_dir) / f"onnx_round{k}"
        info = export_run(str(run_dir), str(onnx_dir))
        yield {"round": k, "rounds": rounds, "env_steps": cfg.env_steps, "summary": summary,
               "onnx_dir": str(onnx_dir), "export_max_abs_diff": info.get("max_abs_diff")}
