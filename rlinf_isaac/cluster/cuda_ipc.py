"""GPU tensors between worker processes on the same GPU, by CUDA IPC handle instead of bytes.

Workers that share a GPU (``env,rollout,actor: all`` on one GPU, or the shared layouts) are
still separate processes: through Ray, a tensor one of them holds on the GPU reaches the other
by a device-to-host copy, the object store and a host-to-device copy (for the full-size
policy: 1.3 GB of stored backbone features and a 2.1 GB weight sync per global step). With
:func:`share` the owner sends a CUDA IPC handle to the tensor's memory (a few hundred bytes);
the receiver maps that memory (:meth:`SharedTensor.open`) and copies on the device.

This uses torch's own machinery (the one ``torch.multiprocessing`` queues use): the owner's
allocator keeps the memory alive until every receiver has dropped its mapping, and the
receiver waits for the owner's pending writes before reading. Only processes that see the
same physical GPU as the same device index can open a handle; :func:`same_gpu` decides that
from the placement, everything else takes the host path. ``cluster.cuda_ipc: false`` switches
IPC off (the host path everywhere), for comparison or if a container forbids it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SharedTensor", "share", "share_tree", "open_tree", "same_gpu", "collect"]


@dataclass(frozen=True)
class SharedTensor:
    """A CUDA tensor's IPC handle and layout (picklable; a few hundred bytes)."""

    rebuild_args: tuple
    nbytes: int

    def open(self) -> torch.Tensor:
        """The owner's tensor mapped into this process (no copy). Read it, copy what you keep
        and drop it: the owner cannot free the memory while a mapping lives."""
        from torch.multiprocessing.reductions import rebuild_cuda_tensor

        try:
            return rebuild_cuda_tensor(*self.rebuild_args)
        except RuntimeError as e:
            raise RuntimeError(f"could not open a CUDA IPC handle from another worker on this GPU ({e}); "
                               f"set cluster.cuda_ipc=false to send GPU tensors through the host instead") from e


def share(t: torch.Tensor) -> SharedTensor:
    """An IPC handle to CUDA tensor ``t`` for a process on the same GPU (see :func:`same_gpu`)."""
    if not t.is_cuda:
        raise ValueError(f"share() needs a CUDA tensor, got one on {t.device}: send host tensors through Ray")
    from torch.multiprocessing.reductions import reduce_tensor

    _, args = reduce_tensor(t.detach())
    return SharedTensor(args, t.numel() * t.element_size())


def share_tree(x):
    """``x`` (tensors in dicts, lists and tuples) with every CUDA tensor replaced by its
    :class:`SharedTensor`; host tensors and other leaves unchanged."""
    if isinstance(x, torch.Tensor):
        return share(x.contiguous()) if x.is_cuda else x
    if isinstance(x, dict):
        return {k: share_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(share_tree(v) for v in x)
    return x


def open_tree(x):
    """Inverse of :func:`share_tree` in the receiving process: every :class:`SharedTensor` becomes
    a copy of its tensor on this process's GPU. The copies are finished when this returns, so
    the owner may reuse its memory at once."""
    mapped: list[torch.Tensor] = []  # the owner's memory, kept mapped until the copies are done

    def walk(v):
        if isinstance(v, SharedTensor):
            mapped.append(v.open())
            return mapped[-1].clone()
        if isinstance(v, dict):
            return {k: walk(u) for k, u in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(walk(u) for u in v)
        return v

    out = walk(x)
    if mapped:
        torch.cuda.current_stream(mapped[0].device).synchronize()
    return out


def collect() -> None:
    """Free memory this process shared whose receivers have all let go (torch keeps it until
    then); call after a phase whose shared tensors are done with."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.ipc_collect()


def same_gpu(a, b, device_type: str = "cuda") -> bool:
    """True when placed processes ``a`` and ``b`` (``ProcessPlacement``) use the same physical
    GPU as their ``cuda:0`` (workers run on the first of their ``local_gpus``)."""
    return device_type == "cuda" and a.node == b.node and a.local_gpus[:1] == b.local_gpus[:1]
