"""Requests the controller sends to workers when a call takes more than a couple of arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["AdvantageRequest", "EvalRequest", "RolloutRequest"]


@dataclass
class RolloutRequest:
    """One rollout epoch of an env worker (``EnvWorker.rollout``).

    rollout_handles: one rollout worker handle per pipeline stage (a handle may repeat).
    num_chunk_steps: T chunk steps collected from every stage.
    reset_seed: root of this epoch's env resets (``seeding`` stream ``rollout``); each stage
        derives its own from it. None: episodes continue from the last rollout.
    group_size: G consecutive envs share one reset-state id (GRPO); 1 otherwise.
    pieces: contiguous env shards the trajectory is split into (one per actor rank it feeds).
    epoch: rollout epoch within the global step (offsets env ids so GRPO groups stay apart).
    record_video: collect video frames of stage 0.
    obs_ipc: per stage, whether its rollout worker shares this worker's GPU: observations held
        on the GPU then go to it as CUDA IPC handles (empty: through Ray).
    """

    rollout_handles: Sequence[Any]
    num_chunk_steps: int
    reset_seed: int | None
    group_size: int = 1
    pieces: int = 1
    epoch: int = 0
    record_video: bool = False
    obs_ipc: Sequence[bool] = ()


@dataclass
class EvalRequest:
    """An evaluation of an env worker (``EnvWorker.evaluate``): ``num_episodes`` episodes of the
    deterministic policy served by ``rollout_handle``; round r resets from
    ``derive_seed(seed, "eval_episodes", env rank, r)``; ``obs_ipc`` as in :class:`RolloutRequest`."""

    rollout_handle: Any
    num_episodes: int
    seed: int
    record_video: bool = False
    obs_ipc: bool = False


@dataclass
class AdvantageRequest:
    """An actor rank's share of a rollout (``ActorWorker.compute_advantages``).

    pieces: its trajectory shards (Ray object refs when sent through Ray).
    rollout_handles: every rollout worker, which hold the shards' stored inputs.
    ipc_ranks: the rollout ranks on this actor's GPU (their inputs come by CUDA IPC).
    """

    pieces: list[Any]
    rollout_handles: list[Any]
    ipc_ranks: tuple[int, ...] = ()
