"""Uniform calls to workers that live in Ray actors or in this process.

``handle.method.remote(*args)`` works for both a Ray actor handle and a :class:`LocalHandle`;
:func:`resolve` turns the result into a value (``ray.get`` for object refs, ``result()`` for futures,
identity otherwise); :func:`is_ready` says whether that would return without waiting.
The in-process form runs the exact same worker code without Ray (debugging, unit tests).
"""

from __future__ import annotations

from concurrent.futures import Future, wait
from typing import Any

__all__ = ["LocalHandle", "is_ready", "resolve"]


class _LocalMethod:
    def __init__(self, fn):
        self._fn = fn

    def remote(self, *args, **kwargs):
        return self._fn(*args, **kwargs)


class LocalHandle:
    """Wrap a worker object so that ``handle.m.remote(...)`` calls ``obj.m(...)`` directly."""

    def __init__(self, obj: Any):
        self._obj = obj

    def __getattr__(self, name: str) -> _LocalMethod:
        return _LocalMethod(getattr(self._obj, name))

    @property
    def obj(self) -> Any:
        return self._obj


def _is_object_ref(x: Any) -> bool:
    return type(x).__name__ == "ObjectRef"


def resolve(x: Any) -> Any:
    """The value behind ``x``: ``ray.get(x)`` for a Ray ObjectRef, ``x.result()`` for a
    :class:`concurrent.futures.Future`, ``x`` itself otherwise."""
    if _is_object_ref(x):
        import ray

        return ray.get(x)
    if isinstance(x, Future):
        return x.result()
    return x


def is_ready(x: Any, timeout: float = 0.0) -> bool:
    """Whether :func:`resolve` would return ``x``'s value without waiting, after waiting up to
    ``timeout`` seconds for it. A plain value is always ready."""
    if _is_object_ref(x):
        import ray

        done, _ = ray.wait([x], timeout=timeout)
        return bool(done)
    if isinstance(x, Future):
        return bool(wait([x], timeout=timeout).done)
    return True
