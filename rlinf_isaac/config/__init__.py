"""Typed run configuration: schema, strict loading from Hydra YAML, validation with clear errors."""

import importlib

from rlinf_isaac.config.structured import ConfigError, check, from_dict, to_dict

__all__ = [
    "ActorConfig", "AlgorithmConfig", "ClusterConfig", "Config", "ConfigError", "EnvConfig",
    "EnvGroupConfig", "IsaacLabOptions", "LoggerConfig", "OptimConfig", "RolloutConfig",
    "RunnerConfig", "VideoConfig", "CONFIG_DIR", "check", "compose", "from_dict", "list_configs",
    "load_config", "to_dict", "validate",
]

_LOADER = ("CONFIG_DIR", "compose", "list_configs", "load_config")


def __getattr__(name: str):
    # lazy: the schema names the registered policy configs, whose module reads the strict loader
    # (config.structured) of this package; importing the schema here would make that a cycle
    if name in __all__:
        module = "loader" if name in _LOADER else "schema"
        return getattr(importlib.import_module(f"rlinf_isaac.config.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
