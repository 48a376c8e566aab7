"""Env contract, task registry and simulator backends (MuJoCo embedded; Isaac Lab optional)."""

from rlinf_isaac.envs.base import ACTION_DIM, STATE_DIM, BatchedEnv, ChunkStepResult, EnvSpec, EpisodeStats, Obs
from rlinf_isaac.envs.registry import get_task, list_tasks, make_env, register_task

__all__ = [
    "ACTION_DIM",
    "STATE_DIM",
    "BatchedEnv",
    "ChunkStepResult",
    "EnvSpec",
    "EpisodeStats",
    "Obs",
    "get_task",
    "list_tasks",
    "make_env",
    "register_task",
]
