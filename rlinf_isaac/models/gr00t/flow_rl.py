"""Flow-matching policies as RL policies: ODE sampling, Flow-SDE and Flow-Noise log-probs.

Everything here is pure torch against a *velocity function* ``v(x_t, t)``; the GR00T action
head supplies it (``lambda x, t: head.velocity(ctx, x, t)``), tests supply small MLPs.

Conventions (GR00T's): ``x_0`` is Gaussian noise, ``x_1`` the action chunk, the linear
interpolant is ``x_t = (1 - t) x_0 + t x_1``, the learned velocity approximates
``u(x, t) = E[x_1 - x_0 | x_t = x]``. ``K`` denoising steps on the grid ``t_k = k / K``
(``dt = 1 / K``) give the deterministic Euler chain ``x_{k+1} = x_k + dt v(x_k, t_k)``.
The chain ``x_0 .. x_K`` is stored as ``[B, K+1, C, A]``; ``x_K`` is the action chunk.

Flow-SDE (Chen et al. 2025, "piRL: online RL fine-tuning for flow-based VLA models",
arXiv:2510.25889; the same conversion as Flow-GRPO, Liu et al. 2025, arXiv:2505.05470)
-----------------------------------------------------------------------------------
The score of the linear interpolant follows from the velocity: since
``x_t = x_0 + t (x_1 - x_0)``, ``E[x_0 | x_t] = x_t - t u`` and, ``x_0`` being a standard
Gaussian, ``grad log p_t(x) = -E[x_0 | x_t] / (1 - t) = -(x - t u) / (1 - t)``.
The forward SDE ``dx = [u + g(t)^2 / 2 * grad log p_t(x)] dt + g(t) dW`` has the same
marginals ``p_t`` as the ODE ``dx = u dt`` (its Fokker-Planck equation reduces to the
continuity equation of ``u`` because ``p grad log p = grad p``). With the noise schedule
``g(t) = a sqrt((1 - t) / t)`` (piRL's ``sigma = a sqrt(tau / (1 - tau))`` written in
GR00T's time ``t = 1 - tau``; ``a`` is ``noise_level``; ``t`` is clamped below by ``dt`` at
the pure-noise end, where the schedule is singular) the Euler-Maruyama transition is

    x_{k+1} ~ N(mu_k, std_k^2 I),
    mu_k  = x_k + dt [v - g^2 / 2 * (x_k - t_k v) / (1 - t_k)],
    std_k = g(t_k) sqrt(dt).

As in piRL only one step per sample is stochastic: its index ``j ~ U{0 .. K-1}`` is drawn
per sample, every other step is the deterministic Euler step, and the policy log-prob is
``log N(x_{j+1}; mu_j, std_j^2)`` summed over action dims.

Flow-Noise (piRL's second variant, after ReinFlow, Zhang et al. 2025, arXiv:2505.22094)
-------------------------------------------------------------------------------------
A learned network gives the std of every step: ``x_{k+1} ~ N(x_k + dt v, std_k^2 I)``,
``std_k = min_std + (max_std - min_std) sigmoid(f(x_k, v, t_k))``. All K steps are
stochastic and the log-prob of the chain is the sum over steps of the Gaussian transition
log-probs (the chain is Markov, ``x_0`` is fixed noise).

Granularity: ``chunk`` gives one log-prob per sample ``[B]`` (sum over C and A), ``action``
one per action step ``[B, C]`` (sum over A). An optional ``mask`` bool broadcastable to
``[B, C, A]`` keeps only real action dims/steps (padding dims carry no env meaning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor, nn

__all__ = [
    "VelocityFn",
    "NoiseStdFn",
    "GRANULARITIES",
    "NOISE_METHODS",
    "FlowRollout",
    "NoiseStdNet",
    "time_grid",
    "ode_sample",
    "sde_noise_std",
    "sde_transition",
    "gaussian_logprob",
    "gaussian_entropy",
    "reduce_granularity",
    "draw_step_noise",
    "flow_sde_sample",
    "flow_noise_sample",
    "flow_sde_logprob",
    "flow_noise_logprob",
    "recompute_logprob",
]

VelocityFn = Callable[[Tensor, Tensor], Tensor]  # (x_t [B, C, A], t [B]) -> v [B, C, A]
NoiseStdFn = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x_t, v, t [B]) -> std [B, C, A]
GRANULARITIES = ("chunk", "action")
NOISE_METHODS = ("flow_sde", "flow_noise")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class FlowRollout:
    """What a stochastic rollout keeps so that the actor can recompute log-probs exactly.

    chain: float [B, K+1, C, A], the denoising chain x_0 .. x_K (x_0 noise, x_K actions).
    step_idx: int64 [B], the stochastic step j of each sample (Flow-SDE), None otherwise.
    logprob_elem: float32 [B, C, A], per-element log-prob of the stochastic transition(s)
        (Flow-SDE: step j; Flow-Noise: summed over the K steps).
    entropy_elem: float32 [B, C, A], per-element Gaussian entropy (Flow-SDE: step j;
        Flow-Noise: mean over the K steps).
    """

    chain: Tensor
    step_idx: Optional[Tensor]
    logprob_elem: Tensor
    entropy_elem: Tensor

    @property
    def actions(self) -> Tensor:
        """float [B, C, A], the last chain element x_K."""
        return self.chain[:, -1]


def time_grid(num_steps: int, device=None) -> Tensor:
    """float32 [K+1], t_k = k / K."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return torch.arange(num_steps + 1, device=device, dtype=torch.float32) / num_steps


def _t_batch(t: float | Tensor, x: Tensor) -> Tensor:
    """Broadcast a time (scalar or [B]) to float32 [B] on x's device."""
    t = torch.as_tensor(t, dtype=torch.float32, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t


def ode_sample(velocity_fn: VelocityFn, noise: Tensor, num_steps: int) -> Tensor:
    """Deterministic Euler ODE sampling (eval mode).

    noise: float [B, C, A], x_0. Returns the chain float [B, K+1, C, A]; chain[:, -1] = x_K.
    """
    grid = time_grid(num_steps, noise.device)
    dt = 1.0 / num_steps
    xs = [noise]
    for k in range(num_steps):
        x = xs[-1]
        v = velocity_fn(x, _t_batch(grid[k], x))
        xs.append(x + dt * v)  # x_{k+1} = x_k + dt v(x_k, t_k)
    return torch.stack(xs, dim=1)  # K+1 x [B, C, A] -> [B, K+1, C, A]


def sde_noise_std(t: Tensor, dt: float, noise_level: float) -> Tensor:
    """Diffusion coefficient g(t) = a sqrt((1 - t) / max(t, dt)); t float [B] -> [B]."""
    return noise_level * torch.sqrt((1.0 - t) / t.clamp(min=dt))


def sde_transition(x: Tensor, v: Tensor, t: Tensor, dt: float, noise_level: float):
    """Mean and std of the Flow-SDE Euler-Maruyama step from x_k at time t_k.

    x, v: float [B, C, A]; t: float [B]. Returns (mu float32 [B, C, A], std float32 [B, 1, 1]).
    """
    x, v = x.float(), v.float()
    t3 = t.float().view(-1, 1, 1)  # [B] -> [B, 1, 1]
    g = sde_noise_std(t.float(), dt, noise_level).view(-1, 1, 1)  # [B] -> [B, 1, 1]
    score = -(x - t3 * v) / (1.0 - t3)  # grad log p_t(x) = -(x - t u) / (1 - t)
    mu = x + dt * (v + 0.5 * g * g * score)  # mu = x + dt [u + g^2/2 * score]
    std = g * math.sqrt(dt)  # std = g(t) sqrt(dt)
    return mu, std


def gaussian_logprob(x: Tensor, mu: Tensor, std: Tensor) -> Tensor:
    """Per-element log N(x; mu, std^2); all broadcastable to [B, C, A] -> float32 [B, C, A]."""
    x, mu, std = x.float(), mu.float(), std.float()
    # log N = -(x - mu)^2 / (2 std^2) - log std - log(2 pi) / 2
    return -((x - mu) ** 2) / (2.0 * std * std) - torch.log(std) - _HALF_LOG_2PI


def gaussian_entropy(std: Tensor) -> Tensor:
    """Per-element Gaussian entropy 0.5 log(2 pi e std^2) = log std + 0.5 (1 + log 2 pi)."""
    return torch.log(std.float()) + 0.5 + _HALF_LOG_2PI


def reduce_granularity(elem: Tensor, granularity: str, mask: Optional[Tensor] = None) -> Tensor:
    """Sum per-element values over action dims (and chunk steps for ``chunk``).

    elem: float [B, C, A]; mask: bool broadcastable to [B, C, A] or None.
    Returns [B] for ``chunk``, [B, C] for ``action``.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"logprob granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if mask is not None:
        elem = elem * mask.to(elem.dtype)
    per_action = elem.sum(dim=-1)  # [B, C, A] -> [B, C]
    return per_action if granularity == "action" else per_action.sum(dim=-1)  # [B, C] -> [B]


def draw_step_noise(noise: Tensor, num_steps: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """The standard normals of the K stochastic transitions, float32 [K, B, C, A], in one draw.

    Drawn before sampling (not step by step) so that a sampler can run without touching a
    random generator, e.g. replayed from a CUDA graph."""
    return torch.randn((num_steps, *noise.shape), generator=generator, device=noise.device,
                       dtype=torch.float32)


def _check_eps(eps: Tensor, noise: Tensor, num_steps: int) -> Tensor:
    if tuple(eps.shape) != (num_steps, *noise.shape):
        raise ValueError(f"eps must be [K, B, C, A] = {[num_steps, *noise.shape]}, got {list(eps.shape)}")
    return eps


def flow_sde_sample(
    velocity_fn: VelocityFn,
    noise: Tensor,
    num_steps: int,
    noise_level: float,
    step_idx: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    eps: Optional[Tensor] = None,
) -> FlowRollout:
    """Flow-SDE rollout: one stochastic step j ~ U{0..K-1} per sample, the rest Euler.

    noise: float [B, C, A] (x_0); step_idx: int64 [B] to pin j (drawn when None); eps: float32
    [K, B, C, A] standard normals of the transitions (``draw_step_noise`` when None). With
    step_idx and eps given nothing is drawn here.
    """
    batch = noise.shape[0]
    if step_idx is None:
        step_idx = torch.randint(num_steps, (batch,), generator=generator, device=noise.device)
    step_idx = step_idx.to(noise.device, torch.int64)
    eps = draw_step_noise(noise, num_steps, generator) if eps is None else _check_eps(eps, noise, num_steps)
    grid, dt = time_grid(num_steps, noise.device), 1.0 / num_steps
    xs = [noise]
    logp = torch.zeros(noise.shape, dtype=torch.float32, device=noise.device)
    ent = torch.zeros_like(logp)
    for k in range(num_steps):
        x = xs[-1]
        t = _t_batch(grid[k], x)
        v = velocity_fn(x, t)
        mu, std = sde_transition(x, v, t, dt, noise_level)
        x_sde = (mu + std * eps[k]).to(x.dtype)
        pick = (step_idx == k).view(-1, 1, 1)  # [B] -> [B, 1, 1]
        x_next = torch.where(pick, x_sde, x + dt * v)
        logp = torch.where(pick, gaussian_logprob(x_next, mu, std), logp)
        ent = torch.where(pick, gaussian_entropy(std).expand_as(mu), ent)
        xs.append(x_next)
    chain = torch.stack(xs, dim=1)  # K+1 x [B, C, A] -> [B, K+1, C, A]
    return FlowRollout(chain, step_idx, logp, ent)


def flow_noise_sample(
    velocity_fn: VelocityFn,
    noise_std_fn: NoiseStdFn,
    noise: Tensor,
    num_steps: int,
    generator: Optional[torch.Generator] = None,
    eps: Optional[Tensor] = None,
) -> FlowRollout:
    """Flow-Noise rollout: every step x_{k+1} ~ N(x_k + dt v, std_k^2), std_k learned.

    noise: float [B, C, A] (x_0); eps: float32 [K, B, C, A] standard normals of the
    transitions (``draw_step_noise`` when None).
    """
    eps = draw_step_noise(noise, num_steps, generator) if eps is None else _check_eps(eps, noise, num_steps)
    grid, dt = time_grid(num_steps, noise.device), 1.0 / num_steps
    xs = [noise]
    logp = torch.zeros(noise.shape, dtype=torch.float32, device=noise.device)
    ent = torch.zeros_like(logp)
    for k in range(num_steps):
        x = xs[-1]
        t = _t_batch(grid[k], x)
        v = velocity_fn(x, t)
        mu = x.float() + dt * v.float()  # mu_k = x_k + dt v(x_k, t_k)
        std = noise_std_fn(x, v, t).float()
        x_next = (mu + std * eps[k]).to(x.dtype)
        logp = logp + gaussian_logprob(x_next, mu, std)  # log p(chain) = sum_k log N(x_{k+1})
        ent = ent + gaussian_entropy(std).expand_as(mu) / num_steps
        xs.append(x_next)
    chain = torch.stack(xs, dim=1)  # K+1 x [B, C, A] -> [B, K+1, C, A]
    return FlowRollout(chain, None, logp, ent)


def flow_sde_logprob(
    velocity_fn: VelocityFn, chain: Tensor, step_idx: Tensor, noise_level: float
) -> tuple[Tensor, Tensor]:
    """Recompute the Flow-SDE log-prob of a stored chain (one velocity call).

    chain: float [B, K+1, C, A]; step_idx: int64 [B].
    Returns (logprob_elem, entropy_elem), both float32 [B, C, A].
    """
    num_steps = chain.shape[1] - 1
    rows = torch.arange(chain.shape[0], device=chain.device)
    j = step_idx.to(chain.device, torch.int64)
    x_j, x_next = chain[rows, j], chain[rows, j + 1]  # [B, K+1, C, A] -> [B, C, A]
    t = time_grid(num_steps, chain.device)[j]  # [B]
    v = velocity_fn(x_j, t)
    mu, std = sde_transition(x_j, v, t, 1.0 / num_steps, noise_level)
    return gaussian_logprob(x_next, mu, std), gaussian_entropy(std).expand_as(mu)


def flow_noise_logprob(
    velocity_fn: VelocityFn, noise_std_fn: NoiseStdFn, chain: Tensor
) -> tuple[Tensor, Tensor]:
    """Recompute the Flow-Noise joint log-prob of a stored chain (K velocity calls).

    chain: float [B, K+1, C, A]. Returns (logprob_elem, entropy_elem) float32 [B, C, A].
    """
    num_steps = chain.shape[1] - 1
    grid, dt = time_grid(num_steps, chain.device), 1.0 / num_steps
    logp = torch.zeros(chain[:, 0].shape, dtype=torch.float32, device=chain.device)
    ent = torch.zeros_like(logp)
    for k in range(num_steps):
        x, x_next = chain[:, k], chain[:, k + 1]
        t = _t_batch(grid[k], x)
        v = velocity_fn(x, t)
        mu = x.float() + dt * v.float()  # mu_k = x_k + dt v(x_k, t_k)
        std = noise_std_fn(x, v, t).float()
        logp = logp + gaussian_logprob(x_next, mu, std)
        ent = ent + gaussian_entropy(std).expand_as(mu) / num_steps
    return logp, ent


def recompute_logprob(
    velocity_fn: VelocityFn,
    chain: Tensor,
    noise_method: str,
    granularity: str,
    step_idx: Optional[Tensor] = None,
    noise_level: float = 0.5,
    noise_std_fn: Optional[NoiseStdFn] = None,
    mask: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """Log-prob and entropy of a stored chain, reduced to ``granularity``.

    chain: float [B, K+1, C, A]; step_idx: int64 [B] (flow_sde); mask: bool -> [B, C, A].
    Returns (logprob, entropy): float32 [B] (``chunk``) or [B, C] (``action``).
    """
    if noise_method == "flow_sde":
        if step_idx is None:
            raise ValueError("noise_method='flow_sde' needs step_idx int64 [B], got None")
        logp, ent = flow_sde_logprob(velocity_fn, chain, step_idx, noise_level)
    elif noise_method == "flow_noise":
        if noise_std_fn is None:
            raise ValueError("noise_method='flow_noise' needs noise_std_fn, got None")
        logp, ent = flow_noise_logprob(velocity_fn, noise_std_fn, chain)
    else:
        raise ValueError(f"noise_method must be one of {NOISE_METHODS}, got {noise_method!r}")
    return reduce_granularity(logp, granularity, mask), reduce_granularity(ent, granularity, mask)


class NoiseStdNet(nn.Module):
    """Flow-Noise std network: per action step, MLP(x_t, v, sin/cos(t)) -> std in [min, max].

    Input features per (b, c): x_t[b, c] (A), v[b, c] (A) and a sinusoidal embedding of t[b];
    ``std = min_std + (max_std - min_std) * sigmoid(mlp(features))``.
    """

    def __init__(
        self, action_dim: int, hidden: int = 64, min_std: float = 0.05, max_std: float = 0.3,
        time_dim: int = 16,
    ):
        super().__init__()
        if not 0.0 < min_std < max_std:
            raise ValueError(f"noise std range must satisfy 0 < min_std < max_std, got [{min_std}, {max_std}]")
        if time_dim % 2:
            raise ValueError(f"time_dim must be even, got {time_dim}")
        self.min_std, self.max_std, self.time_dim = float(min_std), float(max_std), time_dim
        self.mlp = nn.Sequential(
            nn.Linear(2 * action_dim + time_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, action_dim),
        )

    def time_embedding(self, t: Tensor) -> Tensor:
        """t float [B] -> [B, time_dim] (sin, cos at geometric frequencies)."""
        half = self.time_dim // 2
        freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
        angles = 1000.0 * t.float()[:, None] * freqs[None, :]  # [B, half]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def forward(self, x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
        """x_t, v: float [B, C, A]; t: float [B]. Returns std float32 [B, C, A]."""
        temb = self.time_embedding(t)[:, None].expand(-1, x_t.shape[1], -1)  # [B, C, time_dim]
        w = self.mlp[0].weight
        feats = torch.cat([x_t.to(w.dtype), v.to(w.dtype), temb.to(w.dtype)], dim=-1)  # [B, C, 2A+Td]
        span = self.max_std - self.min_std
        return (self.min_std + span * torch.sigmoid(self.mlp(feats))).float()
