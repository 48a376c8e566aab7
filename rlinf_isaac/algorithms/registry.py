"""Name -> function registries for advantage estimators, policy losses and value losses.

Each registry is filled by a decorator placed on the implementing function::

    @register_advantage("gae")
    def gae(rewards, values, terminated, truncated, ...): ...

and read back with :func:`get_advantage` / :func:`get_policy_loss` / :func:`get_value_loss`.
An unknown name raises :class:`UnknownAlgorithmError` listing the registered names. The
built-in implementations live in ``advantages.py`` and ``losses.py``; they are imported on
the first look-up, so importing this module alone stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

__all__ = [
    "UnknownAlgorithmError",
    "register_advantage",
    "register_policy_loss",
    "register_value_loss",
    "get_advantage",
    "get_policy_loss",
    "get_value_loss",
    "list_advantages",
    "list_policy_losses",
    "list_value_losses",
]

F = TypeVar("F", bound=Callable)

# Modules whose import registers the built-in functions.
_BUILTIN_MODULES = ("rlinf_isaac.algorithms.advantages", "rlinf_isaac.algorithms.losses")


class UnknownAlgorithmError(ValueError):
    """A name was looked up in an algorithm registry that does not hold it."""


class _Registry:
    """One name -> function table; ``kind`` names it in error messages."""

    def __init__(self, kind: str, config_key: str):
        self.kind = kind
        self.config_key = config_key
        self._fns: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[F], F]:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")

        def wrap(fn: F) -> F:
            old = self._fns.get(name)
            same = old is not None and _where(old) == _where(fn)  # a module re-import
            if old is not None and not same:
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice ({_where(old)} and {_where(fn)})"
                )
            self._fns[name] = fn
            return fn

        return wrap

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._fns)

    def get(self, name: str) -> Callable:
        _load_builtins()
        if name not in self._fns:
            raise UnknownAlgorithmError(
                f"{self.config_key}: unknown {self.kind} {name!r}; registered {self.kind}s: "
                f"{', '.join(sorted(self._fns))}"
            )
        return self._fns[name]


def _where(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


_ADVANTAGES = _Registry("advantage estimator", "algorithm.adv_type")
_POLICY_LOSSES = _Registry("policy loss", "algorithm.loss_type")
_VALUE_LOSSES = _Registry("value loss", "algorithm.value_loss_type")


def register_advantage(name: str) -> Callable[[F], F]:
    """Decorator: register an advantage estimator under ``name``."""
    return _ADVANTAGES.register(name)


def register_policy_loss(name: str) -> Callable[[F], F]:
    """Decorator: register a policy loss ``fn(...) -> (loss, metrics)`` under ``name``."""
    return _POLICY_LOSSES.register(name)


def register_value_loss(name: str) -> Callable[[F], F]:
    """Decorator: register a value loss ``fn(...) -> (loss, metrics)`` under ``name``."""
    return _VALUE_LOSSES.register(name)


def get_advantage(name: str) -> Callable:
    """The advantage estimator registered as ``name`` (error lists the registered ones)."""
    return _ADVANTAGES.get(name)


def get_policy_loss(name: str) -> Callable:
    """The policy loss registered as ``name`` (error lists the registered ones)."""
    return _POLICY_LOSSES.get(name)


def get_value_loss(name: str) -> Callable:
    """The value loss registered as ``name`` (error lists the registered ones)."""
    return _VALUE_LOSSES.get(name)


def list_advantages() -> list[str]:
    """Registered advantage estimator names, sorted."""
    return _ADVANTAGES.names()


def list_policy_losses() -> list[str]:
    """Registered policy loss names, sorted."""
    return _POLICY_LOSSES.names()


def list_value_losses() -> list[str]:
    """Registered value loss names, sorted."""
    return _VALUE_LOSSES.names()
