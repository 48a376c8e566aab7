"""Name -> object registries: algorithms, advantage estimators, policy losses, value losses.

Each registry is filled by a decorator on the implementing class or function::

    @register_algorithm("ppo")
    class PPO(Algorithm): ...

    @register_advantage("gae", algorithm="ppo")
    def gae(rewards, values, terminated, truncated, final_values=None, *, gamma, gae_lambda): ...

An estimator names the algorithm that feeds it: the algorithm decides which tensors of a
trajectory it receives (``Algorithm.estimator_signature``), so ``algorithm.adv_type`` alone
picks both. A look-up of an unknown name raises :class:`UnknownAlgorithmError` (a
:class:`~rlinf_isaac.config.structured.ConfigError`) naming the config key and listing the
registered names. The built-ins live in ``ppo.py``, ``grpo.py``, ``advantages.py`` and
``losses.py``; they are imported on the first look-up, so importing this module stays cheap.
User modules register theirs on import (``algorithm.modules`` in the config imports them in
the driver and in every actor worker).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from rlinf_isaac.config.structured import ConfigError

__all__ = [
    "UnknownAlgorithmError",
    "import_modules",
    "register_algorithm",
    "register_advantage",
    "register_policy_loss",
    "register_value_loss",
    "get_algorithm_class",
    "get_advantage",
    "advantage_algorithm",
    "get_policy_loss",
    "get_value_loss",
    "list_algorithms",
    "list_advantages",
    "list_policy_losses",
    "list_value_losses",
]

F = TypeVar("F", bound=Callable)

# Modules whose import registers the built-ins.
_BUILTIN_MODULES = ("rlinf_isaac.algorithms.advantages", "rlinf_isaac.algorithms.losses",
                    "rlinf_isaac.algorithms.ppo", "rlinf_isaac.algorithms.grpo")


class UnknownAlgorithmError(ConfigError):
    """A name was looked up in an algorithm registry that does not hold it."""


class _Registry:
    """One name -> object table; ``kind`` and ``config_key`` name it in error messages."""

    def __init__(self, kind: str, config_key: str):
        self.kind, self.config_key = kind, config_key
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[F], F]:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")

        def wrap(obj: F) -> F:
            old = self._items.get(name)
            if old is not None and _where(old) != _where(obj):  # the same one: a module re-import
                raise ValueError(f"{self.kind} {name!r} is registered twice ({_where(old)} and {_where(obj)})")
            self._items[name] = obj
            return obj

        return wrap

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._items)

    def get(self, name: str) -> Any:
        _load_builtins()
        if name not in self._items:
            raise UnknownAlgorithmError(
                f"{self.config_key}: unknown {self.kind} {name!r}; registered {self.kind}s: "
                f"{', '.join(sorted(self._items))} (a user module registers more: algorithm.modules)")
        return self._items[name]


def _where(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def import_modules(modules: list[str] | tuple[str, ...], key: str = "algorithm.modules") -> None:
    """Import user modules whose import registers algorithms, estimators or losses."""
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise ConfigError(f"{key}: module {mod!r} cannot be imported ({e}); it must be importable in "
                              f"every worker (installed, or on PYTHONPATH)") from None


_ALGORITHMS = _Registry("algorithm", "algorithm (an estimator's algorithm=)")
_ADVANTAGES = _Registry("advantage estimator", "algorithm.adv_type")
_POLICY_LOSSES = _Registry("policy loss", "algorithm.loss_type")
_VALUE_LOSSES = _Registry("value loss", "algorithm.value_loss_type")
_ESTIMATOR_ALGORITHM: dict[str, str] = {}  # estimator name -> the algorithm that feeds it


def register_algorithm(name: str) -> Callable[[F], F]:
    """Class decorator: register an :class:`~rlinf_isaac.algorithms.base.Algorithm` under ``name``."""
    return _ALGORITHMS.register(name)


def register_advantage(name: str, *, algorithm: str) -> Callable[[F], F]:
    """Decorator: register an advantage estimator under ``name``, fed by the registered
    ``algorithm`` (whose ``estimator_signature`` says what the function receives)."""
    if not isinstance(algorithm, str) or not algorithm:
        raise ValueError(f"register_advantage({name!r}): algorithm must name a registered algorithm")
    wrap = _ADVANTAGES.register(name)

    def record(fn: F) -> F:
        wrap(fn)
        _ESTIMATOR_ALGORITHM[name] = algorithm
        return fn

    return record


def register_policy_loss(name: str) -> Callable[[F], F]:
    """Decorator: register a policy loss ``fn(logprobs, old_logprobs, advantages, mask, *,
    clip_ratio_low, clip_ratio_high, clip_ratio_c) -> (loss, metrics)`` under ``name``."""
    return _POLICY_LOSSES.register(name)


def register_value_loss(name: str) -> Callable[[F], F]:
    """Decorator: register a value loss ``fn(values, old_values, returns, mask, *, value_clip,
    huber_delta) -> (loss, metrics)`` under ``name``."""
    return _VALUE_LOSSES.register(name)


def get_algorithm_class(name: str) -> type:
    """The algorithm class registered as ``name``."""
    return _ALGORITHMS.get(name)


def get_advantage(name: str) -> Callable:
    """The advantage estimator registered as ``name`` (error lists the registered ones)."""
    return _ADVANTAGES.get(name)


def advantage_algorithm(name: str) -> str:
    """Name of the algorithm that feeds the estimator ``name``."""
    _ADVANTAGES.get(name)
    return _ESTIMATOR_ALGORITHM[name]


def get_policy_loss(name: str) -> Callable:
    """The policy loss registered as ``name`` (error lists the registered ones)."""
    return _POLICY_LOSSES.get(name)


def get_value_loss(name: str) -> Callable:
    """The value loss registered as ``name`` (error lists the registered ones)."""
    return _VALUE_LOSSES.get(name)


def list_algorithms() -> list[str]:
    """Registered algorithm names, sorted."""
    return _ALGORITHMS.names()


def list_advantages() -> list[str]:
    """Registered advantage estimator names, sorted."""
    return _ADVANTAGES.names()


def list_policy_losses() -> list[str]:
    """Registered policy loss names, sorted."""
    return _POLICY_LOSSES.names()


def list_value_losses() -> list[str]:
    """Registered value loss names, sorted."""
    return _VALUE_LOSSES.names()
