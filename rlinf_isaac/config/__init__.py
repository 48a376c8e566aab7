"""Typed run configuration: schema, strict loading from Hydra YAML, validation with clear errors."""

from rlinf_isaac.config.loader import CONFIG_DIR, compose, list_configs, load_config
from rlinf_isaac.config.schema import (
    ActorConfig,
    AlgorithmConfig,
    ClusterConfig,
    Config,
    EnvConfig,
    EnvGroupConfig,
    IsaacLabOptions,
    LoggerConfig,
    OptimConfig,
    RolloutConfig,
    RunnerConfig,
    VideoConfig,
    validate,
)
from rlinf_isaac.config.structured import ConfigError, from_dict, to_dict

__all__ = [
    "ActorConfig", "AlgorithmConfig", "ClusterConfig", "Config", "ConfigError", "EnvConfig",
    "EnvGroupConfig", "IsaacLabOptions", "LoggerConfig", "OptimConfig", "RolloutConfig",
    "RunnerConfig", "VideoConfig", "CONFIG_DIR", "compose", "from_dict", "list_configs",
    "load_config", "to_dict", "validate",
]
