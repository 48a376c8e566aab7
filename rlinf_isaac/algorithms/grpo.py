"""GRPO: critic-free, advantages relative to a group of envs that start from one reset state.

Shao et al. 2024 (arXiv:2402.03300). Every env runs one whole episode from its group's shared
reset state; each episode gets one score (its return) and the estimator (``grpo``, or any
registered with ``algorithm="grpo"``) receives::

    fn(scores [B], group_ids [B], dones [T, B(, C)], *, normalize_std, success [B],
       success_range) -> AdvantageOutput(advantages, returns=None, loss_mask)

The loss is the policy terms only (no value head is trained).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlinf_isaac.algorithms.base import Advantages, Algorithm
from rlinf_isaac.algorithms.registry import register_algorithm
from rlinf_isaac.config.structured import check

if TYPE_CHECKING:
    from rlinf_isaac.config.schema import AlgorithmConfig, Config
    from rlinf_isaac.data.trajectory import Trajectory

__all__ = ["GRPO"]


@register_algorithm("grpo")
class GRPO(Algorithm):
    """Group-relative policy optimisation."""

    estimator_signature = ("fn(scores, group_ids, dones, *, normalize_std, success, success_range) "
                           "-> AdvantageOutput(advantages, None, loss_mask)")

    @classmethod
    def check_static(cls, cfg: "AlgorithmConfig") -> None:
        check(cfg.group_size >= 2, "algorithm.group_size", cfg.group_size,
              f">= 2 for adv_type={cfg.adv_type} (advantages are relative to the group)")
        check(cfg.critic_warmup_steps == 0, "algorithm.critic_warmup_steps", cfg.critic_warmup_steps,
              f"0 with adv_type={cfg.adv_type} (there is no value head to warm up)")

    def check(self, cfg: "Config", *, env_ranks: int, actor_ranks: int) -> None:
        tr, g = cfg.env.train, self.cfg.group_size
        per_stage = tr.total_num_envs // env_ranks // cfg.rollout.pipeline_stage_num
        check(per_stage % g == 0, "algorithm.group_size", g,
              f"a divisor of the envs per pipeline stage ({per_stage}); a GRPO group must not straddle stages or workers")
        per_actor = tr.total_num_envs // actor_ranks
        check(per_actor % g == 0, "algorithm.group_size", g,
              f"a divisor of the envs per actor worker ({per_actor}); a GRPO group must not straddle actor shards")
        check(not tr.auto_reset, "env.train.auto_reset", tr.auto_reset,
              f"false for adv_type={self.cfg.adv_type} (every group runs one whole episode from its shared reset state)")

    def advantages(self, traj: "Trajectory") -> Advantages:
        a = self.cfg
        valid = traj.valid.float()  # [T, B, C]
        action_level = a.reward_type == "action_level"
        scores = (traj.rewards * valid).sum((0, 2))  # [B]: the episode return
        success = traj.success.any(-1).any(0).float()  # [B]
        dones = traj.terminated | traj.truncated
        dones = dones if action_level else dones.any(-1)
        group_ids = traj.env_ids // a.group_size  # G consecutive envs share one reset state
        out = self.estimator(scores, group_ids, dones, normalize_std=a.grpo_normalize_std,
                             success=success, success_range=a.grpo_success_filter)
        mask = out.loss_mask * (valid if action_level else valid.amax(-1))
        return Advantages(out.advantages, None, mask)
