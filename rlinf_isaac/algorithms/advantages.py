"""Advantage estimators: GAE (PPO with a value head) and GRPO (group-normalised scores).

Pure functions of tensors; registered by name in :mod:`rlinf_isaac.algorithms.registry`.
Dimension names: T chunk steps, B envs, C actions (env steps) per chunk, N = T * C.

Time layout shared by both estimators (it matches ``BatchedEnv.chunk_step``): step ``t``
is the chunk executed from observation ``s_t``; ``terminated[t]`` / ``truncated[t]`` flag
the transition *out of* step ``t`` (the ``done_{t+1}`` of the textbook formula). With
auto-reset, ``values[t+1]`` of a finished env is the value of the *new* episode's first
observation, so it is never used for bootstrapping step ``t``: a termination bootstraps
with 0, a truncation with ``final_values[t]`` (the value of ``info["final_obs"]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlinf_isaac.algorithms.registry import register_advantage

__all__ = [
    "AdvantageOutput",
    "gae",
    "grpo",
    "gae_deltas",
    "reverse_scan_loop",
    "reverse_scan",
    "flatten_env_steps",
    "mask_until_done",
]


@dataclass
class AdvantageOutput:
    """What every registered advantage estimator returns.

    advantages: float, same shape as the rewards / done flags ([T, B] or [T, B, C]).
    returns: float, same shape (value targets); None for critic-free estimators (GRPO).
    loss_mask: float 0/1, same shape, or None when every step counts (GAE leaves masking
        of invalid sub-steps to the caller's ``valid`` mask).
    group_mask: bool [B], envs whose group passed the GRPO filter; None for GAE.
    """

    advantages: torch.Tensor
    returns: torch.Tensor | None
    loss_mask: torch.Tensor | None = None
    group_mask: torch.Tensor | None = None


# ---------------------------------------------------------------------------------------
# GAE
# ---------------------------------------------------------------------------------------


def flatten_env_steps(x: torch.Tensor) -> torch.Tensor:
    """Put env steps in time order: [T, B, C] -> [T*C, B] (row t*C + c is sub-step c of chunk t)."""
    t, b, c = x.shape
    return x.permute(0, 2, 1).reshape(t * c, b)  # [T, B, C] -> [T, C, B] -> [T*C, B]


def _unflatten_env_steps(x: torch.Tensor, c: int) -> torch.Tensor:
    n, b = x.shape
    return x.reshape(n // c, c, b).permute(0, 2, 1)  # [T*C, B] -> [T, C, B] -> [T, B, C]


def gae_deltas(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    final_values: torch.Tensor | None,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TD errors and episode-continuation flags, time-major.

    rewards: float [N, B]; values: float [N+1, B] (row N is the bootstrap value);
    terminated, truncated: bool [N, B]; final_values: float [N, B] or None (read only
    where ``truncated`` and not ``terminated``).
    Returns (delta [N, B], not_done [N, B] float 0/1).
    """
    term, trunc = terminated.bool(), truncated.bool() & ~terminated.bool()
    if final_values is None:
        if bool(trunc.any()):
            raise ValueError(
                "gae: truncated is True at some step but final_values is None; pass the value "
                "of info['final_obs'] (float [T, B]) so truncated episodes can bootstrap"
            )
        final_values = torch.zeros_like(rewards)
    # V(s_{t+1}) of the *same* episode: the final observation where it was truncated.
    next_values = torch.where(trunc, final_values, values[1:])
    not_term = (~term).to(rewards.dtype)
    delta = rewards + gamma * next_values * not_term - values[:-1]  # delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_{t+1}) - V(s_t)
    not_done = (~(term | trunc)).to(rewards.dtype)
    return delta, not_done


def reverse_scan_loop(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Solve y_t = x_t + a_t * y_{t+1}, y_N = 0, by a reverse Python loop.

    x, a: float [N, B]. Returns y: float [N, B].
    """
    y = torch.zeros_like(x)
    nxt = torch.zeros_like(x[0])
    for t in reversed(range(x.shape[0])):
        nxt = x[t] + a[t] * nxt  # A_t = delta_t + gamma * lambda * (1 - done_{t+1}) * A_{t+1}
        y[t] = nxt
    return y


def reverse_scan(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Vectorised form of :func:`reverse_scan_loop` (Hillis-Steele scan, log2(N) rounds).

    Each step is the affine map y_t = a_t * y_{t+1} + x_t. Composing step t with the
    block that starts at t + s gives (a_t * a_{t+s}, x_t + a_t * x_{t+s}); after rounds
    with s = 1, 2, 4, ... every row holds the composition up to the end, i.e. y_t.
    x, a: float [N, B]. Returns y: float [N, B].
    """
    x, a = x.clone(), a.clone()
    n, s = x.shape[0], 1
    while s < n:
        x_new = x.clone()
        x_new[:-s] = x[:-s] + a[:-s] * x[s:]  # y_t = x_t + a_t * y_{t+s} (block of length s)
        a_new = a.clone()
        a_new[:-s] = a[:-s] * a[s:]  # product of a over the merged block
        x, a, s = x_new, a_new, 2 * s
    return x


def _gae_inputs_flat(rewards, values, terminated, truncated, final_values):
    """Bring env-step inputs ([T, B, C]) to time-major [N, B]; chunk inputs pass through."""
    if rewards.ndim == 2:
        return rewards, values, terminated, truncated, final_values
    t, b, c = rewards.shape
    if values.shape == (t + 1, b, c):
        # Row T holds the bootstrap value at sub-step 0; its other sub-steps are unused.
        flat_v = torch.cat([flatten_env_steps(values[:-1]), values[-1:, :, 0]])  # [T*C+1, B]
    else:  # one value per chunk, shared by its C sub-steps (a chunk-level critic)
        flat_v = torch.cat([values[:-1].repeat_interleave(c, dim=0), values[-1:]])  # [T*C+1, B]
    if final_values is not None:
        # A chunk ends at most one episode per env, so its final value serves every sub-step.
        final_values = final_values.repeat_interleave(c, dim=0)  # [T, B] -> [T*C, B]
    return (
        flatten_env_steps(rewards),
        flat_v,
        flatten_env_steps(terminated),
        flatten_env_steps(truncated),
        final_values,
    )


def _check_gae_shapes(rewards, values, terminated, truncated, final_values) -> None:
    if rewards.ndim not in (2, 3):
        raise ValueError(
            f"gae: rewards must be [T, B] (chunk steps) or [T, B, C] (env steps), got "
            f"{tuple(rewards.shape)}"
        )
    t, b = rewards.shape[:2]
    ok_values = [(t + 1, b)] + ([(t + 1, b, rewards.shape[2])] if rewards.ndim == 3 else [])
    if tuple(values.shape) not in ok_values:
        raise ValueError(
            f"gae: values must have shape {' or '.join(map(str, ok_values))} (one more step "
            f"than rewards {tuple(rewards.shape)}: the bootstrap value), got {tuple(values.shape)}"
        )
    for name, x in (("terminated", terminated), ("truncated", truncated)):
        if x.shape != rewards.shape:
            raise ValueError(
                f"gae: {name} must have the shape of rewards {tuple(rewards.shape)}, got "
                f"{tuple(x.shape)}"
            )
    if final_values is not None and tuple(final_values.shape) != (t, b):
        raise ValueError(
            f"gae: final_values must be [T, B] = {(t, b)}, got {tuple(final_values.shape)}"
        )


@register_advantage("gae", algorithm="ppo")
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    final_values: torch.Tensor | None = None,
    *,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
    vectorized: bool = True,
) -> AdvantageOutput:
    """Generalised Advantage Estimation (Schulman et al. 2016, arXiv:1506.02438).

    Over chunk steps: rewards float [T, B], values float [T+1, B], terminated/truncated
    bool [T, B]. Over env steps: rewards float [T, B, C] (flattened to N = T*C steps in
    time order), terminated/truncated bool [T, B, C], values float [T+1, B, C] (one per
    sub-step; row T uses sub-step 0 as the bootstrap) or [T+1, B] (chunk value shared
    by its sub-steps). final_values: float [T, B], value of the final observation of an
    episode truncated in chunk t (required if any step is truncated).
    A termination bootstraps with 0, a truncation with ``final_values``; both cut the
    advantage recursion. Returns :class:`AdvantageOutput` with advantages and returns
    (= advantages + V(s_t)) of the rewards' shape.
    """
    _check_gae_shapes(rewards, values, terminated, truncated, final_values)
    r, v, term, trunc, fv = _gae_inputs_flat(rewards, values, terminated, truncated, final_values)
    delta, not_done = gae_deltas(r, v, term, trunc, fv, gamma)
    scan = reverse_scan if vectorized else reverse_scan_loop
    adv = scan(delta, gamma * gae_lambda * not_done)  # A_t = delta_t + gamma*lambda*(1-done_{t+1})*A_{t+1}
    ret = adv + v[:-1]  # R_t = A_t + V(s_t)
    if rewards.ndim == 3:
        c = rewards.shape[2]
        adv, ret = _unflatten_env_steps(adv, c), _unflatten_env_steps(ret, c)  # -> [T, B, C]
    return AdvantageOutput(advantages=adv, returns=ret)


# ---------------------------------------------------------------------------------------
# GRPO
# ---------------------------------------------------------------------------------------


def mask_until_done(dones: torch.Tensor) -> torch.Tensor:
    """1 up to and including each env's first done, 0 afterwards.

    dones: bool [T, B] or [T, B, C] (env steps in time order). Returns float of that shape.
    """
    flat = flatten_env_steps(dones) if dones.ndim == 3 else dones  # [T, B, C] -> [T*C, B]
    d = flat.to(torch.int64)
    done_before = torch.cumsum(d, dim=0) - d  # number of dones strictly before step t
    mask = (done_before == 0).float()
    return _unflatten_env_steps(mask, dones.shape[2]) if dones.ndim == 3 else mask


def _group_stats(scores: torch.Tensor, group_ids: torch.Tensor):
    """Per-env group mean, unbiased std and group size: each float/int [B]."""
    _, inv = torch.unique(group_ids, return_inverse=True)
    g = int(inv.max()) + 1
    x = scores.to(torch.float64)
    count = torch.zeros(g, dtype=torch.float64).index_add_(0, inv, torch.ones_like(x))
    mean = torch.zeros(g, dtype=torch.float64).index_add_(0, inv, x) / count  # mu_g = sum_i s_i / G
    sq_dev = (x - mean[inv]) ** 2
    # sigma_g^2 = sum (s_i - mu_g)^2 / (G - 1)
    var = torch.zeros(g, dtype=torch.float64).index_add_(0, inv, sq_dev) / (count - 1).clamp(min=1)
    return mean[inv], var.sqrt()[inv], count[inv], inv


@register_advantage("grpo", algorithm="grpo")
def grpo(
    scores: torch.Tensor,
    group_ids: torch.Tensor,
    dones: torch.Tensor,
    *,
    normalize_std: bool = True,
    eps: float = 1e-6,
    success: torch.Tensor | None = None,
    success_range: tuple[float, float] | None = None,
) -> AdvantageOutput:
    """Group Relative Policy Optimisation advantages (Shao et al. 2024, arXiv:2402.03300).

    scores: float [B], one episode score per env (its return, or its success 0/1).
    group_ids: int [B], the reset-state id each env started from; envs sharing an id form
        one group (groups may have different sizes; a group of one gets advantage 0).
    dones: bool [T, B] or [T, B, C], episode-end flags in time order.
    normalize_std: divide by the group's unbiased std (Dr. GRPO style when False).
    success: float/bool [B], per-env success used by the filter (defaults to ``scores``).
    success_range: (low, high): keep only groups whose mean success lies in [low, high],
        e.g. (0.1, 0.9) drops groups that all fail or all succeed.
    Returns :class:`AdvantageOutput`: advantages float like ``dones`` (the env's advantage
    at every step of its first episode, 0 after it and in dropped groups), returns None,
    loss_mask float like ``dones`` (1 up to the first done, 0 after; 0 in dropped
    groups), group_mask bool [B].
    """
    b = scores.shape[0]
    if scores.ndim != 1 or group_ids.shape != (b,) or dones.shape[1] != b:
        raise ValueError(
            f"grpo: scores must be [B], group_ids [B] and dones [T, B(, C)]; got scores "
            f"{tuple(scores.shape)}, group_ids {tuple(group_ids.shape)}, dones {tuple(dones.shape)}"
        )
    mean, std, count, inv = _group_stats(scores, group_ids)
    centred = scores.to(torch.float64) - mean  # s_i - mu_g
    adv = centred / (std + eps) if normalize_std else centred  # A_i = (s_i - mu_g) / (sigma_g + eps)
    degenerate = (count < 2) | (std == 0)  # zero-variance groups carry no signal
    adv = torch.where(degenerate, torch.zeros_like(adv), adv)
    group_mask = torch.ones(b, dtype=torch.bool)
    if success_range is not None:
        low, high = success_range
        if not 0.0 <= low <= high:
            raise ValueError(
                f"grpo: success_range must be (low, high) with 0 <= low <= high, got {success_range}"
            )
        s = scores if success is None else success
        s_mean, *_ = _group_stats(s.to(torch.float64), group_ids)
        group_mask = (s_mean >= low) & (s_mean <= high)
    loss_mask = mask_until_done(dones) * _expand_env(group_mask, dones)
    advantages = _expand_env(adv, dones) * loss_mask  # the episode's A_i at each of its steps
    return AdvantageOutput(advantages, returns=None, loss_mask=loss_mask, group_mask=group_mask)


def _expand_env(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-env value x [B] to the shape of ``like`` ([T, B] or [T, B, C])."""
    view = (1, -1) + (1,) * (like.ndim - 2)  # [B] -> [1, B] or [1, B, 1]
    return x.float().reshape(view).expand(like.shape)
