"""Uniform calls to workers that live in Ray actors or in this process.

``handle.method.remote(*args)`` works for both a Ray actor handle and a :class:`LocalHandle`;
:func:`resolve` turns the result into a value (``ray.get`` for object refs, identity otherwise).
The in-process form runs the exact same worker code without Ray (debugging, unit tests).
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalHandle", "resolve"]


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


def resolve(x: Any) -> Any:
    """The value behind ``x``: ``ray.get(x)`` for a Ray ObjectRef, ``x`` itself otherwise."""
    if type(x).__name__ == "ObjectRef":
        import ray

        return ray.get(x)
    return x
