"""Stored policy inputs stay where they were computed until an actor takes them.

A training rollout call stores what ``evaluate`` will need (``forward_inputs``: for the
full-size policy 612 x 2048 bf16 backbone features per decision, 2.5 MB; ~1.3 GB per global
step for 32 envs). Sent along with the trajectory (rollout worker -> env worker -> stacked,
joined, split -> actor) they would take four host copies and a device-to-host copy inside every
latency-bound policy call. So the rollout worker keeps them (:class:`FeatureStore`, on its device) and replies
with a :class:`FeatureRef`; the env worker's trajectory holds a :class:`FeatureIndex` (which
rows of which stored call make up each chunk step); each actor fetches its rows straight
from the rollout workers (:func:`fetch_features`): by CUDA IPC when both sit on the same GPU
(no host copy at all), otherwise as one host tensor per rollout worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from rlinf_isaac.cluster import cuda_ipc
from rlinf_isaac.cluster.handles import resolve

__all__ = ["FeatureRef", "FeatureIndex", "FeatureStore", "fetch_features"]

Segment = tuple[int, int, int, int]  # (rollout rank, key, first row, end row)


@dataclass(frozen=True)
class FeatureRef:
    """One stored policy call: rollout worker ``rank``, its store ``key``, ``rows`` envs."""

    rank: int
    key: int
    rows: int


@dataclass
class FeatureIndex:
    """A trajectory's ``forward_inputs`` left on the rollout workers.

    steps[t]: the row segments ``(rank, key, lo, hi)`` whose concatenation is chunk step t's
    envs, in the trajectory's env order.
    """

    steps: list[list[Segment]]

    @classmethod
    def from_refs(cls, refs: Sequence[Sequence[FeatureRef]]) -> "FeatureIndex":
        """refs[t][s]: stage s's call at chunk step t (stages in env order)."""
        return cls([[(r.rank, r.key, 0, r.rows) for r in row] for row in refs])

    @property
    def num_envs(self) -> int:
        return sum(hi - lo for _, _, lo, hi in self.steps[0]) if self.steps else 0

    def slice(self, start: int, end: int) -> "FeatureIndex":
        """Envs ``start:end`` of every step."""
        out = []
        for segs in self.steps:
            row, col = [], 0
            for rank, key, lo, hi in segs:
                a, b = max(start, col), min(end, col + hi - lo)  # overlap in env coordinates
                if a < b:
                    row.append((rank, key, lo + a - col, lo + b - col))
                col += hi - lo
            out.append(row)
        return FeatureIndex(out)

    @staticmethod
    def concat(indexes: Sequence["FeatureIndex"]) -> "FeatureIndex":
        """Join along the env axis (all of the same length)."""
        return FeatureIndex([sum((ix.steps[t] for ix in indexes), []) for t in range(len(indexes[0].steps))])


class FeatureStore:
    """A rollout worker's stored ``forward_inputs``, kept until the actors fetched them."""

    def __init__(self, rank: int):
        self.rank = rank
        self._calls: dict[int, dict[str, torch.Tensor]] = {}
        self._shared: list[dict[str, torch.Tensor]] = []  # exported by IPC: kept alive until release
        self._next = 0

    def put(self, tensors: dict[str, torch.Tensor]) -> FeatureRef:
        rows = {v.shape[0] for v in tensors.values()}
        if len(rows) != 1:
            raise ValueError(f"stored inputs disagree on the batch size: {sorted(rows)}")
        key, self._next = self._next, self._next + 1
        self._calls[key] = {k: v.detach() for k, v in tensors.items()}
        return FeatureRef(self.rank, key, rows.pop())

    def __len__(self) -> int:
        return len(self._calls)

    def export(self, segments: Sequence[tuple[int, int, int]], via: str) -> dict[str, Any]:
        """Rows ``(key, lo, hi)`` of stored calls, concatenated in order: {name: [rows, ...]}.

        via: "ipc" -> :class:`~rlinf_isaac.cluster.cuda_ipc.SharedTensor` handles (same GPU;
        the joined tensors stay here until :meth:`release`); "host" -> CPU tensors.
        """
        missing = sorted({k for k, _, _ in segments} - set(self._calls))
        if missing:
            raise KeyError(f"rollout worker {self.rank} holds no stored inputs for calls {missing[:5]}: they "
                           f"were released, or the trajectory comes from another run")
        names = self._calls[segments[0][0]].keys()
        out = {n: torch.cat([self._calls[k][n][lo:hi] for k, lo, hi in segments]) for n in names}
        if via == "ipc":
            self._shared.append(out)
            return {n: cuda_ipc.share(t) for n, t in out.items()}
        if via != "host":
            raise ValueError(f"via={via!r}: expected 'ipc' or 'host'")
        return {n: t.cpu() for n, t in out.items()}

    def release(self) -> int:
        """Drop everything stored (after the actors fetched it); returns how many calls."""
        n = len(self._calls)
        self._calls.clear()
        self._shared.clear()
        cuda_ipc.collect()
        return n


def fetch_features(index: FeatureIndex, handles: Sequence[Any], device: str | torch.device,
                   ipc_ranks: Sequence[int] = ()) -> dict[str, torch.Tensor]:
    """The tensors [T, n, ...] on ``device`` that ``index`` points to.

    handles[r]: rollout worker r (Ray handle or :class:`~rlinf_isaac.cluster.handles.LocalHandle`);
    ipc_ranks: ranks on this process's GPU (fetched by CUDA IPC, the rest through the host).
    """
    order: dict[int, list[tuple[int, int, int]]] = {}  # rank -> its segments in (t, env) order
    for segs in index.steps:
        for rank, key, lo, hi in segs:
            order.setdefault(rank, []).append((key, lo, hi))
    refs = {r: handles[r].export_features.remote(segs, "ipc" if r in ipc_ranks else "host")
            for r, segs in order.items()}  # all rollout workers export at once
    parts = {}
    for r, ref in refs.items():
        got = resolve(ref)
        parts[r] = {n: (v.open() if isinstance(v, cuda_ipc.SharedTensor) else v) for n, v in got.items()}
    first = next(iter(parts.values()))
    t_len, n = len(index.steps), index.num_envs
    out = {name: torch.empty((t_len, n, *x.shape[1:]), dtype=x.dtype, device=device) for name, x in first.items()}
    cursor = dict.fromkeys(parts, 0)
    for t, segs in enumerate(index.steps):
        col = 0
        for rank, _key, lo, hi in segs:
            w, c = hi - lo, cursor[rank]
            for name, dst in out.items():
                dst[t, col:col + w].copy_(parts[rank][name][c:c + w], non_blocking=True)
            cursor[rank], col = c + w, col + w
    if torch.device(device).type == "cuda":
        torch.cuda.current_stream(device).synchronize()  # copies done before the mappings are dropped
    return out
