"""What the workers exchange: trajectories, rollout inputs stored for the actors, packed weights, episode statistics."""

from rlinf_isaac.data.episodes import EpisodeLog, RolloutResult, episode_metrics
from rlinf_isaac.data.features import FeatureIndex, FeatureRef, FeatureStore, fetch_features
from rlinf_isaac.data.trajectory import StepRecord, Trajectory, concat_envs, split_envs, stack_stages, stack_steps
from rlinf_isaac.data.weights import PackedWeights, WeightPacker, unpack_into

__all__ = [
    "EpisodeLog", "FeatureIndex", "FeatureRef", "FeatureStore", "PackedWeights", "RolloutResult",
    "StepRecord", "Trajectory", "WeightPacker", "concat_envs", "episode_metrics", "fetch_features",
    "split_envs", "stack_stages", "stack_steps", "unpack_into",
]
