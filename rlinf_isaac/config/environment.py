"""Environment variables that override schema keys, applied when a config is loaded.

Every behaviour switch is a schema key; a few may also be set from the environment, which
overrides the composed YAML and the command line (handy on a cluster whose job scripts export
them). The start-up banner prints each switch with its value and, when it came from the
environment, the variable's name.

==========================  ======================================  ==============================
variable                    key                                     values
==========================  ======================================  ==============================
``RLINF_CUDA_IPC``          ``cluster.cuda_ipc``                    1/true/on, 0/false/off
``RLINF_TENSOR_TRANSPORT``  ``cluster.tensor_transport``            bytes, pickle
``RLINF_ISAACLAB_PYTHON``   ``env.train.isaaclab.python`` (+ eval)  a Python interpreter path
``RLINF_TASK_MODULES``      ``env.train.task_modules`` (+ eval)     comma-separated modules, added
==========================  ======================================  ==============================

``RLINF_ISAAC_CONFIG_DIR`` (or ``--config-dir``) chooses the folder configs are read from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from rlinf_isaac.config.structured import ConfigError

__all__ = ["ENV_OVERRIDES", "EnvOverride", "apply_env_overrides", "describe_switches"]

_TRUE, _FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def _parse_bool(var: str, key: str, raw: str) -> bool:
    v = raw.strip().lower()
    if v not in _TRUE + _FALSE:
        raise ConfigError(f"{var}={raw!r} (sets {key}): expected 1/true/on or 0/false/off")
    return v in _TRUE


def _parse_choice(*choices: str) -> Callable[[str, str, str], str]:
    def parse(var: str, key: str, raw: str) -> str:
        if raw not in choices:
            raise ConfigError(f"{var}={raw!r} (sets {key}): expected one of {', '.join(choices)}")
        return raw

    return parse


def _parse_modules(var: str, key: str, raw: str) -> list[str]:
    return [m.strip() for m in raw.split(",") if m.strip()]


@dataclass(frozen=True)
class EnvOverride:
    """``var`` sets ``key`` (dotted; ``env.*`` means every env group present)."""

    var: str
    key: str
    parse: Callable[[str, str, str], Any]
    append: bool = False  # lists: add to the configured items instead of replacing them


ENV_OVERRIDES = (
    EnvOverride("RLINF_CUDA_IPC", "cluster.cuda_ipc", _parse_bool),
    EnvOverride("RLINF_TENSOR_TRANSPORT", "cluster.tensor_transport", _parse_choice("bytes", "pickle")),
    EnvOverride("RLINF_ISAACLAB_PYTHON", "env.*.isaaclab.python", lambda var, key, raw: raw),
    EnvOverride("RLINF_TASK_MODULES", "env.*.task_modules", _parse_modules, append=True),
)


def _targets(data: dict, key: str) -> list[tuple[dict, str]]:
    """(parent mapping, leaf name) of every place ``key`` names in ``data`` (creating sections)."""
    parts = key.split(".")
    parents = [data]
    for part in parts[:-1]:
        nxt = []
        for p in parents:
            children = [v for v in p.values() if isinstance(v, dict)] if part == "*" else [p.setdefault(part, {})]
            nxt += children
        parents = nxt
    return [(p, parts[-1]) for p in parents]


def apply_env_overrides(data: dict, environ: dict[str, str] | None = None) -> dict:
    """Apply the set variables of :data:`ENV_OVERRIDES` to a composed config dict (in place)."""
    environ = os.environ if environ is None else environ
    for o in ENV_OVERRIDES:
        raw = environ.get(o.var)
        if raw is None or raw == "":
            continue
        value = o.parse(o.var, o.key, raw)
        for parent, leaf in _targets(data, o.key):
            if o.append:
                old = list(parent.get(leaf) or [])
                value_list = old + [v for v in value if v not in old]
                parent[leaf] = value_list
            else:
                parent[leaf] = value
    return data


def describe_switches(cfg: Any, environ: dict[str, str] | None = None) -> str:
    """One line: the transfer switches' values, naming the variable of any set from the environment."""
    environ = os.environ if environ is None else environ
    c = cfg.cluster
    items = [("cluster.cuda_ipc", str(c.cuda_ipc).lower(), "RLINF_CUDA_IPC"),
             ("cluster.tensor_transport", c.tensor_transport, "RLINF_TENSOR_TRANSPORT")]
    return "switches: " + ", ".join(f"{k}={v}" + (f" (from {var})" if environ.get(var) else "")
                                    for k, v, var in items)
