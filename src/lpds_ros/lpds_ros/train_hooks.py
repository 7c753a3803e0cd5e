"""Training hooks the trainer node can run: generators that train, export, and yield progress.

Contract (what trainer_node calls): `hook(task: str, out_dir: str, config: dict) -> Iterator[dict]`. Each yielded
dict is published as progress; a dict with "onnx_dir" announces a fresh export, and the node then points the
policy at it and calls the policy's ~/reload. The generator is closed when the node shuts down.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator


def pipeline_train_steer(task: str, out_dir: str, config: dict[str, Any]) -> Iterator[dict]:
    """LP-DS steering in RAI through lpds_sim's `train_steer` (branch `pipeline`), then `export_run` to ONNX.

    config: `SteerConfig` fields (base is required). train_steer offers no per-step callback and a finished run
    does not resume to a larger budget, so progress is reported at start and end and there is one export; a
    resumed (interrupted) run continues where it stopped.
    """
    from lpds_sim.export_run import export_run
    from lpds_sim.train_steer import SteerConfig, train_steer

    from lpds_sim.runs import config_from_dict

    cfg = config_from_dict(SteerConfig, {"task": task, **config}, "trainer config")
    run_dir = Path(out_dir) / "steer"
    yield {"stage": "training", "run": str(run_dir), "algo": cfg.algo, "delta": cfg.agent.delta,
           "env_steps": cfg.train.env_steps}
    summary = train_steer(cfg, run_dir, resume=(run_dir / "config.yaml").exists(), progress=False)
    onnx_dir = Path(out_dir) / "onnx"
    info = export_run(str(run_dir), str(onnx_dir))
    yield {"stage": "exported", "summary": summary, "onnx_dir": str(onnx_dir),
           "export_max_abs_diff": info.get("max_abs_diff")}
