"""Compose Hydra YAML from the repository's ``config/`` folder and validate it into :class:`Config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from rlinf_isaac.config.environment import apply_env_overrides
from rlinf_isaac.config.schema import Config
from rlinf_isaac.config.structured import ConfigError, from_dict

__all__ = ["CONFIG_DIR", "list_configs", "compose", "load_config"]

# config/ at the repository root; RLINF_ISAAC_CONFIG_DIR (or the command line's --config-dir) points elsewhere.
CONFIG_DIR = Path(os.environ.get("RLINF_ISAAC_CONFIG_DIR", Path(__file__).resolve().parents[2] / "config"))


def list_configs(config_dir: Path | str = CONFIG_DIR) -> list[str]:
    """Names of the experiment configs (top-level YAML files) in ``config_dir``."""
    return sorted(p.stem for p in Path(config_dir).glob("*.yaml"))


def compose(name: str, overrides: Sequence[str] = (), config_dir: Path | str = CONFIG_DIR) -> dict:
    """Compose ``name`` (+ Hydra ``key=value`` overrides) into a plain, resolved dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config_dir = Path(config_dir).resolve()
    if name.endswith(".yaml"):
        name = name[: -len(".yaml")]
    if name not in list_configs(config_dir):
        raise ConfigError(
            f"config {name!r} not found in {config_dir}; available configs: {', '.join(list_configs(config_dir))}"
        )
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            base = hydra_compose(config_name=name, overrides=[o for o in overrides if _is_group_choice(o)])
            cfg = hydra_compose(config_name=name, overrides=_add_missing_keys(base, overrides))
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"composing config {name!r} with overrides {list(overrides)} failed: {e}") from None


def _is_group_choice(override: str) -> bool:
    """``cluster=2gpu_hybrid``, ``env@env.train=isaaclab_stack``: a config group's choice, not a key."""
    key = override.partition("=")[0]
    return not key.startswith(("+", "~")) and ("." not in key or "@" in key or "/" in key)


def _add_missing_keys(base, overrides: Sequence[str]) -> list[str]:
    """Turn ``key=value`` for a key the YAML doesn't set into ``+key=value``.

    Hydra only overrides keys present in the composed YAML; schema keys left at their
    defaults (``runner.resume_dir``, ...) must still be settable from the command line.
    ``base`` is composed with the overrides' group choices, so ``cluster=X cluster.key=v``
    sets a key of the chosen group.
    Whether a key exists at all is then decided by the schema, with a did-you-mean error.
    """
    from omegaconf import OmegaConf

    missing = object()
    out = []
    for o in overrides:
        key, eq, _ = o.partition("=")
        plain = eq and not key.startswith(("+", "~")) and "@" not in key and "/" not in key
        if plain and "." in key and OmegaConf.select(base, key, default=missing) is missing:
            o = "+" + o
        out.append(o)
    return out


def load_config(name: str, overrides: Sequence[str] = (), config_dir: Path | str = CONFIG_DIR) -> Config:
    """Compose, apply the documented environment overrides (``config/environment.py``) and
    strictly validate a config: unknown keys and bad values raise ConfigError."""
    return from_dict(Config, apply_env_overrides(compose(name, overrides, config_dir)))
