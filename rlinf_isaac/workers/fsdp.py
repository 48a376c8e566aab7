"""``actor.training_backend: fsdp``: the actor's trainable layers sharded across actor ranks.

FSDP2 (``torch.distributed.fsdp.fully_shard``) shards every ``nn.Linear`` / ``nn.LayerNorm``
whose parameters are all trainable: each rank keeps 1/N of those weights, their gradients and
their AdamW moments, and gathers a layer's weights only while the layer runs. Why only those
layers: the policy also reads some trainable tensors directly rather than by calling their
module (``position_embedding.weight``, ``future_tokens.weight``, the per-embodiment ``W`` / ``b``),
and a sharded tensor read that way would be a shard. Those few stay replicated; their
gradients are all-reduced as in DDP. Frozen parts (the backbone) stay replicated, as in DDP.
For the full-size policy (frozen backbone) the sharded layers hold 99.99% of the trainable
parameters (0.7524 of 0.7525 B with the projectors frozen; counted on the meta device).

Everything that leaves a rank is full and unsharded, in the same format as DDP, so
checkpoints and the rollout workers do not depend on the backend:
``full_trainable_state`` and ``full_optimizer_state`` gather (collectives: every actor rank
calls them together); ``like_param`` and ``optimizer_state_like`` shard full tensors back onto
this rank (``distribute_tensor``: also collectives).

Gradient clipping uses the norm over all trainable gradients: the sharded ones' squares are
summed across ranks, the replicated ones (already equal on every rank) counted once.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["shard_trainable_layers", "is_sharded", "full_trainable_state", "full_optimizer_state",
           "like_param", "optimizer_state_like", "clip_grad_norm"]

_SHARDABLE = (nn.Linear, nn.LayerNorm)


def is_sharded(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def shard_trainable_layers(model: nn.Module, device: str) -> int:
    """Apply ``fully_shard`` to every fully trainable Linear / LayerNorm; returns how many."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cuda" if device.startswith("cuda") else "cpu", (dist.get_world_size(),))
    n = 0
    for module in list(model.modules()):
        params = list(module.parameters(recurse=False))
        if isinstance(module, _SHARDABLE) and params and all(p.requires_grad for p in params):
            fully_shard(module, mesh=mesh)
            n += 1
    return n


def full_trainable_state(model: nn.Module) -> dict[str, Tensor]:
    """Trainable tensors, unsharded (a collective when any is sharded)."""
    return {n: (p.full_tensor() if is_sharded(p) else p).detach()
            for n, p in model.named_parameters() if p.requires_grad}


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """``optimizer.state_dict()`` with every sharded moment gathered (a collective)."""
    sd = optimizer.state_dict()  # its per-parameter dicts are the live state: build new ones
    sd["state"] = {i: {k: (v.full_tensor() if is_sharded(v) else v) for k, v in st.items()}
                   for i, st in sd["state"].items()}  # same order on every rank: collectives line up
    return sd


def like_param(full: Tensor, param: Tensor) -> Tensor:
    """``full`` on ``param``'s device and dtype, sharded like it when it is sharded."""
    full = full.to(device=param.to_local().device if is_sharded(param) else param.device, dtype=param.dtype)
    if not is_sharded(param):
        return full
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full, param.device_mesh, param.placements)


def optimizer_state_like(optimizer: torch.optim.Optimizer, optimizer_state: dict) -> dict:
    """A full (unsharded) ``optimizer.state_dict()`` with each moment sharded like its parameter."""
    ordered = [p for group in optimizer.param_groups for p in group["params"]]  # state_dict's int keys
    state = {}
    for idx, st in optimizer_state["state"].items():
        p = ordered[int(idx)]  # moments like their parameter; "step" as saved
        state[idx] = {k: (like_param(v, p) if k != "step" and torch.is_tensor(v) and v.shape == p.shape else v)
                      for k, v in st.items()}
    return {"state": state, "param_groups": optimizer_state["param_groups"]}


def clip_grad_norm(params: Iterable[Tensor], max_norm: float, sharded: bool) -> float:
    """Scale gradients to a total norm of at most ``max_norm``; returns the norm before."""
    params = [p for p in params if p.grad is not None]
    if not sharded:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    if not params:
        return 0.0
    # squared norms summed on the gradients' device: one host sync in all, not one per tensor
    zero = torch.zeros((), dtype=torch.float64, device=params[0].grad.device)
    local, replicated = zero, zero.clone()
    for p in params:
        if is_sharded(p.grad):
            local = local + p.grad.to_local().detach().double().pow(2).sum()
        else:
            replicated = replicated + p.grad.detach().double().pow(2).sum()
    dist.all_reduce(local)  # sum of the shards' squares = the sharded gradients' squared norm
    total = math.sqrt(float(local) + float(replicated))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            p.grad.mul_(coef)
    return total
