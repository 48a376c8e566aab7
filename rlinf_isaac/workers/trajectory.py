"""Rollout trajectories: what env workers collect and actor workers train on.

A :class:`Trajectory` holds T chunk steps of B envs. Tensors are time-major:
``[T, B, ...]`` (values carry one more row, ``[T+1, B]``, the bootstrap value).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch

__all__ = ["Trajectory", "StepRecord", "stack_steps", "concat_envs", "split_envs"]


@dataclass
class StepRecord:
    """One chunk step of B envs, as the env worker records it.

    forward_inputs: dict of tensors [B, ...] the policy's ``evaluate`` needs.
    logprobs: float [B] (chunk level) or [B, C] (action level), from the rollout.
    values: float [B] value of the observation the chunk was predicted from.
    rewards, terminated, truncated, valid, success: [B, C].
    final_values: float [B], value of the final observation of episodes truncated
        in this chunk (0 elsewhere), for bootstrapping.
    """

    forward_inputs: dict[str, torch.Tensor]
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor
    success: torch.Tensor
    final_values: torch.Tensor


@dataclass
class Trajectory:
    """T chunk steps of B envs (time-major).

    forward_inputs: dict of [T, B, ...]; logprobs [T, B] or [T, B, C]; values [T+1, B];
    rewards, terminated, truncated, valid, success: [T, B, C]; final_values [T, B];
    env_ids: int64 [B], global env indices (for sharding and GRPO groups).
    """

    forward_inputs: dict[str, torch.Tensor]
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor
    success: torch.Tensor
    final_values: torch.Tensor
    env_ids: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_envs(self) -> int:
        return self.rewards.shape[1]


_TIME_FIELDS = ("logprobs", "rewards", "terminated", "truncated", "valid", "success", "final_values")


def stack_steps(steps: list[StepRecord], bootstrap_values: torch.Tensor, env_ids: torch.Tensor) -> Trajectory:
    """Stack T step records (+ the bootstrap value [B]) into a :class:`Trajectory`."""
    keys = steps[0].forward_inputs.keys()
    return Trajectory(
        forward_inputs={k: torch.stack([s.forward_inputs[k] for s in steps]) for k in keys},  # T x [B, ...] -> [T, B, ...]
        values=torch.stack([s.values for s in steps] + [bootstrap_values]),  # [T+1, B]
        env_ids=env_ids,
        **{k: torch.stack([getattr(s, k) for s in steps]) for k in _TIME_FIELDS},
    )


def concat_envs(trajs: list[Trajectory]) -> Trajectory:
    """Concatenate trajectories of the same T along the env axis (dim 1)."""
    if len(trajs) == 1:
        return trajs[0]
    t0 = trajs[0]
    if any(t.num_steps != t0.num_steps for t in trajs):
        raise ValueError(f"cannot concatenate trajectories of different lengths {[t.num_steps for t in trajs]}")
    out = {}
    for f in fields(Trajectory):
        if f.name == "forward_inputs":
            out[f.name] = {k: torch.cat([t.forward_inputs[k] for t in trajs], 1) for k in t0.forward_inputs}
        elif f.name == "env_ids":
            out[f.name] = torch.cat([t.env_ids for t in trajs])
        elif f.name == "meta":
            out[f.name] = {k: [t.meta.get(k) for t in trajs] for k in t0.meta}
        else:
            out[f.name] = torch.cat([getattr(t, f.name) for t in trajs], 1)
    return Trajectory(**out)


def split_envs(traj: Trajectory, pieces: int) -> list[Trajectory]:
    """Split a trajectory into ``pieces`` contiguous env shards (B must divide evenly)."""
    b = traj.num_envs
    if b % pieces:
        raise ValueError(f"cannot split {b} envs into {pieces} equal shards")
    n = b // pieces
    out = []
    for i in range(pieces):
        sl = slice(i * n, (i + 1) * n)
        kw = {}
        for f in fields(Trajectory):
            v = getattr(traj, f.name)
            if f.name == "forward_inputs":
                kw[f.name] = {k: x[:, sl] for k, x in v.items()}
            elif f.name == "env_ids":
                kw[f.name] = v[sl]
            elif f.name == "meta":
                kw[f.name] = dict(v)
            else:
                kw[f.name] = v[:, sl]
        out.append(Trajectory(**kw))
    return out
