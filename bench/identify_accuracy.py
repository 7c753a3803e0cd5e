"""How close `lpds identify` gets to the held-out truth: each demo's fit beside the world's own draw for it.

Usage (repo root, the venv's python):
    python bench/identify_accuracy.py --run RUN [--world reality]
        RUN: an `lpds pipeline --steer-world identified` folder (RUN/demos.hdf5, RUN/identified_world.json), or
    python bench/identify_accuracy.py --demos demos.hdf5 --fits identified.json [--world reality]

Only a simulated bench has a truth to compare with: every demo records its reset seed, and the world draws that
episode's latency, gain and gripper delay from (world_seed, seed) (lpds_sim.rai.world.draw_episode). The fit itself
never reads them. Prints a Markdown table and a summary line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="pipeline folder (demos.hdf5 and identified_world.json in it)")
    p.add_argument("--demos", help="demo file (instead of --run)")
    p.add_argument("--fits", help="OUT.json of `lpds identify` (instead of --run)")
    p.add_argument("--world", default="reality", help="the world the demos were recorded in (the truth)")
    args = p.parse_args(argv)
    from lpds_sim.demos_io import load_demos
    from lpds_sim.rai.world import draw_episode, resolve_world

    if args.run:
        demos_path, fits_path = Path(args.run) / "demos.hdf5", Path(args.run) / "identified_world.json"
    elif args.demos and args.fits:
        demos_path, fits_path = Path(args.demos), Path(args.fits)
    else:
        p.error("give --run, or --demos and --fits")
    for path in (demos_path, fits_path):
        if not path.is_file():
            p.error(f"{path} does not exist (run `lpds identify` / the pipeline's identify stage first)")
    world = resolve_world(args.world)
    if world is None:
        p.error(f"--world {args.world} is the emulation: it has no latency or gain to recover")
    seeds = {ep.name.rsplit("/", 1)[-1]: int(ep.attrs["seed"]) for ep in load_demos(demos_path)}
    fits = json.loads(fits_path.read_text())["fits"]
    print("| demo | latency: fit / truth | gain: fit / truth | close delay: fit / truth | end effector after fit "
          "(mm) | nominal emulation (mm) |")
    print("|---|---|---|---|---|---|")
    lat_ok, close_ok, close_n, gain_err = 0, 0, 0, []
    for f in fits:
        ep = draw_episode(world, seeds[f["demo"]])
        lat_ok += f["latency"] == ep.command_latency
        gain_err.append(abs(f["gain"] - ep.controller_gain_scale) / ep.controller_gain_scale)
        if f["close_delay"] is not None:
            close_n += 1
            close_ok += f["close_delay"] == ep.gripper_close_delay
        close = "–" if f["close_delay"] is None else f["close_delay"]
        print(f"| {f['demo']} | {f['latency']} / {ep.command_latency} | {f['gain']:.3f} / "
              f"{ep.controller_gain_scale:.3f} | {close} / {ep.gripper_close_delay} | {f['ee_error_mm']:.2f} | "
              f"{f['nominal_ee_error_mm']:.1f} |")
    n = len(fits)
    print(f"\n{n} demos: latency exact on {lat_ok}/{n}, close delay exact on {close_ok}/{close_n}, gain relative "
          f"error median {100 * np.median(gain_err):.1f} % (max {100 * max(gain_err):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
