"""RL algorithms: registered algorithm objects (ppo, grpo) built on pure, name-registered advantage and loss functions."""

from rlinf_isaac.algorithms.advantages import AdvantageOutput, gae, grpo, mask_until_done
from rlinf_isaac.algorithms.base import Advantages, Algorithm, TrainBatch, build_algorithm, build_train_batch
from rlinf_isaac.algorithms.grpo import GRPO
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
from rlinf_isaac.algorithms.ppo import PPO
from rlinf_isaac.algorithms.registry import (
    UnknownAlgorithmError,
    advantage_algorithm,
    get_advantage,
    get_algorithm_class,
    get_policy_loss,
    get_value_loss,
    import_modules,
    list_advantages,
    list_algorithms,
    list_policy_losses,
    list_value_losses,
    register_advantage,
    register_algorithm,
    register_policy_loss,
    register_value_loss,
)

__all__ = [
    "AdvantageOutput", "Advantages", "Algorithm", "GRPO", "PPO", "TrainBatch", "UnknownAlgorithmError",
    "advantage_algorithm", "build_algorithm", "build_train_batch", "clipped_value_loss", "entropy_bonus",
    "explained_variance", "gae", "get_advantage", "get_algorithm_class", "get_policy_loss", "get_value_loss",
    "global_mean_std", "grpo", "import_modules", "list_advantages", "list_algorithms", "list_policy_losses",
    "list_value_losses", "mask_until_done", "masked_mean", "normalize_advantages", "ppo_policy_loss",
    "register_advantage", "register_algorithm", "register_policy_loss", "register_value_loss",
    "sequence_mean_weights", "successful_episode_steps",
]
