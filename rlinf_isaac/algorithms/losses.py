"""PPO losses (clipped surrogate, clipped value loss), entropy bonus, explained variance.

Pure functions of tensors; the losses are registered by name in
:mod:`rlinf_isaac.algorithms.registry` and return ``(loss, metrics)`` where ``loss`` is a
0-dim tensor to minimise and ``metrics`` maps namespaced names (``actor/...``;
formulas in docs/metrics.md) to detached 0-dim tensors.

Shapes: per-step tensors are [T, B] (one log-prob per chunk) or [T, B, C] (one per
action); a mask of either shape broadcasts against them, and advantages [T, B] broadcast
to [T, B, C].
"""

from __future__ import annotations

import torch

from rlinf_isaac.algorithms.registry import register_policy_loss, register_value_loss

__all__ = [
    "align_right",
    "masked_mean",
    "masked_sum",
    "sequence_mean_weights",
    "successful_episode_steps",
    "ppo_policy_loss",
    "clipped_value_loss",
    "entropy_bonus",
    "explained_variance",
]

Metrics = dict[str, torch.Tensor]


def align_right(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Right-pad x with singleton dims so it broadcasts to ``like`` ([T, B] -> [T, B, 1])."""
    while x.ndim < like.ndim:
        x = x.unsqueeze(-1)  # [T, B] -> [T, B, 1]
    return x


def masked_sum(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """sum(x * mask); x float [T, B(, C)], mask 0/1 [T, B] or x's shape (None: all ones)."""
    if mask is None:
        return x.sum()
    return (x * align_right(mask, x).to(x.dtype)).sum()


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """sum(x * mask) / sum(mask) over the broadcast shape; 0 when the mask is empty.

    x: float [T, B] or [T, B, C]; mask: 0/1 [T, B] or x's shape, or None (plain mean); also
    non-negative weights (a weighted mean, e.g. :func:`sequence_mean_weights`).
    """
    if mask is None:
        return x.mean()
    m = align_right(mask, x).to(x.dtype).expand_as(x)
    return (x * m).sum() / m.sum().clamp(min=1.0)  # mean_m(x) = sum(x * m) / max(sum(m), 1)


def sequence_mean_weights(mask: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Per-entry loss weights that give every episode the same total weight
    (``algorithm.loss_agg_func: seq-mean-token-mean``, GRPO's original aggregation).

    mask: 0/1 [T, B] or [T, B, C], the valid entries; ends: bool [T, B], True where an episode
    ends at step t (column b's next step starts a new one). An entry of episode e weighs
    ``mask / L_e * sum(mask) / E`` (L_e: e's valid entries, E: episodes with any), so a masked
    mean with these weights is the mean over episodes of each episode's mean, and the weights
    sum to ``sum(mask)`` like the mask's own (a token-mean of the same batch: every entry 1).
    """
    t, b = ends.shape
    if mask.shape[:2] != (t, b):
        raise ValueError(f"sequence_mean_weights: mask {tuple(mask.shape)} does not match ends {tuple(ends.shape)}")
    m = mask.to(torch.float32)
    done = ends.to(torch.long)
    episode = torch.cumsum(done, 0) - done  # [T, B]: 0 for the column's first episode, +1 after each end
    key = (episode * b + torch.arange(b, device=ends.device)).reshape(-1)  # one id per (episode, column)
    per_step = m.reshape(t, b, -1).sum(-1).reshape(-1)  # [T*B] valid entries per step
    length = torch.zeros((t + 1) * b, dtype=torch.float32, device=m.device).scatter_add_(0, key, per_step)
    episodes = (length > 0).sum().clamp(min=1)
    per_entry = align_right(length[key].reshape(t, b), m).clamp(min=1.0)  # [T, B(, 1)]: L_e
    return m / per_entry * (m.sum() / episodes)


def successful_episode_steps(success: torch.Tensor, dones: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1.0 on the valid env steps of episodes that succeed within the rollout, else 0.0
    (``algorithm.self_imitation_coef``: the actions to imitate).

    success, dones, valid: bool [T, B, C] (env steps of T chunks in time order; ``dones`` marks
    an episode's last step). An episode succeeds when any of its steps has ``success``; the
    steps after a column's last done belong to an episode the rollout cut, successful only if
    it has already succeeded. Returns float32 [T, B, C].
    """
    if not success.shape == dones.shape == valid.shape or success.ndim != 3:
        raise ValueError(f"successful_episode_steps: success {tuple(success.shape)}, dones {tuple(dones.shape)} "
                         f"and valid {tuple(valid.shape)} must all be [T, B, C]")
    t, b, c = success.shape
    flat = lambda x: x.permute(0, 2, 1).reshape(t * c, b)  # noqa: E731  [T, B, C] -> [T*C, B], time order
    done = flat(dones).to(torch.long)
    episode = torch.cumsum(done, 0) - done  # [T*C, B]: index of the column's episode at each step
    key = (episode * b + torch.arange(b, device=success.device)).reshape(-1)
    won = torch.zeros(t * c * b + b, dtype=torch.float32, device=success.device)
    won = won.scatter_reduce(0, key, flat(success).float().reshape(-1), reduce="amax")
    steps = won[key].reshape(t * c, b) * flat(valid).float()
    return steps.reshape(t, c, b).permute(0, 2, 1).contiguous()


@register_policy_loss("ppo")
def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.2,
    clip_ratio_c: float | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """PPO clipped surrogate (Schulman et al. 2017, arXiv:1707.06347), asymmetric clip
    (DAPO, arXiv:2503.14476) and optional dual clip (Ye et al. 2020, arXiv:1912.09729).

    logprobs: float [T, B] or [T, B, C], log pi_theta(a|s) of the taken actions (with grad).
    old_logprobs: float, same shape, log-probs at rollout time.
    advantages: float [T, B] or the logprobs' shape.
    mask: 0/1 [T, B] or the logprobs' shape, or weights (:func:`sequence_mean_weights`); None
        counts every entry.
    clip_ratio_low/high: ratio clipped to [1 - low, 1 + high].
    clip_ratio_c: dual-clip bound (> 1): for negative advantages the per-entry loss is at
        most -A * c. None disables it.
    Returns (loss 0-dim, metrics: actor/policy_loss, actor/approx_kl, actor/pg_clipfrac,
    actor/ratio_mean, and actor/dual_clipfrac when dual clip is on).
    """
    if clip_ratio_low < 0 or clip_ratio_high < 0:
        raise ValueError(
            f"ppo_policy_loss: clip_ratio_low and clip_ratio_high must be >= 0, got "
            f"{clip_ratio_low} and {clip_ratio_high}"
        )
    if clip_ratio_c is not None and clip_ratio_c <= 1.0:
        raise ValueError(
            f"ppo_policy_loss: clip_ratio_c must be > 1 (typically 3) or None, got {clip_ratio_c}"
        )
    adv = align_right(advantages, logprobs).detach()
    log_ratio = logprobs - old_logprobs.detach()
    ratio = torch.exp(log_ratio)  # r = pi_theta / pi_old
    loss_unclipped = -adv * ratio  # -A * r
    loss_clipped = -adv * torch.clamp(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)  # -A * clip(r, 1-eps_low, 1+eps_high)
    loss = torch.maximum(loss_unclipped, loss_clipped)  # -min(A r, A clip(r))
    clipped = (loss_clipped > loss_unclipped).float()
    dual = None
    if clip_ratio_c is not None:
        bound = -adv * clip_ratio_c  # dual clip: loss <= -A * c where A < 0
        dual = ((adv < 0) & (loss > bound)).float()
        loss = torch.where(adv < 0, torch.minimum(loss, bound), loss)
    policy_loss = masked_mean(loss, mask)
    with torch.no_grad():
        metrics = {
            "actor/policy_loss": policy_loss.detach(),
            "actor/approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask),  # k3 = (r - 1) - log r
            "actor/pg_clipfrac": masked_mean(clipped, mask),
            "actor/ratio_mean": masked_mean(ratio, mask),
        }
        if dual is not None:
            metrics["actor/dual_clipfrac"] = masked_mean(dual, mask)
    return policy_loss, metrics


def _elementwise_value_loss(err: torch.Tensor, huber_delta: float | None) -> torch.Tensor:
    if huber_delta is None:
        return 0.5 * err**2  # l(e) = e^2 / 2
    zero = torch.zeros_like(err)
    return torch.nn.functional.huber_loss(err, zero, reduction="none", delta=huber_delta)  # l(e) = e^2/2 if |e| <= d else d (|e| - d/2)


@register_value_loss("clipped")
def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    value_clip: float | None = 0.2,
    huber_delta: float | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """PPO value loss with the prediction clipped around the rollout value.

    values: float [T, B] (or [T, B, C]), V_theta(s_t) (with grad).
    old_values: float, same shape, values at rollout time.
    returns: float, same shape, GAE value targets.
    mask: 0/1 [T, B] or the values' shape; None counts every entry.
    value_clip: eps_v, V_clip = V_old + clip(V - V_old, -eps_v, eps_v); None disables.
    huber_delta: Huber loss with this delta instead of the squared error; None = 0.5 e^2.
    Returns (loss 0-dim, metrics: actor/value_loss, actor/value_clip_ratio and
    actor/explained_variance of the rollout values ``old_values``). The value head lives
    in the actor, so its metrics sit in the ``actor/`` namespace (docs/metrics.md).
    """
    if value_clip is not None and value_clip <= 0:
        raise ValueError(f"clipped_value_loss: value_clip must be > 0 or None, got {value_clip}")
    if huber_delta is not None and huber_delta <= 0:
        raise ValueError(f"clipped_value_loss: huber_delta must be > 0 or None, got {huber_delta}")
    returns, old_values = returns.detach(), old_values.detach()
    loss_unclipped = _elementwise_value_loss(values - returns, huber_delta)
    if value_clip is None:
        loss, clip_active = loss_unclipped, torch.zeros_like(loss_unclipped)
    else:
        v_clip = old_values + torch.clamp(values - old_values, -value_clip, value_clip)  # V_clip = V_old + clip(V - V_old, -eps, eps)
        loss_clipped = _elementwise_value_loss(v_clip - returns, huber_delta)
        loss = torch.maximum(loss_unclipped, loss_clipped)  # max(l(V - R), l(V_clip - R))
        clip_active = (loss_clipped > loss_unclipped).float()
    value_loss = masked_mean(loss, mask)
    with torch.no_grad():
        metrics = {
            "actor/value_loss": value_loss.detach(),
            "actor/value_clip_ratio": masked_mean(clip_active, mask),
            "actor/explained_variance": explained_variance(old_values, returns, mask),
        }
    return value_loss, metrics


def entropy_bonus(
    entropy: torch.Tensor, mask: torch.Tensor | None = None, coef: float = 0.0
) -> tuple[torch.Tensor, Metrics]:
    """Entropy regulariser to *add* to the loss: -coef * mean_m(H).

    entropy: float [T, B] or [T, B, C], per-entry policy entropy (with grad).
    mask: 0/1 [T, B] or the entropy's shape. Returns (term 0-dim, {actor/entropy}).
    """
    h = masked_mean(entropy, mask)
    return -coef * h, {"actor/entropy": h.detach()}  # L_ent = -c_H * mean(H)


def explained_variance(
    values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """1 - Var[R - V] / Var[R] over the masked entries (population variances).

    values, returns: float [T, B] or [T, B, C]; mask: 0/1, broadcastable.
    Returns a 0-dim tensor: 1 for a perfect critic, 0 for a constant predictor at the
    mean, negative when worse; NaN when Var[R] = 0 (undefined).
    """
    v, r = values.detach().double(), returns.detach().double()
    var_r = masked_mean((r - masked_mean(r, mask)) ** 2, mask)
    err = r - v
    var_err = masked_mean((err - masked_mean(err, mask)) ** 2, mask)
    if float(var_r) == 0.0:
        return torch.tensor(float("nan"), dtype=values.dtype)
    return (1.0 - var_err / var_r).to(values.dtype)  # EV = 1 - Var[R - V] / Var[R]
