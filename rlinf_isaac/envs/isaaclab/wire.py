"""Wire format between the env worker and the simulator process.

Tensors travel as numpy arrays and are rebuilt on arrival (both ends may run different torch
builds: the env worker's and Isaac Lab's); dataclasses travel as tagged dicts. With ``ipc``
(same torch build on both ends, the simulator on a GPU), CUDA tensors instead travel as CUDA
IPC handles (:mod:`rlinf_isaac.cluster.cuda_ipc`): the receiver copies them on the device and
the observations never leave the GPU (1024 envs x two 84 px images are 43 MB per chunk).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import torch

from rlinf_isaac.cluster import cuda_ipc
from rlinf_isaac.envs.base import EpisodeStats

__all__ = ["to_wire", "from_wire"]

_DATACLASSES = {"EpisodeStats": EpisodeStats}


def to_wire(x: Any, ipc: bool = False) -> Any:
    """Recursively turn tensors into numpy arrays and known dataclasses into tagged dicts; with
    ``ipc``, CUDA tensors first become :class:`~rlinf_isaac.cluster.cuda_ipc.SharedTensor` handles."""
    return _flatten(cuda_ipc.share_tree(x) if ipc else x)


def _flatten(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if is_dataclass(x) and type(x).__name__ in _DATACLASSES:
        return {"__dataclass__": type(x).__name__, **{f.name: _flatten(getattr(x, f.name)) for f in fields(x)}}
    if isinstance(x, dict):
        return {k: _flatten(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_flatten(v) for v in x)
    return x


def from_wire(x: Any) -> Any:
    """Inverse of :func:`to_wire`: numpy arrays become CPU tensors, CUDA IPC handles copies on
    this process's GPU (done when this returns: the sender may reuse its memory)."""
    return _rebuild(cuda_ipc.open_tree(x))


def _rebuild(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, dict):
        name = x.get("__dataclass__")
        body = {k: _rebuild(v) for k, v in x.items() if k != "__dataclass__"}
        return _DATACLASSES[name](**body) if name else body
    if isinstance(x, (list, tuple)):
        return type(x)(_rebuild(v) for v in x)
    return x
