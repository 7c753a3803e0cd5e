"""Latency of one policy control step (perturbation + full K-step decode), batch 1: onnxruntime vs torch eager.

Both run side by side in this process on the same weights, observation and noise; the speed-up ratio is the
number to trust on a shared machine, absolute times are noisy. Usage:
    python bench/onnx_latency.py [--iters 3000] [--steps 10] [--threads 1] [--backbone flow] [--write-results]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lpds_core.diffusion import DiffusionPolicy
from lpds_core.export import OnnxPolicy, export_onnx
from lpds_core.flow_matching import FlowMatchingPolicy

STATE_DIM, PROPRIO_DIM, HORIZON, ACT_DIM = 20, 8, 8, 4


class MLPPerturbation(nn.Module):
    """Stand-in for Δθ(s): the same size as the steering MLP (2×256)."""

    def __init__(self, feature_dim: int, horizon: int, act_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.shape = (horizon, act_dim)
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, horizon * act_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).reshape(-1, *self.shape)


def _timeit(fn, iters: int) -> np.ndarray:
    for _ in range(min(200, iters // 5)):
        fn()
    out = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out * 1e3  # ms


def bench_case(obs_type: str, backbone_cls, steps: int, iters: int, threads: int, tmp: Path,
               exporter: str = "torchscript") -> dict:
    torch.manual_seed(0)
    obs_dim = STATE_DIM if obs_type == "state" else PROPRIO_DIM
    model = backbone_cls(obs_dim, ACT_DIM, HORIZON, obs_type=obs_type, num_steps=steps)
    if obs_type == "state":
        obs = torch.randn(1, obs_dim)
    else:
        obs = {"rgb": torch.randint(0, 256, (1, 3, 84, 84), dtype=torch.uint8),
               "depth": torch.rand(1, 1, 84, 84) * 1.5, "proprio": torch.randn(1, obs_dim)}
    model.fit_normalizers({k: v.repeat(4, *[1] * (v.ndim - 1)) for k, v in obs.items()} if isinstance(obs, dict)
                          else torch.randn(64, obs_dim), torch.randn(64, HORIZON, ACT_DIM))
    model.freeze()
    pert = MLPPerturbation(model.feature_dim, HORIZON, ACT_DIM).eval()
    out_dir = tmp / f"{obs_type}_{model.kind}"
    export_onnx(model, pert, out_dir, {"task": "bench", "algo": "lpds", "delta": 0.05}, exporter=exporter)
    policy = OnnxPolicy(out_dir, threads=threads)
    eps_t = torch.randn(1, HORIZON, ACT_DIM)
    obs_np = obs.numpy() if obs_type == "state" else {k: v.numpy() for k, v in obs.items()}
    eps_np = eps_t.numpy()
    inputs = model.obs_inputs(obs)
    feed = dict(zip(policy.obs_spec, (x.numpy() for x in inputs)))

    @torch.inference_mode()
    def torch_step():
        # the unchecked path: the same computation as the exported graphs, no input validation
        f = model.encoder.features(*inputs)
        w = eps_t + pert(model.encoder.features(*inputs))
        return model._decode(f, w)

    def ort_step():  # the two sessions, exactly as OnnxPolicy.act runs them
        d = policy._perturbation.run(None, feed)[0]
        return policy._decoder.run(None, {**feed, "w": eps_np + d})[0]

    def ort_act():  # the public API, including its input checks
        return policy.act(obs_np, eps=eps_np)

    parity = float(np.abs(ort_act() - torch_step()[0].numpy()).max())
    times = {}
    for name, fn in (("torch", torch_step), ("ort", ort_step), ("ort_act", ort_act)):
        times[name] = _timeit(fn, iters)
    res = {"obs": obs_type, "backbone": model.kind, "K": steps, "parity": parity, "exporter": exporter}
    for name, t in times.items():
        res[f"{name}_p50"], res[f"{name}_p99"] = float(np.percentile(t, 50)), float(np.percentile(t, 99))
    res["speedup_p50"] = res["torch_p50"] / res["ort_p50"]
    res["speedup_act_p50"] = res["torch_p50"] / res["ort_act_p50"]
    return res


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=10, help="K decode steps")
    ap.add_argument("--threads", type=int, default=1, help="threads for both torch and onnxruntime")
    ap.add_argument("--backbone", choices=["flow", "diffusion", "both"], default="both")
    ap.add_argument("--obs", choices=["state", "image", "both"], default="both")
    ap.add_argument("--exporter", choices=["torchscript", "dynamo", "both"], default="torchscript")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    classes = {"flow": [FlowMatchingPolicy], "diffusion": [DiffusionPolicy],
               "both": [FlowMatchingPolicy, DiffusionPolicy]}[args.backbone]
    obs_types = ["state", "image"] if args.obs == "both" else [args.obs]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for obs_type in obs_types:
            for cls in classes:
                for exporter in (["torchscript", "dynamo"] if args.exporter == "both" else [args.exporter]):
                    rows.append(bench_case(obs_type, cls, args.steps, args.iters, args.threads, Path(tmp) / exporter,
                                           exporter))
    print(f"\none control step, batch 1, K={args.steps}, {args.threads} thread(s), {args.iters} calls each (ms)")
    print("| obs | backbone | exporter | torch p50 / p99 | ORT sessions p50 / p99 | OnnxPolicy.act p50 / p99 | speed-up p50 "
          "(sessions / act) | max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['obs']} | {r['backbone']} | {r['exporter']} | {r['torch_p50']:.3f} / {r['torch_p99']:.3f} | "
              f"{r['ort_p50']:.3f} / {r['ort_p99']:.3f} | {r['ort_act_p50']:.3f} / {r['ort_act_p99']:.3f} | "
              f"{r['speedup_p50']:.2f}× / {r['speedup_act_p50']:.2f}× | {r['parity']:.1e} |")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
