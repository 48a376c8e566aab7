"""``actor.training_backend: fsdp``: the actor's trainable layers sharded across actor ranks.

FSDP2 (``torch.distributed.fsdp.fully_shard``) shards, as one unit each, every block of a
``nn.ModuleList`` whose parameters are all trainable (the DiT's and the VL self-attention's
transformer blocks), then every remaining ``nn.Linear`` / ``nn.LayerNorm`` whose parameters are
all trainable. Each rank keeps 1/N of those weights, their gradients and their AdamW moments;
a unit's weights are gathered once per micro-batch (``reshard_after_forward=False``: they stay
gathered from the forward to the backward, so the flow chain's repeated calls of a block do not
gather again) and its gradients reduce-scattered in the backward. Why blocks, not every layer: a unit costs
collectives and hooks each micro-batch; one per Linear made FSDP 6.8x slower than DDP on two
H200s (docs/PERFORMANCE.md). Why not everything: the policy also reads some trainable tensors
directly rather than by calling their module (``position_embedding.weight``,
``future_tokens.weight``, the per-embodiment ``W`` / ``b``), and a sharded tensor read that way
would be a shard. Those few stay replicated; their gradients are all-reduced as in DDP. Frozen
parts (the backbone) stay replicated, as in DDP. For the full-size policy (frozen backbone) the
sharded units hold 99.99% of the trainable parameters. A module that computes with its weights
in methods other than ``forward`` names them in ``fsdp_forward_methods`` (the transformer
block's ``context_kv``, the cross-attention keys and values cached across denoising steps).

The optimizer steps sharded and replicated tensors in separate parameter groups, so AdamW's
multi-tensor (foreach) kernels apply (one group may not mix DTensors and plain tensors).

Everything that leaves a rank is full and unsharded, in the same format as DDP, so
checkpoints and the rollout workers do not depend on the backend:
``full_trainable_state``, ``full_optimizer_state`` and ``full_scheduler_state`` gather
(collectives: every actor rank calls them together) and put the optimizer's groups back in
DDP's layout; ``like_param``, ``optimizer_state_like`` and ``scheduler_state_like`` shard full
tensors back onto this rank (``distribute_tensor``: also collectives).

Gradient clipping uses the norm over all trainable gradients: the sharded ones' squares are
summed across ranks, the replicated ones (already equal on every rank) counted once.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["shard_trainable_layers", "is_sharded", "split_param_groups", "full_trainable_state",
           "full_optimizer_state", "full_scheduler_state", "like_param", "optimizer_state_like",
           "scheduler_state_like", "clip_grad_norm"]

_SHARDABLE = (nn.Linear, nn.LayerNorm)


def is_sharded(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def _all_trainable(params: list[Tensor]) -> bool:
    return bool(params) and all(p.requires_grad for p in params)


def shard_trainable_layers(model: nn.Module, device: str) -> list[str]:
    """Apply ``fully_shard`` to every fully trainable block of a ModuleList, then to every
    remaining fully trainable Linear / LayerNorm; returns the units' module names."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    mesh = init_device_mesh("cuda" if device.startswith("cuda") else "cpu", (dist.get_world_size(),))
    units: list[tuple[str, nn.Module]] = []
    inside: set[int] = set()  # modules already part of a unit
    for name, module in model.named_modules():  # pre-order: outer lists before the lists inside their blocks
        if isinstance(module, nn.ModuleList) and id(module) not in inside:
            for i, block in enumerate(module):
                if _all_trainable(list(block.parameters())):
                    units.append((f"{name}.{i}", block))
                    inside.update(id(m) for m in block.modules())
    for name, module in model.named_modules():
        if (id(module) not in inside and isinstance(module, _SHARDABLE)
                and _all_trainable(list(module.parameters(recurse=False)))):
            units.append((name, module))
    for _, module in units:
        fully_shard(module, mesh=mesh, reshard_after_forward=False)
        for method in getattr(module, "fsdp_forward_methods", ()):  # e.g. a block's context_kv
            register_fsdp_forward_method(module, method)
    return [name for name, _ in units]


def split_param_groups(groups: list[dict]) -> list[dict]:
    """Each optimizer group split into its sharded and its replicated tensors (empty parts
    dropped); every part keeps its group's settings and records the group's index under
    ``"layout"``, which the ``full_*`` / ``*_like`` functions use to restore DDP's layout."""
    out = []
    for i, group in enumerate(groups):
        for want in (True, False):
            part = [p for p in group["params"] if is_sharded(p) == want]
            if part:
                out.append({**group, "params": part, "layout": i})
    return out


def _layouts(optimizer: torch.optim.Optimizer) -> list[int] | None:
    """Per group, the index of the DDP group it came from (None: DDP's layout already)."""
    keys = [g.get("layout") for g in optimizer.param_groups]
    return None if all(k is None for k in keys) else keys


def full_trainable_state(model: nn.Module) -> dict[str, Tensor]:
    """Trainable tensors, unsharded (a collective when any is sharded)."""
    return {n: (p.full_tensor() if is_sharded(p) else p).detach()
            for n, p in model.named_parameters() if p.requires_grad}


def full_optimizer_state(optimizer: torch.optim.Optimizer, params: list[Tensor]) -> dict:
    """``optimizer.state_dict()`` with every sharded moment gathered (a collective), in DDP's
    layout: ``params`` are the trainable tensors in DDP's order (its groups' concatenation)."""
    sd = optimizer.state_dict()  # its per-parameter dicts are the live state: build new ones
    state = {i: {k: (v.full_tensor() if is_sharded(v) else v) for k, v in st.items()}
             for i, st in sd["state"].items()}  # same order on every rank: collectives line up
    layouts = _layouts(optimizer)
    if layouts is None:
        return {**sd, "state": state}
    order = {id(p): j for j, p in enumerate(params)}
    mine = [p for g in optimizer.param_groups for p in g["params"]]  # state_dict's int keys
    groups: dict[int, dict] = {}
    for layout, group in zip(layouts, sd["param_groups"]):
        merged = groups.setdefault(layout, {k: v for k, v in group.items() if k not in ("params", "layout")}
                                   | {"params": []})
        merged["params"] += [order[id(mine[i])] for i in group["params"]]
    for g in groups.values():
        g["params"].sort()
    return {"state": {order[id(mine[i])]: st for i, st in state.items()},
            "param_groups": [groups[k] for k in sorted(groups)]}


def full_scheduler_state(scheduler: Any) -> dict:
    """An LR scheduler's ``state_dict()`` with its per-group lists in DDP's layout."""
    sd = scheduler.state_dict()
    layouts = _layouts(scheduler.optimizer)
    if layouts is None:
        return sd
    first = {}  # DDP group -> the first of its parts (the parts share their settings)
    for i, layout in enumerate(layouts):
        first.setdefault(layout, i)
    return {k: ([v[first[g]] for g in sorted(first)] if isinstance(v, list) and len(v) == len(layouts) else v)
            for k, v in sd.items()}


def like_param(full: Tensor, param: Tensor) -> Tensor:
    """``full`` on ``param``'s device and dtype, sharded like it when it is sharded."""
    full = full.to(device=param.to_local().device if is_sharded(param) else param.device, dtype=param.dtype)
    if not is_sharded(param):
        return full
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full, param.device_mesh, param.placements)


def optimizer_state_like(optimizer: torch.optim.Optimizer, optimizer_state: dict,
                         params: list[Tensor]) -> dict:
    """A full (unsharded) ``optimizer.state_dict()`` in DDP's layout (``params``: the trainable
    tensors in DDP's order) as this optimizer's, each moment sharded like its parameter."""
    mine = [p for group in optimizer.param_groups for p in group["params"]]  # state_dict's int keys
    layouts = _layouts(optimizer)
    if layouts is None:
        to_full = list(range(len(mine)))
        param_groups = optimizer_state["param_groups"]
    else:
        order = {id(p): j for j, p in enumerate(params)}
        to_full = [order[id(p)] for p in mine]
        param_groups, start = [], 0
        for layout, group in zip(layouts, optimizer.param_groups):
            n = len(group["params"])
            param_groups.append({**{k: v for k, v in optimizer_state["param_groups"][layout].items()
                                    if k != "params"}, "layout": layout,
                                 "params": list(range(start, start + n))})
            start += n
    state = {}
    for idx, p in enumerate(mine):  # moments like their parameter; "step" as saved
        st = optimizer_state["state"].get(to_full[idx], optimizer_state["state"].get(str(to_full[idx])))
        if st is not None:
            state[idx] = {k: (like_param(v, p) if k != "step" and torch.is_tensor(v) and v.shape == p.shape else v)
                          for k, v in st.items()}
    return {"state": state, "param_groups": param_groups}


def scheduler_state_like(scheduler: Any, scheduler_state: dict) -> dict:
    """An LR scheduler state in DDP's layout as this scheduler's (per-group lists expanded)."""
    layouts = _layouts(scheduler.optimizer)
    if layouts is None:
        return scheduler_state
    n = 1 + max(layouts)
    return {k: ([v[g] for g in layouts] if isinstance(v, list) and len(v) == n else v)
            for k, v in scheduler_state.items()}


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
