"""The `lpds` command line.

Each subcommand lives in its own module under `lpds_sim.cli` and exposes
`register(subparsers) -> None`, which adds its parser and sets `func=run`.
Modules import heavy dependencies (torch, robotic, rclpy) inside `run`, so
`lpds --help` stays fast and a missing optional dependency only breaks the
subcommand that needs it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules, in the order `lpds --help` lists them
SUBCOMMAND_MODULES: list[str] = [
    "lpds_sim.cli.toy",
    "lpds_sim.cli.demos",
    "lpds_sim.cli.train_base",
    "lpds_sim.cli.train_steer",
    "lpds_sim.cli.export",
    "lpds_sim.cli.eval",
    "lpds_sim.cli.pipeline",
    "lpds_sim.cli.ros_sim",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpds", description="LP-DS: steer frozen generative robot policies with RL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
