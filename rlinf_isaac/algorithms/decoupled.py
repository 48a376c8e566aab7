"""Decoupled PPO, for updates on a rollout that a one-update-older policy collected
(``rollout.overlap_update``: the next rollout runs while the actor trains on this one).

Three policies meet (Hilton et al. 2022, arXiv:2110.00641): the behaviour policy that acted
(its log-probs were stored at rollout time), the proximal policy — the weights at the start of
this update — and the policy being trained. The ratio is clipped against the proximal policy,
and each decision's loss is weighted by how much likelier the proximal policy makes it than the
behaviour policy did::

    L = -E[ w * min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A) ]
    r = pi_theta / pi_prox,   w = min(pi_prox / pi_behav, cap)

As w > 0 it passes through the min, the clip and the dual clip, so this is the registered PPO
loss with the proximal log-probs as the old ones and the advantages scaled by w: every policy
loss and algorithm applies unchanged. On an on-policy batch (behaviour = proximal) w = 1 and
this is plain PPO.

Shapes: N samples; log-probs [N] (chunk-level) or [N, C] (action-level); advantages [N] or
[N, C].
"""

from __future__ import annotations

from dataclasses import replace

import torch

from rlinf_isaac.algorithms.base import TrainBatch
from rlinf_isaac.algorithms.losses import masked_mean

__all__ = ["behavior_weights", "to_proximal"]


def behavior_weights(prox_logprobs: torch.Tensor, behavior_logprobs: torch.Tensor,
                     cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, raw): raw = pi_prox / pi_behav = exp(prox - behav) and w = min(raw, cap), both like
    the log-probs ([N] or [N, C])."""
    raw = torch.exp(prox_logprobs.float() - behavior_logprobs.float())
    return raw.clamp(max=cap), raw


def to_proximal(batch: TrainBatch, prox_logprobs: torch.Tensor, cap: float) -> tuple[TrainBatch, dict[str, float]]:
    """The batch for the decoupled objective: old log-probs := ``prox_logprobs`` (like
    ``batch.old_logprobs``), advantages := advantages x w. Metrics: the mean weight, the share of
    decisions whose weight was capped and the k3 estimate of KL(behaviour || proximal)."""
    if prox_logprobs.shape != batch.old_logprobs.shape:
        raise ValueError(f"proximal log-probs {tuple(prox_logprobs.shape)} do not match the batch's "
                         f"{tuple(batch.old_logprobs.shape)}")
    w, raw = behavior_weights(prox_logprobs, batch.old_logprobs, cap)
    adv = batch.advantages
    if adv.ndim < w.ndim:  # chunk-level advantages, action-level log-probs
        adv = adv.unsqueeze(-1)
    weighted = adv * (w if w.ndim == adv.ndim else w.unsqueeze(-1))
    mask = batch.mask if batch.mask.shape == raw.shape else None
    log_raw = torch.log(raw)
    metrics = {"actor/behavior_weight_mean": float(masked_mean(w, mask)),
               "actor/behavior_weight_capped": float(masked_mean((raw > cap).float(), mask)),
               "actor/behavior_kl": float(masked_mean((raw - 1.0) - log_raw, mask))}
    return replace(batch, old_logprobs=prox_logprobs.to(batch.old_logprobs.dtype), advantages=weighted), metrics
