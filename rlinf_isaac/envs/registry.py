"""Task registry: task ids -> factories that build a :class:`BatchedEnv`.

Backends register their tasks with :func:`register_task`; heavy simulator imports stay
inside the factories, so listing tasks never imports Isaac Lab.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

from rlinf_isaac.envs.base import BatchedEnv

__all__ = ["TaskEntry", "register_task", "make_env", "list_tasks", "get_task", "add_task_modules", "TASK_MODULES_ENV"]


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: its id, backend name, a one-line description and a factory."""

    task_id: str
    backend: str
    description: str
    factory: Callable[..., BatchedEnv]


_TASKS: dict[str, TaskEntry] = {}

# Modules whose import registers tasks. Importing them must stay cheap (no simulator).
# Users add their own with RLINF_TASK_MODULES (comma separated) or ``env.*.task_modules``;
# the env worker exports that variable, so simulator subprocesses import them too.
_TASK_MODULES = ("rlinf_isaac.tasks",)
TASK_MODULES_ENV = "RLINF_TASK_MODULES"


def register_task(task_id: str, backend: str, description: str = ""):
    """Decorator: register ``factory(num_envs=..., **kwargs) -> BatchedEnv`` under ``task_id``."""

    def wrap(factory: Callable[..., BatchedEnv]) -> Callable[..., BatchedEnv]:
        if task_id in _TASKS and _TASKS[task_id].factory is not factory:
            raise ValueError(f"task id {task_id!r} is registered twice")
        _TASKS[task_id] = TaskEntry(task_id, backend, description, factory)
        return factory

    return wrap


def _load_builtin_tasks() -> None:
    extra = [m.strip() for m in os.environ.get(TASK_MODULES_ENV, "").split(",") if m.strip()]
    for mod in (*_TASK_MODULES, *extra):
        try:
            importlib.import_module(mod)
        except ImportError as e:
            if mod in _TASK_MODULES:
                raise
            raise ImportError(
                f"task module {mod!r} (from {TASK_MODULES_ENV} / env.*.task_modules) cannot be "
                f"imported: {e}; it must be importable in every worker (installed or on PYTHONPATH)"
            ) from e


def add_task_modules(modules: list[str] | tuple[str, ...]) -> None:
    """Make ``modules`` register their tasks here and in every process started from here."""
    current = [m for m in os.environ.get(TASK_MODULES_ENV, "").split(",") if m]
    merged = current + [m for m in modules if m not in current]
    if merged:
        os.environ[TASK_MODULES_ENV] = ",".join(merged)
    _load_builtin_tasks()


def list_tasks(backend: str | None = None) -> list[str]:
    """Registered task ids, sorted; optionally only those of one backend."""
    _load_builtin_tasks()
    return sorted(t for t, e in _TASKS.items() if backend is None or e.backend == backend)


def get_task(task_id: str) -> TaskEntry:
    """The registry entry of ``task_id``; an unknown id raises a KeyError listing valid ids."""
    _load_builtin_tasks()
    try:
        return _TASKS[task_id]
    except KeyError:
        valid = "\n  ".join(list_tasks())
        raise KeyError(f"unknown task id {task_id!r}; registered task ids:\n  {valid}") from None


def make_env(task_id: str, **kwargs: Any) -> BatchedEnv:
    """Build the batched env registered under ``task_id`` (kwargs go to its factory)."""
    return get_task(task_id).factory(**kwargs)
