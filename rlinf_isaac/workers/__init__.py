"""The env, rollout and actor workers, each run as a Ray actor per placed process."""

from rlinf_isaac.workers.actor_worker import ActorWorker
from rlinf_isaac.workers.env_worker import EnvWorker
from rlinf_isaac.workers.rollout_worker import RolloutWorker

__all__ = ["ActorWorker", "EnvWorker", "RolloutWorker"]
