"""RAI (PyPI `robotic`) Franka Panda tasks as Gymnasium environments.

`import lpds_sim` registers their ids (without importing `robotic`); `ENV_IDS` here is the RAI part of that list.
"""
from __future__ import annotations

from lpds_sim import ENV_IDS as _ALL_ENV_IDS

ENV_IDS = {name: _ALL_ENV_IDS[name] for name in ("pick_place", "mug_hang")}
