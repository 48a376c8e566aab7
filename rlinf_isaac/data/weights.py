"""Actor -> rollout weight sync as one flat byte buffer.

The full-size policy has 314 trainable tensors (1.07 B parameters, 2.1 GB in bf16). Sent as a
dict of tensors, every tensor is copied to the host on its own (a blocking, pageable copy),
pickled, stored, unpickled and copied back to the GPU on its own: seconds per sync for the
full-size policy (benchmarks/weight_sync.py). Packed, the actor copies all
tensors into one reused (pinned, on CUDA) host buffer, Ray stores that one array (a numpy
array is read zero-copy from the object store), and each rollout worker moves it to its
device in one copy and slices the tensors out of it.

Rollout workers on the actor's GPU skip the host: :meth:`WeightPacker.share` packs into a
reused device buffer and sends a CUDA IPC handle to it (``cluster/cuda_ipc.py``); the rollout
worker copies out of the mapped buffer on the device.

``PackedWeights`` carries names, shapes and dtypes, so a mismatch between actor and rollout
models is caught with the offending names, as ``load_trainable_state_dict`` does.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import torch
from torch import Tensor

from rlinf_isaac.cluster.cuda_ipc import SharedTensor, share

__all__ = ["PackedWeights", "WeightPacker", "unpack_into"]

_ALIGN = 64  # bytes; every tensor starts at a multiple, so a byte slice can be viewed as its dtype


@dataclass
class PackedWeights:
    """Tensors ``names[i]`` of ``shapes[i]`` / ``dtypes[i]`` at ``offsets[i]`` bytes of ``buffer``:
    a host array, or the IPC handle of the actor's device buffer (same GPU only)."""

    names: list[str]
    shapes: list[tuple[int, ...]]
    dtypes: list[str]  # torch dtype names without the "torch." prefix
    offsets: list[int]
    buffer: np.ndarray | SharedTensor  # uint8 [total bytes]

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)

    def tensors(self, device: str | torch.device = "cpu", copy: bool = True) -> dict[str, Tensor]:
        """The tensors on ``device``: views into one copy of the buffer (made in one transfer).

        ``copy=False`` on the CPU returns views of the buffer itself (read-only when it came
        from Ray's object store: only read them)."""
        if isinstance(self.buffer, SharedTensor):
            src = self.buffer.open()  # the actor's device buffer, mapped: views of it on its device
            flat = src.clone() if copy else src
            return self._views(flat)
        with warnings.catch_warnings():  # Ray hands out the stored array read-only
            warnings.simplefilter("ignore", UserWarning)
            src = torch.from_numpy(self.buffer)
        if torch.device(device).type != "cpu":
            flat = src.to(device)
        else:
            flat = src.clone() if copy else src
        return self._views(flat)

    def _views(self, flat: Tensor) -> dict[str, Tensor]:
        out = {}
        for name, shape, dtype, off in zip(self.names, self.shapes, self.dtypes, self.offsets):
            dt = getattr(torch, dtype)
            n = math.prod(shape) * dt.itemsize
            out[name] = flat[off:off + n].view(dt).view(shape)
        return out


class WeightPacker:
    """Packs named tensors into a host buffer that is allocated once and reused."""

    def __init__(self) -> None:
        self._buffer: Optional[Tensor] = None
        self._device_buffer: Optional[Tensor] = None

    def pack(self, tensors: Mapping[str, Tensor]) -> PackedWeights:
        """Into the host buffer (pinned when the tensors are on a GPU), for any receiver."""
        layout = _layout(tensors)
        on_cuda = any(t.is_cuda for t in tensors.values())
        if self._buffer is None or self._buffer.numel() < layout[-1]:
            self._buffer = torch.empty(layout[-1], dtype=torch.uint8, pin_memory=on_cuda and torch.cuda.is_available())
        buf = _fill(self._buffer, tensors, layout)
        # Ray copies the returned array into its object store; the buffer is refilled only on the
        # next pack, after that copy.
        return PackedWeights(*layout[:-1], buf.numpy())

    def share(self, tensors: Mapping[str, Tensor]) -> PackedWeights:
        """Into a reused buffer on the tensors' GPU, sent as a CUDA IPC handle: for receivers
        on the same GPU. The buffer is refilled only on the next share, after the receivers
        copied out of it (a sync is one blocking round)."""
        layout = _layout(tensors)
        device = next(iter(tensors.values())).device
        if device.type != "cuda":
            raise ValueError(f"share() packs GPU tensors, these are on {device}: use pack()")
        if self._device_buffer is None or self._device_buffer.numel() < layout[-1]:
            self._device_buffer = None  # free the old one first
            self._device_buffer = torch.empty(layout[-1], dtype=torch.uint8, device=device)
        buf = _fill(self._device_buffer, tensors, layout)
        return PackedWeights(*layout[:-1], share(buf))


def _layout(tensors: Mapping[str, Tensor]) -> tuple[list, list, list, list, int]:
    """(names, shapes, dtypes, byte offsets, total bytes) of tensors packed back to back."""
    names, shapes, dtypes, offsets, total = [], [], [], [], 0
    for name, t in tensors.items():
        names.append(name)
        shapes.append(tuple(t.shape))
        dtypes.append(str(t.dtype).removeprefix("torch."))
        offsets.append(total)
        total += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN  # round up to _ALIGN
    return names, shapes, dtypes, offsets, total


def _fill(buffer: Tensor, tensors: Mapping[str, Tensor], layout: tuple) -> Tensor:
    """Copy ``tensors`` into ``buffer`` at the layout's offsets; returns the used bytes."""
    offsets, total = layout[3], layout[4]
    on_cuda = any(t.is_cuda for t in tensors.values())
    for t, off in zip(tensors.values(), offsets):
        dst = buffer[off:off + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
        dst.copy_(t.detach(), non_blocking=on_cuda)  # async (pinned or on-device), synced below
    if on_cuda:
        torch.cuda.synchronize()
    return buffer[:total]


@torch.no_grad()
def unpack_into(packed: PackedWeights, params: Mapping[str, Tensor], device: str | torch.device) -> None:
    """Copy every packed tensor into ``params[name]`` in place; the name sets must be equal and
    shapes / dtypes must match (errors name the tensors)."""
    missing = sorted(set(params) - set(packed.names))
    unexpected = sorted(set(packed.names) - set(params))
    if missing or unexpected:
        raise KeyError(f"packed weights do not match the model's trainable tensors: missing "
                       f"{missing[:10]} ({len(missing)} in all), unexpected {unexpected[:10]} "
                       f"({len(unexpected)} in all)")
    for name, shape, dtype in zip(packed.names, packed.shapes, packed.dtypes):
        p = params[name]
        if tuple(p.shape) != shape or str(p.dtype).removeprefix("torch.") != dtype:
            raise ValueError(f"packed tensor {name!r} is {dtype}{list(shape)}, the model's is "
                             f"{str(p.dtype).removeprefix('torch.')}{list(p.shape)}")
    src = packed.tensors(device, copy=False)
    for name in packed.names:
        params[name].copy_(src[name])
    if isinstance(packed.buffer, SharedTensor):
        torch.cuda.synchronize()  # done reading the actor's buffer before the mapping is dropped
