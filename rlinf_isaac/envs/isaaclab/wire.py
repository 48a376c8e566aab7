"""Wire format between the env worker and the simulator process: tensors travel as numpy.

Both ends may run different torch builds (the env worker's and Isaac Lab's), so tensors
are sent as numpy arrays and rebuilt on arrival; dataclasses travel as tagged dicts.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import torch

from rlinf_isaac.envs.base import EpisodeStats

__all__ = ["to_wire", "from_wire"]

_DATACLASSES = {"EpisodeStats": EpisodeStats}


def to_wire(x: Any) -> Any:
    """Recursively turn tensors into numpy arrays and known dataclasses into tagged dicts."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if is_dataclass(x) and type(x).__name__ in _DATACLASSES:
        return {"__dataclass__": type(x).__name__, **{f.name: to_wire(getattr(x, f.name)) for f in fields(x)}}
    if isinstance(x, dict):
        return {k: to_wire(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_wire(v) for v in x)
    return x


def from_wire(x: Any) -> Any:
    """Inverse of :func:`to_wire`: numpy arrays become torch tensors (CPU)."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, dict):
        name = x.get("__dataclass__")
        body = {k: from_wire(v) for k, v in x.items() if k != "__dataclass__"}
        return _DATACLASSES[name](**body) if name else body
    if isinstance(x, (list, tuple)):
        return type(x)(from_wire(v) for v in x)
    return x
