"""`python -m lpds_sim.benchmarks.avoiding`: make the demos and train the flow and diffusion bases into the cache
(found, not retrained, when they are there), evaluate each as sampled (w ~ N(0, I)) and draw the operator's demos
and the bases' evaluation trajectories over the obstacle field."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from .base import DEFAULT_BASE, KINDS, avoiding_base_policy, demos_file, load_demo_episodes
    from .evaluate import evaluate_avoiding
    from .plots import plot_trajectories

    p = argparse.ArgumentParser(prog="python -m lpds_sim.benchmarks.avoiding", description=__doc__)
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $LPDS_CACHE or ~/.cache/lpds)")
    p.add_argument("--kinds", default="flow,diffusion", help="bases to make, comma-separated")
    p.add_argument("--bc-steps", type=int, default=None, help=f"BC steps (default {DEFAULT_BASE['bc_steps']})")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes of each base")
    p.add_argument("--figure", default="avoiding_bases.png", help="trajectory figure to write (PNG)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # like BC (lpds_core.bc): small nets, and the cores are shared
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        p.error(f"--kinds: unknown {', '.join(bad)}; choose from {', '.join(KINDS)}")
    over = {} if args.bc_steps is None else {"bc_steps": args.bc_steps}
    demos = demos_file(DEFAULT_BASE["n_demos"], DEFAULT_BASE["demo_seed"], args.cache_dir)
    stats = json.loads(demos.with_suffix(".json").read_text())
    print(f"demos: {demos} (operator success {stats['success_rate']:.3f} over {stats['tries']} tries)")
    panels = {"operator demos": [{"path": e["obs"][:, 2:], "success": True, "mode": e["mode"]}
                                 for e in load_demo_episodes(demos)[:100]]}
    for kind in kinds:
        model, path = avoiding_base_policy(cache_dir=args.cache_dir, kind=kind, **over)
        h, a = model.noise_shape

        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            o = torch.as_tensor(obs, dtype=torch.float32)
            return np.clip(model.decode(o, torch.randn(len(o), h, a)).numpy(), -0.01, 0.01)

        torch.manual_seed(0)
        res = evaluate_avoiding(act, args.episodes, seed=10_000)
        print(f"{kind} base: {path}: success {res['success']:.3f}, mode entropy {res['mode_entropy']:.3f}, "
              f"{res['modes_found']} of 24 modes, collisions {res['collision']:.3f}")
        panels[f"{kind} base"] = res["episodes"]
    print(f"figure: {plot_trajectories(panels, Path(args.figure))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
