"""Rollout trajectories: what env workers collect and actor workers train on.

A :class:`Trajectory` holds T chunk steps of B envs. Tensors are time-major:
``[T, B, ...]`` (values carry one more row, ``[T+1, B]``, the bootstrap value).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Union

import torch

from rlinf_isaac.data.features import FeatureIndex, FeatureRef

__all__ = ["Trajectory", "StepRecord", "stack_steps", "stack_stages", "concat_envs", "split_envs"]


@dataclass
class StepRecord:
    """One chunk step of B envs, as the env worker records it.

    forward_inputs: dict of tensors [B, ...] the policy's ``evaluate`` needs, or a
        :class:`FeatureRef` to them where the rollout worker keeps them (features.py).
    logprobs: float [B] (chunk level) or [B, C] (action level), from the rollout.
    values: float [B] value of the observation the chunk was predicted from.
    rewards, terminated, truncated, valid, success: [B, C].
    final_values: float [B], value of the final observation of episodes truncated
        in this chunk (0 elsewhere), for bootstrapping.
    """

    forward_inputs: Union[dict[str, torch.Tensor], FeatureRef]
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

    forward_inputs: dict of [T, B, ...], or a :class:`FeatureIndex` to them on the rollout
        workers (the actor fetches them, features.py); logprobs [T, B] or [T, B, C]; values [T+1, B];
    rewards, terminated, truncated, valid, success: [T, B, C]; final_values [T, B];
    env_ids: int64 [B], global env indices (for sharding and GRPO groups).
    """

    forward_inputs: Union[dict[str, torch.Tensor], FeatureIndex]
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
    return stack_stages([steps], [bootstrap_values], env_ids)


def stack_stages(stages: list[list[StepRecord]], bootstrap_values: list[torch.Tensor],
                 env_ids: torch.Tensor) -> Trajectory:
    """T step records of each of S stages (+ each stage's bootstrap values) -> one
    :class:`Trajectory` whose envs are the stages' envs in stage order.

    Equal to ``concat_envs([stack_steps(...) per stage])`` but every tensor is written once,
    straight into its place. Records holding :class:`FeatureRef` (the runner's: the inputs
    stayed on the rollout workers) give a :class:`FeatureIndex` instead of stacked inputs.
    """
    n_steps = len(stages[0])
    if any(len(st) != n_steps for st in stages):
        raise ValueError(f"stages hold different numbers of steps: {[len(st) for st in stages]}")

    def join(per_stage: list[list[torch.Tensor]]) -> torch.Tensor:  # [S][T] x [n_s, ...] -> [T, sum n_s, ...]
        first = per_stage[0][0]
        widths = [xs[0].shape[0] for xs in per_stage]
        out = first.new_empty((len(per_stage[0]), sum(widths), *first.shape[1:]))
        off = 0
        for xs, w in zip(per_stage, widths):
            for t, x in enumerate(xs):
                out[t, off:off + w].copy_(x)
            off += w
        return out

    if isinstance(stages[0][0].forward_inputs, FeatureRef):  # kept by the rollout workers
        fwd = FeatureIndex.from_refs([[st[t].forward_inputs for st in stages] for t in range(n_steps)])
    else:
        keys = stages[0][0].forward_inputs.keys()
        fwd = {k: join([[r.forward_inputs[k] for r in st] for st in stages]) for k in keys}
    return Trajectory(
        forward_inputs=fwd,
        values=join([[r.values for r in st] + [b] for st, b in zip(stages, bootstrap_values)]),  # [T+1, B]
        env_ids=env_ids,
        **{f: join([[getattr(r, f) for r in st] for st in stages]) for f in _TIME_FIELDS},
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
        if f.name == "forward_inputs" and isinstance(t0.forward_inputs, FeatureIndex):
            out[f.name] = FeatureIndex.concat([t.forward_inputs for t in trajs])
        elif f.name == "forward_inputs":
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
            if f.name == "forward_inputs" and isinstance(v, FeatureIndex):
                kw[f.name] = v.slice(sl.start, sl.stop)
            elif f.name == "forward_inputs":
                kw[f.name] = {k: x[:, sl] for k, x in v.items()}
            elif f.name == "env_ids":
                kw[f.name] = v[sl]
            elif f.name == "meta":
                kw[f.name] = dict(v)
            else:
                kw[f.name] = v[:, sl]
        out.append(Trajectory(**kw))
    return out
