"""The `lpds` command line.

Each subcommand lives in its own module and exposes `register(subparsers) -> None`, which adds its parser and sets
`func=run`. Modules import heavy dependencies (torch, robotic, rclpy) inside `run`, so `lpds --help` stays fast
and a missing optional dependency only breaks the subcommand that needs it. Packages that build on lpds_sim add
subcommands through the `lpds.commands` entry point (lpds_ros adds `ros-sim`), so lpds_sim never imports them.

Errors: a `lpds_core.errors.UserError` (bad input, settings or files) prints as one line and exits 2; anything
else is a bug and prints one line too, pointing at `--debug`, which shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

# subcommand modules, in the order `lpds --help` lists them
SUBCOMMAND_MODULES: list[str] = [
    "lpds_sim.cli.toy",
    "lpds_sim.cli.demos",
    "lpds_sim.cli.train_base",
    "lpds_sim.cli.train_steer",
    "lpds_sim.cli.export",
    "lpds_sim.cli.eval",
    "lpds_sim.cli.pipeline",
    "lpds_sim.cli.bench",
    "lpds_sim.cli.datasets",
    "lpds_sim.cli.calibrate",
    "lpds_sim.cli.identify",
]
ENTRY_POINT_GROUP = "lpds.commands"


def _plugin_modules() -> list[str]:
    return [ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpds", description="LP-DS: steer frozen generative robot policies with RL.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES + _plugin_modules():
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # `--n` must not silently mean `--n-demos`: flags are spelled out
        command.allow_abbrev = False
    return parser


def main(argv: list[str] | None = None) -> int:
    from lpds_core.errors import UserError

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
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if args.debug:
            raise
        print(f"error: lpds {args.command} needs the Python module '{exc.name}', which is not installed "
              f"(run `make setup`, or pip install the package that provides it)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, with the way to see more
        if args.debug:
            raise
        print(f"error: lpds {args.command} failed: {type(exc).__name__}: {exc} "
              f"(this is a bug in LP-DS; rerun with --debug for the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
