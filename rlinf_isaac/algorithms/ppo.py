"""PPO with a value head (actor-critic): GAE-family advantages, clipped surrogate, value loss.

Schulman et al. 2017 (arXiv:1707.06347); advantages by GAE (arXiv:1506.02438) or any estimator
registered with ``algorithm="ppo"``, which receives (per chunk step or per env step, see
``algorithm.reward_type``)::

    fn(rewards [T, B(, C)], values [T+1, B(, C)], terminated, truncated, final_values [T, B], *,
       gamma, gae_lambda) -> AdvantageOutput(advantages, returns)

The loss adds ``value_loss_coef`` x the registered value loss (``algorithm.value_loss_type``)
to the policy terms; during ``critic_warmup_steps`` only the value loss is applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from rlinf_isaac.algorithms.base import Advantages, Algorithm, TrainBatch
from rlinf_isaac.algorithms.registry import get_value_loss, register_algorithm
from rlinf_isaac.config.structured import check

if TYPE_CHECKING:
    from rlinf_isaac.config.schema import AlgorithmConfig, Config
    from rlinf_isaac.data.trajectory import Trajectory

__all__ = ["PPO"]


@register_algorithm("ppo")
class PPO(Algorithm):
    """Actor-critic PPO."""

    uses_critic = True
    estimator_signature = ("fn(rewards, values, terminated, truncated, final_values, *, gamma, gae_lambda) "
                           "-> AdvantageOutput(advantages, returns)")

    def __init__(self, cfg: "AlgorithmConfig"):
        super().__init__(cfg)
        self.value_loss = get_value_loss(cfg.value_loss_type)

    def check(self, cfg: "Config", *, env_ranks: int, actor_ranks: int) -> None:
        a = cfg.algorithm
        if a.critic_warmup_steps:
            check(cfg.actor.model.add_value_head and a.value_loss_coef > 0, "algorithm.critic_warmup_steps",
                  a.critic_warmup_steps,
                  "0 unless a critic trains (actor.model.add_value_head=true, algorithm.value_loss_coef > 0)")

    def reads_final_values(self, cfg: "Config") -> bool:
        # V(final obs) of truncated episodes: read only when truncation bootstraps and a value head exists
        return self.cfg.bootstrap_on_truncation and cfg.actor.model.add_value_head

    def describe(self) -> str:
        return super().describe() + f", value loss {self.cfg.value_loss_type}"

    def advantages(self, traj: "Trajectory") -> Advantages:
        a = self.cfg
        valid = traj.valid.float()  # [T, B, C]
        if a.reward_type == "action_level":
            r, term, trunc, mask = traj.rewards * valid, traj.terminated, traj.truncated, valid  # [T, B, C]
        else:
            r = (traj.rewards * valid).sum(-1)  # [T, B, C] -> [T, B]: the chunk's reward
            term, trunc, mask = traj.terminated.any(-1), traj.truncated.any(-1), valid.amax(-1)
        if not a.bootstrap_on_truncation:  # the time limit is part of the task: no bootstrap
            term, trunc = term | trunc, torch.zeros_like(trunc)
        values = traj.values if (a.reward_type == "action_level" or traj.values.ndim == 2) else traj.values[..., 0]
        out = self.estimator(r, values, term, trunc, traj.final_values, gamma=a.gamma, gae_lambda=a.gae_lambda)
        return Advantages(out.advantages, out.returns, mask)

    def loss(self, policy: Any, batch: TrainBatch, idx: torch.Tensor, step: int,
             gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        a = self.cfg
        policy_loss, metrics, out, mask = self.policy_terms(policy, batch, idx, gen)
        # critic warm-up: only the value head learns (the policy terms are logged, not applied:
        # no backward through the action head, and its weights get no gradient, so no decay)
        loss = policy_loss if step >= a.critic_warmup_steps else torch.zeros((), device=mask.device)
        if batch.returns is not None and out.get("values") is not None and a.value_loss_coef > 0:
            v = out["values"].float()
            ret, old_v = batch.returns[idx].to(v.device), batch.old_values[idx].to(v.device)
            if v.ndim == 2 and ret.ndim == 1:
                v = v[:, 0]
            vmask = mask if mask.shape == v.shape else mask.amax(-1) if mask.ndim > v.ndim else mask
            vloss, vmetrics = self.value_loss(v, old_v, ret, vmask, value_clip=a.value_clip, huber_delta=a.huber_delta)
            loss = loss + a.value_loss_coef * vloss  # L = L_pi + c_v * L_V
            metrics.update(vmetrics)
        return loss, {k: float(v) for k, v in metrics.items()}
