"""Typed proxies of the three worker groups: each method names the worker method it calls, so
an IDE follows every call from the controller to the worker that runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from rlinf_isaac.cluster.worker_group import WorkerBase, WorkerGroup
from rlinf_isaac.data.episodes import EpisodeLog
from rlinf_isaac.data.requests import AdvantageRequest, EvalRequest, RolloutRequest
from rlinf_isaac.workers.actor_worker import ActorWorker
from rlinf_isaac.workers.env_worker import EnvWorker
from rlinf_isaac.workers.rollout_worker import RolloutWorker

if TYPE_CHECKING:
    from rlinf_isaac.logging.video import RolloutVideo

__all__ = ["ActorGroup", "EnvGroup", "RolloutGroup"]


class _Group(WorkerGroup):
    def memory_stats(self) -> list[dict[str, float]]:
        """Peak CUDA memory of every rank's process (GiB)."""
        return self.run(WorkerBase.memory_stats)


class ActorGroup(_Group):
    """Actor ranks (:class:`ActorWorker`)."""

    def packed_weights(self, ipc: bool, host: bool, ranks: Sequence[int] | None) -> list:
        """Refs of every called rank's ``packed_weights`` (rank 0's holds the weights)."""
        return self.call(ActorWorker.packed_weights, ipc, host, ranks=ranks)

    def compute_advantages(self, requests: list[AdvantageRequest]) -> list[dict[str, float]]:
        return self.wait(self.call(ActorWorker.compute_advantages, per_rank_args=[(r,) for r in requests]),
                         what="compute_advantages")

    def update(self, step: int, proximal: bool = False) -> list[dict[str, float]]:
        return self.run(ActorWorker.update, step, proximal)

    def state(self, ranks: Sequence[int] | None) -> list[dict]:
        return self.run(ActorWorker.state, ranks=ranks)

    def load_state(self, state: dict) -> None:
        self.run(ActorWorker.load_state, state)

    def trainable_weights(self) -> list[dict]:
        return self.run(ActorWorker.trainable_weights)

    def sharded_layers(self) -> list[list[str]]:
        return self.run(ActorWorker.sharded_layers)

    def offload(self) -> None:
        self.run(ActorWorker.offload)

    def reload(self) -> None:
        self.run(ActorWorker.reload)


class RolloutGroup(_Group):
    """Rollout ranks (:class:`RolloutWorker`)."""

    def sync_weights(self, weights: Any, version: int, via: list[str]) -> list[int]:
        """Every rank loads ``weights`` (an object ref of the actor's ``packed_weights``),
        rank r by ``via[r]`` ("ipc" or "host")."""
        return self.wait(self.call(RolloutWorker.sync_weights, weights, version, per_rank_args=[(v,) for v in via]),
                         what="sync_weights")

    def reseed(self, seeds: list[int]) -> None:
        """Rank r's sampling noise restarts from ``seeds[r]``."""
        self.run(RolloutWorker.reseed, per_rank_args=[(s,) for s in seeds])

    def timing(self) -> list[tuple[float, str | None]]:
        return self.run(RolloutWorker.timing)

    def release_features(self) -> None:
        self.run(RolloutWorker.release_features)

    def trainable_state(self) -> list[dict]:
        return self.run(RolloutWorker.trainable_state)

    def offload(self) -> None:
        self.run(RolloutWorker.offload)

    def reload(self) -> None:
        self.run(RolloutWorker.reload)


class EnvGroup(_Group):
    """Env ranks (:class:`EnvWorker`)."""

    def rollout(self, requests: list[RolloutRequest]) -> list[list]:
        """Start every rank's rollout; per rank the refs ``[result, shard_1, ..., shard_pieces]``."""
        return [self.call(EnvWorker.rollout, req, ranks=[r], num_returns=1 + req.pieces)[0]
                for r, req in enumerate(requests)]

    def evaluate(self, requests: list[EvalRequest]) -> list[tuple[EpisodeLog, "RolloutVideo | None"]]:
        return self.wait(self.call(EnvWorker.evaluate, per_rank_args=[(r,) for r in requests]), what="evaluate")

    def describe(self) -> str:
        """Env worker 0's line on its simulator."""
        return self.run(EnvWorker.describe, ranks=[0])[0]

    def close(self) -> None:
        self.run(EnvWorker.close)
