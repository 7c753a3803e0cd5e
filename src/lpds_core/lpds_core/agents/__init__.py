"""Steering agents behind one interface: `make_agent(name, backbone, obs_space, config, action_space)`.

| name      | what it learns                                         | critic             |
|-----------|--------------------------------------------------------|--------------------|
| base      | nothing (the frozen base policy, w ~ N(0, I))          | —                  |
| lpds      | Δθ(s) in noise space, Lagrangian trust region          | Q(s, a) twin       |
| lpds-a    | Δθ(s) in action space, Lagrangian trust region         | Q(s, a) twin       |
| dsrl-na   | tanh SAC actor in noise space, distilled noise critic  | Q(s, a) + Q^W(s, w)|
| dsrl-sac  | tanh SAC actor in noise space                          | Q(s, w) twin       |
| dppo      | PPO on a copy of the diffusion base's last denoising steps | V(s), on-policy |
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym

from ..backbone import FrozenDecoder
from ..errors import ConfigError
from .base import Agent, AgentConfig, BaseAgent
from .dppo import DPPOAgent
from .dsrl import DSRLNAAgent, DSRLSACAgent
from .lpds import LPDSActionAgent, LPDSAgent

AGENTS: dict[str, type[Agent]] = {cls.name: cls for cls in
                                  (BaseAgent, LPDSAgent, LPDSActionAgent, DSRLNAAgent, DSRLSACAgent,
                                   DPPOAgent)}


def make_agent(name: str, backbone: FrozenDecoder, obs_space: gym.spaces.Space | None = None,
               config: AgentConfig | dict[str, Any] | None = None,
               action_space: gym.spaces.Space | None = None) -> Agent:
    """Build a steering agent around a frozen backbone. `action_space` (per step or per chunk) sets the
    critic's action normalisation and the clipping of decoded actions."""
    if name not in AGENTS:
        raise ConfigError(f"unknown steering algorithm {name!r}; choose one of {sorted(AGENTS)}")
    return AGENTS[name](backbone, obs_space, config, action_space)


__all__ = ["AGENTS", "Agent", "AgentConfig", "BaseAgent", "DPPOAgent", "DSRLNAAgent", "DSRLSACAgent", "LPDSActionAgent",
           "LPDSAgent", "make_agent"]
