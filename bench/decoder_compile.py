"""Is torch.compile worth it for the frozen decoder inside an update? (issue 11, item 7)

Times one forward + backward through the bf16 K-step flow decoder of the shipped Hopper base (the actor's
path of an LP-DS update), eager against torch.compile (inductor), side by side in one process on 1 thread, and
prints the ratio. The answer decides whether the update's remaining decoder cost is dispatch (compile helps) or
arithmetic (it does not).

    python bench/decoder_compile.py [--batch 256] [--repeats 7]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from lpds_core.checkpoint import load_backbone

WEIGHTS = Path(__file__).resolve().parents[1] / "src/lpds_sim/lpds_sim/benchmarks/weights/hopper_flow_base.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256, help="minibatch of one update (default: 256)")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds of 10 calls each (default: 7)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lp = load_backbone(str(WEIGHTS)).freeze().low_precision()
    feats = torch.randn(args.batch, lp.feature_dim)
    h, a = lp.noise_shape

    def fwd_bwd(decode) -> None:
        w = torch.randn(args.batch, h, a, requires_grad=True)
        decode(feats, w).sum().backward()

    eager, compiled = lp._decode, torch.compile(lp._decode)
    t0 = time.perf_counter()
    fwd_bwd(compiled)
    print(f"compile: {time.perf_counter() - t0:.1f} s")
    w = torch.randn(args.batch, h, a)
    with torch.no_grad():
        print(f"max |action difference|: {(compiled(feats, w) - eager(feats, w)).abs().max().item():.3g}")
    ms: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.repeats):
        for name, dec in (("eager", eager), ("compiled", compiled)):
            t = time.perf_counter()
            for _ in range(10):
                fwd_bwd(dec)
            ms[name].append((time.perf_counter() - t) / 10 * 1e3)
    for name, v in ms.items():
        print(f"{name}: {statistics.median(v):.1f} ms per forward+backward (median of {args.repeats})")
    print(f"eager / compiled: {statistics.median(e / c for e, c in zip(ms['eager'], ms['compiled'])):.2f}×")


if __name__ == "__main__":
    main()
