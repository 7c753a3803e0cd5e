"""D3IL "Avoiding" re-implemented in the plane: the env (`lpds_bench/Avoiding-v0`, registered on import), its
mode code and diversity metric (`geometry`), a scripted operator's demonstrations covering all 24 paths and the
cached flow/diffusion bases trained on them (`demos`, `base`), evaluation with the mode entropy (`evaluate`) and
the trajectory figure (`plots`). docs/avoiding.md lists every deviation from the original."""
from __future__ import annotations

import gymnasium as gym

from .env import ENV_ID, AvoidingEnv
from .geometry import mode_entropy, path_mode

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="lpds_sim.benchmarks.avoiding.env:AvoidingEnv")

__all__ = ["ENV_ID", "AvoidingEnv", "mode_entropy", "path_mode"]
