"""Env, rollout and actor workers (run as Ray actors by the runner) and the trajectories they exchange."""

from rlinf_isaac.workers.actor_worker import ActorWorker, TrainBatch, build_train_batch
from rlinf_isaac.workers.env_worker import EnvWorker, EpisodeLog, RolloutResult
from rlinf_isaac.workers.handles import LocalHandle, resolve
from rlinf_isaac.workers.rollout_worker import RolloutWorker
from rlinf_isaac.workers.trajectory import StepRecord, Trajectory, concat_envs, split_envs, stack_stages, stack_steps

__all__ = [
    "ActorWorker", "EnvWorker", "EpisodeLog", "LocalHandle", "RolloutResult", "RolloutWorker",
    "StepRecord", "TrainBatch", "Trajectory", "build_train_batch", "concat_envs", "resolve",
    "split_envs", "stack_stages", "stack_steps",
]
