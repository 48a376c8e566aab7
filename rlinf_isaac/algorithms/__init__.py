"""RL algorithms as pure, name-registered functions: advantages (gae, grpo), PPO losses, normalisation."""

from rlinf_isaac.algorithms.advantages import AdvantageOutput, gae, grpo, mask_until_done
from rlinf_isaac.algorithms.losses import (
    clipped_value_loss,
    entropy_bonus,
    explained_variance,
    masked_mean,
    ppo_policy_loss,
    sequence_mean_weights,
    successful_episode_steps,
)
from rlinf_isaac.algorithms.normalization import global_mean_std, normalize_advantages
from rlinf_isaac.algorithms.registry import (
    UnknownAlgorithmError,
    get_advantage,
    get_policy_loss,
    get_value_loss,
    list_advantages,
    list_policy_losses,
    list_value_losses,
    register_advantage,
    register_policy_loss,
    register_value_loss,
)

__all__ = [
    "AdvantageOutput",
    "UnknownAlgorithmError",
    "clipped_value_loss",
    "entropy_bonus",
    "explained_variance",
    "gae",
    "get_advantage",
    "get_policy_loss",
    "get_value_loss",
    "global_mean_std",
    "grpo",
    "list_advantages",
    "list_policy_losses",
    "list_value_losses",
    "mask_until_done",
    "masked_mean",
    "normalize_advantages",
    "ppo_policy_loss",
    "register_advantage",
    "register_policy_loss",
    "sequence_mean_weights",
    "successful_episode_steps",
    "register_value_loss",
]
