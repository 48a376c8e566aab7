"""Advantage normalisation whose statistics span every actor rank.

Each actor rank holds a shard of the batch; normalising per shard would give each rank a
different scale. :func:`normalize_advantages` all-reduces (sum, sum of squares, count) in
float64 when ``torch.distributed`` is initialised, so every rank divides by the mean and
std of the concatenated data.
"""

from __future__ import annotations

import torch

from rlinf_isaac.algorithms.losses import align_right

__all__ = ["normalize_advantages", "global_mean_std"]


def global_mean_std(
    x: torch.Tensor, mask: torch.Tensor | None = None, group=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, population std and count of the masked entries of x across all ranks.

    x: float [T, B] or [T, B, C]; mask: 0/1 [T, B] or x's shape, None = all entries.
    group: a torch.distributed process group (None = the default group); ignored when
        torch.distributed is not initialised (single process).
    Returns three float64 0-dim tensors (mean, std, count).
    """
    m = torch.ones_like(x) if mask is None else align_right(mask, x).expand_as(x)
    m = m.to(torch.float64)
    xd = x.detach().to(torch.float64)
    stats = torch.stack([(xd * m).sum(), (xd * xd * m).sum(), m.sum()])  # [3]: sum, sum x^2, n
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        stats = stats.to(_comm_device(group))
        dist.all_reduce(stats, op=dist.ReduceOp.SUM, group=group)
        stats = stats.cpu().to(x.device)
    total, total_sq, n = stats.unbind()
    n_safe = n.clamp(min=1.0)
    mean = total / n_safe  # mu = sum x / n
    var = (total_sq / n_safe - mean**2).clamp(min=0.0)  # sigma^2 = E[x^2] - mu^2
    return mean, var.sqrt(), n


def _comm_device(group) -> torch.device:
    """NCCL reduces CUDA tensors; every other backend (gloo) takes CPU tensors."""
    backend = torch.distributed.get_backend(group)
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def normalize_advantages(
    adv: torch.Tensor, mask: torch.Tensor | None = None, group=None, eps: float = 1e-8
) -> torch.Tensor:
    """(A - mu) / (sigma + eps) with mu, sigma over the masked entries of every rank.

    adv: float [T, B] or [T, B, C]; mask: 0/1 [T, B] or adv's shape (masked-out entries
    are returned as 0); group: process group or None. Returns float of adv's shape/dtype.
    """
    mean, std, _ = global_mean_std(adv, mask, group)
    out = (adv - mean.to(adv.dtype)) / (std.to(adv.dtype) + eps)  # A' = (A - mu) / (sigma + eps)
    if mask is not None:
        out = out * align_right(mask, adv).to(adv.dtype)
    return out
