"""Replay a policy's inference from CUDA graphs.

The tiny policy's ``predict`` launches a few thousand small kernels per call (backbone, K
denoising steps of the DiT, value head), so on a GPU it is bound by launch latency, not by
compute: 30 ms per call of 64 envs on an idle H100, ~90 ms inside a training run that shares
the machine's cores; replayed from a graph, 8.8 ms (docs/PERFORMANCE.md). A CUDA graph
records those launches once and replays them with one call.

:class:`GraphCache` captures ``fn(inputs) -> dict of tensors`` once per input signature
(names, shapes, dtypes) and replays it after copying new inputs into the captured buffers.
``fn`` must be a pure tensor function of its inputs and the module's parameters: no random
draws (draw them outside and pass them in), no host syncs (``.item()``, ``bool(tensor)``;
input checks skip themselves while :func:`is_capturing`), no shape-dependent Python branches
on tensor values. Parameters must keep their storage (weights are updated in place with
``copy_``); the cache re-captures when a parameter's storage moved (``.to()``, offload).

When capture fails the cache says why once (a warning) and runs ``fn`` eagerly from then on:
the run keeps going, only slower.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import Tensor

__all__ = ["GraphCache", "is_capturing"]

log = logging.getLogger(__name__)

TensorFn = Callable[[dict[str, Tensor]], dict[str, Tensor]]


def is_capturing() -> bool:
    """True while the current CUDA stream is being captured into a graph (checks that read
    tensor values on the host must skip themselves then)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


@dataclass
class _Entry:
    graph: "torch.cuda.CUDAGraph"
    inputs: dict[str, Tensor]
    outputs: dict[str, Tensor]
    params: tuple[int, ...]


class GraphCache:
    """CUDA graphs of one function, one per input signature (at most ``max_graphs``, LRU).

    params: the tensors whose storage the graphs read (a module's parameters and buffers);
    their data pointers are compared on every call.
    """

    def __init__(self, params: Callable[[], Iterable[Tensor]], max_graphs: int = 4, warmup: int = 2):
        self._params = params
        self.max_graphs, self.warmup = max_graphs, warmup
        self._graphs: OrderedDict[tuple, _Entry] = OrderedDict()
        self.disabled_reason: str | None = None
        self.captures = 0

    def clear(self) -> None:
        """Drop every graph (and its memory pool)."""
        self._graphs.clear()

    def _param_ptrs(self) -> tuple[int, ...]:
        return tuple(p.data_ptr() for p in self._params())

    def __call__(self, key: str, fn: TensorFn, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """``fn(inputs)``, replayed from a graph when possible. The outputs are fresh tensors
        (clones of the graph's buffers), safe to keep across calls."""
        if self.disabled_reason is not None:
            return fn(inputs)
        bad = [k for k, v in inputs.items() if not (isinstance(v, Tensor) and v.is_cuda)]
        if bad:
            raise ValueError(f"GraphCache inputs must be CUDA tensors; not: {bad}")
        sig = (key, tuple((k, tuple(v.shape), v.dtype) for k, v in sorted(inputs.items())))
        ptrs = self._param_ptrs()
        entry = self._graphs.get(sig)
        if entry is None or entry.params != ptrs:
            self._graphs.pop(sig, None)
            try:
                entry = self._capture(fn, inputs, ptrs)
            except Exception as err:  # noqa: BLE001 - any capture failure falls back to eager
                self.disabled_reason = f"{type(err).__name__}: {err}"
                self.clear()
                log.warning("CUDA graph capture failed, running the policy eagerly from now on "
                            "(slower, same results): %s", self.disabled_reason)
                torch.cuda.synchronize()
                return fn(inputs)
            self._graphs[sig] = entry
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(sig)
        for name, value in inputs.items():
            entry.inputs[name].copy_(value)
        entry.graph.replay()
        return {name: value.clone() for name, value in entry.outputs.items()}

    def _capture(self, fn: TensorFn, inputs: dict[str, Tensor], ptrs: tuple[int, ...]) -> _Entry:
        static = {name: value.clone() for name, value in inputs.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up off the default stream, as capture requires
            for _ in range(self.warmup):
                fn(static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn(static)
        bad = [k for k, v in outputs.items() if not isinstance(v, Tensor)]
        if bad:
            raise TypeError(f"a captured function must return a dict of tensors; not tensors: {bad}")
        self.captures += 1
        return _Entry(graph, static, outputs, ptrs)
