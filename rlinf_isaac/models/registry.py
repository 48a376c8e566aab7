"""Policies by name: each registers its ``actor.model`` config class and how to build it.

``actor.model.model_name`` picks the entry; the strict config loader then reads the rest of
``actor.model`` into that entry's config class (unknown keys and bad values are config errors
naming the key), and :func:`build_policy` builds the policy from that same object in the rollout
and actor workers. A new policy family is one config class with the decorator::

    @register_policy("my_vla", build="my_pkg.modeling:build_my_vla")
    @dataclass
    class MyVLAConfig(PolicyConfig):
        model_name: str = "my_vla"
        ...

Importing this module imports no model code (the builder is imported when a policy is built).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from rlinf_isaac.config.structured import ConfigError, check

if TYPE_CHECKING:
    from rlinf_isaac.config.schema import AlgorithmConfig

__all__ = ["PolicyConfig", "PolicyEntry", "build_policy", "check_policy_checkpoint", "get_policy", "list_policies",
           "register_policy", "resolve_checkpoint_path"]

DEFAULT_POLICY = "gr00t"
_BUILTIN_MODULES = ("rlinf_isaac.models.gr00t.policy_config",)
_GRANULARITY = {"chunk_level": "chunk", "action_level": "action"}
C = TypeVar("C", bound=type)


@dataclass
class PolicyConfig:
    """``actor.model``: the keys every policy has; a policy's registered subclass adds its own."""

    model_name: str = DEFAULT_POLICY  # a registered policy (models/registry.py)
    checkpoint_path: Optional[str] = None  # local checkpoint dir; None: random init (tests, benchmarks)
    num_action_chunks: int = 16  # C actions executed per policy decision
    action_dim: int = 7  # A env action dims

    def __post_init__(self) -> None:
        check(self.num_action_chunks >= 1, "actor.model.num_action_chunks", self.num_action_chunks, "an integer >= 1")
        check(self.action_dim >= 1, "actor.model.action_dim", self.action_dim, "an integer >= 1")

    @classmethod
    def registered_subclasses(cls) -> list[type]:
        """The config classes of every registered policy (the configuration reference lists them)."""
        return [get_policy(name).config_class for name in list_policies()]

    @classmethod
    def resolve_subclass(cls, data: dict) -> type:
        """The registered config class named by ``data["model_name"]`` (the strict loader's hook)."""
        return get_policy(data.get("model_name", DEFAULT_POLICY)).config_class


@dataclass(frozen=True)
class PolicyEntry:
    """A registered policy: its name, ``actor.model`` config class, builder and optional
    checkpoint checker (each "module:function")."""

    name: str
    config_class: type
    build: str
    check: Optional[str] = None

    def builder(self) -> Callable[..., Any]:
        return _import(self.build)

    def checker(self) -> Optional[Callable[[Path], Any]]:
        return _import(self.check) if self.check else None


def _import(target: str) -> Callable[..., Any]:
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)


_POLICIES: dict[str, PolicyEntry] = {}


def register_policy(name: str, build: str, check: Optional[str] = None) -> Callable[[C], C]:
    """Class decorator: register a :class:`PolicyConfig` subclass as ``actor.model`` of policy
    ``name``, built by ``build`` = "module:function" (``function(cfg, *, device, seed,
    logprob_granularity, value_granularity)`` returns the policy). ``check`` = "module:function"
    (``function(checkpoint_dir)`` returns a report with ``ok``, ``verdict()`` and ``format()``)
    inspects ``actor.model.checkpoint_path`` before any worker starts."""

    def wrap(config_class: C) -> C:
        if not (isinstance(config_class, type) and issubclass(config_class, PolicyConfig)):
            raise TypeError(f"register_policy({name!r}) decorates a PolicyConfig subclass, got {config_class!r}")
        old = _POLICIES.get(name)
        if old is not None and old.config_class.__qualname__ != config_class.__qualname__:
            raise ValueError(f"policy {name!r} is registered twice ({old.config_class} and {config_class})")
        _POLICIES[name] = PolicyEntry(name, config_class, build, check)
        return config_class

    return wrap


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def get_policy(name: str) -> PolicyEntry:
    """The registered policy ``name``; an unknown name is a config error listing the registered ones."""
    _load_builtins()
    if name not in _POLICIES:
        raise ConfigError(f"actor.model.model_name = {name!r}: expected a registered policy ({', '.join(sorted(_POLICIES))})")
    return _POLICIES[name]


def list_policies() -> list[str]:
    """Registered policy names, sorted."""
    _load_builtins()
    return sorted(_POLICIES)


def default_policy_config() -> PolicyConfig:
    """``actor.model`` when the YAML gives none: the default policy's defaults."""
    return get_policy(DEFAULT_POLICY).config_class()


def resolve_checkpoint_path(path: str | None) -> Path | None:
    """A relative checkpoint path is taken from the repository root when not found as given."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists() and not p.is_absolute():
        repo = Path(__file__).resolve().parents[2] / p
        if repo.exists():
            return repo
    if not p.exists():
        raise FileNotFoundError(
            f"actor.model.checkpoint_path = {path!r}: no such directory. Point it at a local GR00T "
            f"checkpoint (config.json + safetensors); the tiny SFT checkpoints are made by "
            f"scripts/make_tiny_sft.sh"
        )
    return p


def check_policy_checkpoint(model: PolicyConfig) -> Optional[str]:
    """Check ``actor.model.checkpoint_path`` with its policy's checker, reading no weights.

    Returns the checker's verdict line (None without a checkpoint or a checker); a checkpoint
    that would not load raises ConfigError holding the checker's whole report.
    """
    path = resolve_checkpoint_path(model.checkpoint_path)
    checker = get_policy(model.model_name).checker() if path is not None else None
    if checker is None:
        return None
    report = checker(path)
    if not report.ok:
        raise ConfigError(f"actor.model.checkpoint_path = {model.checkpoint_path!r} would not load:\n{report.format()}")
    return report.verdict()


def build_policy(model: PolicyConfig, algo: "AlgorithmConfig", device: str = "cpu", seed: int = 0):
    """The policy of ``actor.model`` on ``device``; ``algo`` gives the log-prob and value
    granularities (``algorithm.logprob_type``, ``algorithm.reward_type``)."""
    build = get_policy(model.model_name).builder()
    return build(model, device=device, seed=seed, logprob_granularity=_GRANULARITY[algo.logprob_type],
                 value_granularity=_GRANULARITY[algo.reward_type])
