"""Episode statistics an env worker reports with its rollout or evaluation, and their metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlinf_isaac.envs.base import wilson_interval

__all__ = ["EpisodeLog", "RolloutResult", "episode_metrics"]


@dataclass
class EpisodeLog:
    """Per-episode statistics of the episodes that ended during a rollout (flat lists)."""

    success_once: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    episode_len: list[float] = field(default_factory=list)

    def add(self, ep) -> None:
        done = ep.done.bool()
        self.success_once += ep.success_once[done].float().tolist()
        self.returns += ep.returns[done].float().tolist()
        self.episode_len += ep.episode_len[done].float().tolist()

    def extend(self, other: "EpisodeLog") -> None:
        self.success_once += other.success_once
        self.returns += other.returns
        self.episode_len += other.episode_len


@dataclass
class RolloutResult:
    """What one env worker returns from a rollout (besides its trajectory pieces)."""

    episodes: EpisodeLog
    env_steps: int
    time_env: float  # seconds spent stepping the simulator
    time_wait: float  # seconds spent waiting for the rollout worker
    time_reset: float = 0.0  # seconds spent resetting every env before the first chunk
    video: Any = None  # logging.video.RolloutVideo (mp4 bytes + TensorBoard preview) when recorded


def episode_metrics(eps: EpisodeLog, prefix: str) -> dict[str, float]:
    """Mean success/return/length of finished episodes, under ``prefix`` (env/ or eval/)."""
    n = len(eps.success_once)
    if n == 0:
        return {f"{prefix}/num_episodes": 0.0}
    key = "success_once" if prefix == "env" else "success_rate"
    out = {
        f"{prefix}/{key}": float(np.mean(eps.success_once)),
        f"{prefix}/return": float(np.mean(eps.returns)),
        f"{prefix}/episode_len": float(np.mean(eps.episode_len)),
        f"{prefix}/num_episodes": float(n),
    }
    if prefix == "eval":
        lo, hi = wilson_interval(int(round(sum(eps.success_once))), n)
        out.update({"eval/success_ci_low": lo, "eval/success_ci_high": hi})
    return out
