"""What every steering agent shares: the frozen backbone, observation checks, the config, checkpoints.

An agent never owns the backbone's weights: the backbone is kept outside the module tree
(not in `parameters()`, not in `state_dict()`), frozen, so no optimiser can ever touch it.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ..backbone import FrozenDecoder, Obs
from ..config import build, setting, validate
from ..errors import ConfigError
from ..perturbation import EPS_FORMS
from ..trust_region import NORMS

PRECISIONS = ("auto", "float32", "bfloat16")
FEATURES_KEY = "features"  # dict-observation key of already-encoded backbone features (see `Agent.features`)


@dataclass
class AgentConfig:
    """Hyper-parameters of all steering agents (each agent reads the ones it uses). The loop's settings (budget,
    warm-up, UTD, batch, replay size) are `lpds_core.training.LoopConfig`'s; every field has one home."""

    # networks
    hidden: tuple[int, ...] = setting((256, 256), "hidden sizes of the perturbation / SAC actor MLP", min=1)
    critic_hidden: tuple[int, ...] = setting((256, 256), "hidden sizes of the twin critics (LayerNorm MLPs)", min=1)
    lr_actor: float = setting(3e-4, "Adam step size of the actor (perturbation / noise policy)", above=0)
    lr_critic: float = setting(3e-4, "Adam step size of the critics", above=0)
    # RL
    gamma: float = setting(0.99, "discount per env step; a chunk of n steps bootstraps with gamma**n "
                           "(one convention for every agent: lpds_core.chunking)", above=0, max=1)
    tau: float = setting(0.005, "Polyak rate of the target critics", above=0, max=1)
    actor_every: int = setting(1, "actor (and dual) update every k critic updates", min=1)
    # LP-DS / LP-DS-A trust region
    delta: float = setting(0.05, "trust-region budget δ on E‖Δθ(s)‖² (lpds, lpds-a)", above=0)
    eta_lambda: float = setting(1.0, "dual-ascent step η_λ of the Lagrange multiplier λ", min=0)
    lambda_init: float = setting(0.0, "initial Lagrange multiplier λ", min=0)
    tr_norm: str = setting("sum", "trust-region norm: squared norm summed over noise dims (paper) or per dim",
                           choices=NORMS)
    use_eps: bool = setting(False, "perturbation Δθ(s, ε) instead of Δθ(s)")
    eps_form: str = setting("mlp", "form of Δθ(s, ε): free MLP of (s, ε), or shrink h(s) − g(s)⊙ε",
                            choices=EPS_FORMS)
    actor_q_normalize: bool = setting(True, "divide the actor's Q term by mean|Q| (so eta_lambda transfers)")
    # asymmetric actor-critic (LP-DS): the critic reads this key of a dict observation (standardised) instead of
    # the backbone features, e.g. the simulator's state beside the camera image. Only the perturbation ships to the
    # robot, and it still sees the backbone features, so the critic may use what the robot cannot observe.
    critic_obs: str | None = setting(None, "observation key the critic reads instead of the features (none: off)")
    # Polyak average of the perturbation's weights (LP-DS), rate per actor update; 0 = off. With it, evaluation
    # and export use the average (acting in eval mode) and data collection the online network: the last iterate
    # of an actor-critic wanders by several grid trials between nearby checkpoints, the average does less.
    actor_avg_rate: float = setting(0.0, "Polyak rate of the averaged Δθ used for eval/export (0 = off)", min=0,
                                    max=1)
    # DSRL baselines
    action_magnitude: float = setting(1.5, "noise bound of the DSRL tanh actor", above=0)
    target_entropy: float | None = setting(0.0, "DSRL SAC target entropy (none: −noise_dim)")
    alpha_init: float = setting(1.0, "initial SAC temperature α", above=0)
    lr_alpha: float = setting(3e-4, "Adam step size of α", above=0)
    noise_critic_steps: int = setting(10, "DSRL-NA noise-critic distillation steps per update, each on fresh "
                                          "w ~ N(0, I) (the DSRL reference uses 10)", min=1)
    # DPPO (Ren et al. 2024): PPO over the last denoising steps of a diffusion base; it also reads gamma,
    # lr_actor (the fine-tuned copy of the base's network), lr_critic and critic_hidden (its value net V(s))
    dppo_sampler: str = setting("ddpm", "dppo's denoising chain: ddpm (all T training steps of the base) or ddim "
                                "(the base's K DDIM steps, stochastic with ddim_eta)", choices=("ddpm", "ddim"))
    ddim_eta: float = setting(1.0, "DDIM eta of dppo's chain with dppo_sampler ddim (0 = deterministic DDIM)",
                              min=0)
    ft_denoising_steps: int = setting(10, "dppo fine-tunes the last k steps of the chain (the inner MDP)", min=1)
    gamma_denoising: float = setting(0.99, "dppo: advantage of denoising step j scaled by gamma_denoising**"
                                     "(k-1-j) (the last step, the action, gets 1)", above=0, max=1)
    clip_ploss_coef: float = setting(0.01, "dppo PPO ratio clip at the last denoising step", above=0)
    clip_ploss_coef_base: float = setting(0.001, "dppo PPO ratio clip at the first fine-tuned step (exponential "
                                          "schedule in between)", above=0)
    clip_ploss_coef_rate: float = setting(3.0, "dppo: rate of the exponential clip schedule over denoising "
                                          "steps", above=0)
    min_sampling_std: float = setting(0.1, "dppo exploration floor: min std of every denoising step when "
                                      "sampling", min=0)
    min_logprob_std: float = setting(0.1, "dppo: min std of a denoising step in its log-probability", above=0)
    randn_clip: float = setting(3.0, "dppo: each denoising step's N(0, I) draw is clipped to ±randn_clip",
                                above=0)
    gae_lambda: float = setting(0.95, "dppo GAE λ over chunk transitions", min=0, max=1)
    target_kl: float | None = setting(1.0, "dppo: stop the epochs of an update once approx. KL exceeds this "
                                      "(none: never)", above=0)
    reward_scale_running: bool = setting(True, "dppo: divide rewards by the running std of the discounted return")
    rollout_steps: int = setting(500, "dppo: chunks collected per env before each update (DPPO's n_steps)",
                                 min=1)
    ppo_epochs: int = setting(5, "dppo: passes over each rollout", min=1)
    ppo_batch_size: int = setting(5000, "dppo minibatch of (chunk, denoising step) pairs", min=1)
    # speed
    decoder_precision: str = setting("auto", "precision of the frozen decoder inside updates (targets, actor "
                                     "gradients, distillation): auto = bfloat16 where the CPU has bf16 matrix "
                                     "instructions or on CUDA, else float32; acting and export stay float32",
                                     choices=PRECISIONS)
    shared_decode: bool = setting(True, "lpds/lpds-a: the actor trains on the batch's next observations and "
                                  "reuses the TD target's decode of them (one decoder pass per update, not two)")
    # misc
    threads: int = setting(1, "torch CPU threads (the machine is shared)", min=1)

    def __post_init__(self) -> None:
        # built in code too (not only from YAML/flags): the schema's checks (types, bounds, choices) still apply
        validate(self, "agent config")

    def check(self) -> "AgentConfig":
        """Rules the per-field checks cannot state (validate() calls this after them)."""
        for name in ("hidden", "critic_hidden"):
            if not getattr(self, name):
                raise ConfigError(f"agent config: {name} must list at least one layer width (>= 1), got []")
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "AgentConfig":
        """Keys converted and checked by the schema (lpds_core.config); an unknown key is a ConfigError."""
        return build(cls, dict(d or {}), "agent config")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def action_normaliser(action_space: gym.spaces.Space | None, noise_shape: tuple[int, int]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(offset, scale) that map the chunk's raw action range to [−1, 1]; identity where unbounded/unknown."""
    h, a = noise_shape
    off, scale = torch.zeros(h, a), torch.ones(h, a)
    if action_space is None:
        return off, scale
    if not isinstance(action_space, gym.spaces.Box) or action_space.shape not in ((a,), (h, a)):
        raise ValueError(f"action_space must be a Box of shape ({a},) or ({h}, {a}) to match the backbone, "
                         f"got {action_space}")
    low = np.broadcast_to(action_space.low, (h, a)).astype(np.float64)
    high = np.broadcast_to(action_space.high, (h, a)).astype(np.float64)
    ok = np.isfinite(low) & np.isfinite(high) & (high > low)
    off = torch.as_tensor(np.where(ok, (high + low) / 2, 0.0), dtype=torch.float32)
    scale = torch.as_tensor(np.where(ok, (high - low) / 2, 1.0), dtype=torch.float32)
    return off, scale


def low_precision_decoder(precision: str, device: str = "cpu") -> bool:
    """Whether updates decode in bfloat16: asked for, or `auto` on CUDA or on a CPU with bf16 matrix instructions
    (AVX512-BF16 / AMX; elsewhere bf16 is emulated and slower than float32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"decoder_precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision == "bfloat16"
    return True if device == "cuda" else cpu_bf16_matmul()


def cpu_bf16_matmul() -> bool:
    """Whether this CPU has bf16 matrix instructions (AVX512-BF16 / AMX), as torch sees them."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if callable(probe) else False


class Agent(nn.Module):
    """Interface of every steering agent.

    act(obs) → action chunk (H, A) for one observation or (B, H, A) for a batch (raw units);
    act_with_noise(obs) → (chunk, noise): what the training loop stores;
    update(batch) → dict of float scalars for logging;
    state_dict()/load_state_dict(): networks, optimisers, λ/α and counters (never the backbone).
    """

    name: str = "agent"
    # on-policy agents (dppo): the loop collects `rollout_steps` chunks per env with act_on_policy and then calls
    # update_on_policy(rollout) instead of sampling the replay; warm-up and utd do not apply to them
    on_policy: bool = False

    def __init__(self, backbone: FrozenDecoder, obs_space: gym.spaces.Space | None,
                 config: AgentConfig | dict | None = None, action_space: gym.spaces.Space | None = None):
        super().__init__()
        if not isinstance(backbone, FrozenDecoder):
            raise TypeError(f"backbone must be a lpds_core.backbone.FrozenDecoder, got {type(backbone).__name__}")
        self.config = config if isinstance(config, AgentConfig) else AgentConfig.from_dict(config)
        torch.set_num_threads(self.config.threads)
        # kept outside the module tree on purpose: no optimiser, .train() or state_dict() reaches it
        self.__dict__["backbone"] = backbone.freeze()
        self.obs_space = obs_space
        self.noise_shape: tuple[int, int] = tuple(backbone.noise_shape)  # type: ignore[assignment]
        self.noise_dim = self.noise_shape[0] * self.noise_shape[1]
        self.feature_dim = int(backbone.feature_dim)
        off, scale = action_normaliser(action_space, self.noise_shape)
        self.register_buffer("action_offset", off)
        self.register_buffer("action_scale", scale)
        bounded = action_space is not None and isinstance(action_space, gym.spaces.Box) \
            and bool(np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high)))
        self.clip_actions = bounded
        self.updates = 0
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @functools.cached_property
    def update_backbone(self) -> FrozenDecoder:
        """The decoder the updates run: a bf16 copy of the network where asked for and the backbone offers one
        (flow matching does; diffusion's DDIM chain amplifies bf16 rounding and keeps float32). Built on first
        use, so agents that only act (base, evaluation, export) never copy the network."""
        lowp = self.backbone.low_precision() if low_precision_decoder(self.config.decoder_precision) else None
        return lowp if lowp is not None else self.backbone

    @property
    def update_bf16(self) -> bool:
        return self.update_backbone is not self.backbone

    # ---- observations -------------------------------------------------------------------------
    def obs_to_tensor(self, obs: Any) -> tuple[Obs, bool]:
        """Torch observation batch and whether the input was a single observation; clear errors for bad input."""
        if isinstance(obs, dict):
            expected = self._dict_obs_shapes()
            out: dict[str, torch.Tensor] = {}
            single = None
            for k, v in obs.items():
                t = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
                if t.is_floating_point() and not torch.isfinite(t).all():
                    raise ValueError(f"observation '{k}' contains NaN/inf; check the sensor/env before acting")
                exp = expected.get(k)
                if exp is not None:
                    if tuple(t.shape) == exp:
                        s = True
                    elif tuple(t.shape[1:]) == exp:
                        s = False
                    else:
                        raise ValueError(f"observation '{k}' has shape {tuple(t.shape)}, expected {exp} "
                                         f"or (B, *{exp})")
                    if single is not None and s != single:
                        raise ValueError("observation parts disagree on whether they are batched")
                    single = s
                out[k] = t
            if single:
                out = {k: v.unsqueeze(0) for k, v in out.items()}
            return {k: (v.float() if v.dtype != torch.uint8 else v) for k, v in out.items()}, bool(single)
        t = torch.as_tensor(obs if isinstance(obs, torch.Tensor) else np.asarray(obs, dtype=np.float32)).float()
        if not torch.isfinite(t).all():
            raise ValueError("observation contains NaN/inf; check the env/sensor before acting")
        obs_dim = int(self.backbone.obs_dim)
        if t.ndim == 1 and t.shape[0] == obs_dim:
            return t.unsqueeze(0), True
        if t.ndim == 2 and t.shape[1] == obs_dim:
            return t, False
        raise ValueError(f"observation has shape {tuple(t.shape)}, expected ({obs_dim},) or (B, {obs_dim}) "
                         f"for this backbone")

    def _dict_obs_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of dict observations: from the Dict obs space, else from the backbone's spec."""
        if isinstance(self.obs_space, gym.spaces.Dict):
            return {k: tuple(sp.shape or ()) for k, sp in self.obs_space.spaces.items()}
        spec = getattr(self.backbone, "obs_spec", None)
        if callable(spec):
            return {k: tuple(int(n) for n in v["shape"]) for k, v in spec().items()}
        return {}

    def features(self, obs: Obs) -> torch.Tensor:
        """Frozen backbone features (no gradient into the backbone). A dict observation that carries them already
        under `FEATURES_KEY` (a replay of encoded image observations) is not encoded again: the backbone is frozen,
        so its features of an observation never change."""
        if isinstance(obs, dict) and FEATURES_KEY in obs:
            feats = obs[FEATURES_KEY].float()
            if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
                raise ValueError(f"observation '{FEATURES_KEY}' must be encoded features (B, {self.feature_dim}) "
                                 f"of this backbone, got shape {tuple(feats.shape)}")
            return feats
        with torch.no_grad():
            return self.backbone.encode(obs)

    def encoded(self, obs: Any, keep: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """A batch of observations as {FEATURES_KEY: features, *keep}: what a replay of image observations
        stores (≈ 300 B instead of ≈ 100 kB per observation, and no CNN pass per update)."""
        t, _ = self.obs_to_tensor(obs)
        out = {FEATURES_KEY: self.features(t).numpy()}
        for k in keep:
            if not isinstance(t, dict) or k not in t:
                raise ValueError(f"observation has no key {k!r} to keep beside the encoded features")
            out[k] = t[k].numpy()
        return out

    # ---- actions ------------------------------------------------------------------------------
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(low, high) per chunk entry (H, A) that `clip` holds actions to, or None when actions are not clipped;
        `lpds_core.export.export_onnx(action_bounds=...)` makes the deployed policy clip the same way."""
        if not self.clip_actions:
            return None
        return ((self.action_offset - self.action_scale).numpy().copy(),
                (self.action_offset + self.action_scale).numpy().copy())

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        if not self.clip_actions:
            return actions
        low = self.action_offset - self.action_scale
        return torch.max(torch.min(actions, self.action_offset + self.action_scale), low)

    def decode(self, features: torch.Tensor, noise: torch.Tensor, for_update: bool = False) -> torch.Tensor:
        """Φ(s, w), clipped to the action bounds; differentiable in `noise`, never in the backbone's weights.
        `for_update`: inside a gradient update, where the decoder is most of the cost, its matrix products run in
        bfloat16 when `decoder_precision` allows and the backbone has a bf16 copy (the Euler state and the output
        stay float32; on Hopper states actions move by 0.2-1 % of their range on average, the actor's gradient
        keeps a cosine > 0.99 with float32's)."""
        decoder = self.update_backbone if for_update else self.backbone
        return self.clip(decoder.decode_features(features, noise))

    def _act_batch(self, obs: Obs, deterministic: bool, eps_scale: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def sample_eps(self, n: int, deterministic: bool, eps_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Base noise ε for n samples: 0 when deterministic, else N(0, I), times a per-sample `eps_scale` (n,)
        when given (exploration over the noise temperature while collecting data; never used in updates)."""
        if deterministic:
            return torch.zeros(n, *self.noise_shape)
        eps = torch.randn(n, *self.noise_shape)
        if eps_scale is None:
            return eps
        scale = torch.as_tensor(eps_scale, dtype=eps.dtype).reshape(-1)
        if scale.shape[0] != n or not torch.isfinite(scale).all():
            raise ValueError(f"eps_scale must hold {n} finite values (one per observation), got {tuple(scale.shape)}")
        return eps * scale.view(n, 1, 1)

    @torch.no_grad()
    def act_with_noise(self, obs: Any, deterministic: bool = False, eps_scale: Any = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """(chunk, decoder noise w); `eps_scale` (one value per observation) scales the sampled ε."""
        t, single = self.obs_to_tensor(obs)
        chunk, noise = self._act_batch(t, deterministic, eps_scale)
        chunk, noise = chunk.cpu().numpy(), noise.cpu().numpy()
        return (chunk[0], noise[0]) if single else (chunk, noise)

    def act(self, obs: Any, deterministic: bool = False) -> np.ndarray:
        return self.act_with_noise(obs, deterministic)[0]

    # ---- learning -----------------------------------------------------------------------------
    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    @property
    def rollout_steps(self) -> int:
        """Chunks per env between two on-policy updates (on-policy agents only)."""
        raise NotImplementedError(f"{self.name} is off-policy: it has no rollout length")

    def act_on_policy(self, obs: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A batch of chunks (B, H, A) and per-observation arrays the rollout keeps for update_on_policy."""
        raise NotImplementedError(f"{self.name} is off-policy: the loop calls act_with_noise")

    def update_on_policy(self, rollout: Any) -> dict[str, float]:
        """One update from a `lpds_core.rollout.Rollout` collected with act_on_policy (on-policy agents)."""
        raise NotImplementedError(f"{self.name} is off-policy: the loop calls update(replay batch)")

    def deployable_perturbation(self) -> tuple[nn.Module, str]:
        """(perturbation module, "noise" | "action") for ONNX export; only the LP-DS agents have one."""
        raise NotImplementedError(f"{self.name} has no additive perturbation to export; export lpds or lpds-a")

    def describe(self) -> str:
        prec = "bf16" if self.update_bf16 else "float32"
        return f"{self.name}: noise {self.noise_shape}, features {self.feature_dim}, updates decode in {prec}"

    def _batch_obs(self, batch: dict[str, Any]) -> tuple[Obs, Obs]:
        missing = {"obs", "action", "noise", "reward", "next_obs", "discount", "done"} - set(batch)
        if missing:
            raise ValueError(f"update batch is missing {sorted(missing)} (use ReplayBuffer.sample)")
        return self.obs_to_tensor(batch["obs"])[0], self.obs_to_tensor(batch["next_obs"])[0]

    def _batch_features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        obs, nobs = self._batch_obs(batch)
        return self.features(obs), self.features(nobs)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return {"name": self.name, "config": self.config.to_dict(), "updates": self.updates,
                "modules": super().state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> Any:  # type: ignore[override]
        if not isinstance(state, dict) or "modules" not in state:
            raise ValueError("not an agent checkpoint (expected keys name/config/modules/optimizers)")
        if state.get("name") != self.name:
            raise ValueError(f"checkpoint is for agent {state.get('name')!r}, this agent is {self.name!r}")
        res = super().load_state_dict(state["modules"], strict=strict)
        for k, o in self.optimizers.items():
            if k in state.get("optimizers", {}):
                o.load_state_dict(state["optimizers"][k])
        self.updates = int(state.get("updates", 0))
        return res


class BaseAgent(Agent):
    """The frozen base policy itself (w ~ N(0, I)); no learning. For evaluation and warm-up."""

    name = "base"

    def _act_batch(self, obs: Obs, deterministic: bool, eps_scale: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(obs)
        noise = self.sample_eps(feats.shape[0], deterministic, eps_scale)
        return self.decode(feats, noise), noise

    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        return {}
