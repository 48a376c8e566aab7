"""How torch tensors travel between Ray workers: as raw bytes in a numpy array.

Ray pickles a torch tensor through ``torch.save`` into a bytes object, which it then copies
into the object store and the receiver ``torch.load``s back: several copies of every byte.
Numpy arrays instead go into the object store with one copy and are read in place. Every
tensor the workers exchange (observations, action chunks, the trajectories with their stored
backbone features) is large and dense, so :func:`register` makes Ray send each tensor as
``(bytes as a uint8 array, dtype, shape, device)``; the receiver copies the bytes once into a
tensor of its own (an in-place write can never reach the shared object store). A view
sends only its own elements, not the whole storage it slices (a trajectory shard is a view).

Measured in ``benchmarks/ray_transfer.py`` (docs/PERFORMANCE.md). Tensors this path cannot
express (sparse, quantized, nested, meta) fall back to ``torch.save`` bytes, as before.
``cluster.tensor_transport: pickle`` switches the whole path off (Ray's own pickling), for
comparison or if it is ever suspected of a fault; the driver hands the mode to every worker
process in ``RLINF_TENSOR_TRANSPORT``.
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch

__all__ = ["MODE_ENV", "register", "to_wire", "from_wire", "enabled"]

MODE_ENV = "RLINF_TENSOR_TRANSPORT"  # the mode this process uses, set by the driver from the config


def enabled() -> bool:
    """False when this process's mode is ``pickle`` (Ray's default tensor pickling)."""
    mode = os.environ.get(MODE_ENV, "bytes")
    if mode not in ("bytes", "pickle"):
        raise ValueError(f"{MODE_ENV}={mode!r}: expected 'bytes' (the default) or 'pickle'")
    return mode == "bytes"


def to_wire(t: torch.Tensor) -> tuple:
    """A tensor -> a picklable tuple whose bulk is one uint8 numpy array (out-of-band in Ray)."""
    if t.layout != torch.strided or t.is_quantized or t.is_nested or t.device.type == "meta":
        buf = io.BytesIO()
        torch.save(t, buf)
        return ("torch.save", buf.getvalue())
    x = t.detach().resolve_conj().resolve_neg()  # lazy conjugate/negative views: materialise
    device = str(x.device)
    if x.device.type != "cpu":
        x = x.cpu()
    data = x.contiguous().reshape(-1).view(torch.uint8).numpy()  # no copy for a contiguous CPU tensor
    return ("bytes", data, str(x.dtype).removeprefix("torch."), tuple(x.shape), device, bool(t.requires_grad))


def from_wire(payload: tuple) -> torch.Tensor:
    """Inverse of :func:`to_wire`: a tensor that owns its memory, on the sender's device."""
    if payload[0] == "torch.save":
        return torch.load(io.BytesIO(payload[1]), weights_only=False)
    _, data, dtype, shape, device, requires_grad = payload
    if data.size == 0:
        t = torch.empty(shape, dtype=getattr(torch, dtype))
    else:
        raw = np.array(data, copy=True)  # the object store's buffer is shared and read-only: own a copy
        t = torch.from_numpy(raw).view(getattr(torch, dtype)).reshape(shape)
    if device != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def register() -> bool:
    """Install the byte path for ``torch.Tensor`` in this process's Ray serializer.

    Call it in the driver after ``ray.init`` and in every worker process (Ray keeps
    serializers per process). Returns whether the path is on.
    """
    import ray.util

    if not enabled():
        ray.util.deregister_serializer(torch.Tensor)
        return False
    ray.util.register_serializer(torch.Tensor, serializer=to_wire, deserializer=from_wire)
    return True
