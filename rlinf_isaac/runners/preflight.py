"""Checks of a run's inputs that need no worker, run by the controller before Ray starts.

Each failure is a ConfigError naming the key, the value and the fix: the env task ids (after
importing ``env.<group>.task_modules``), ``runner.resume_dir`` (a complete checkpoint, read
from its meta.json and file sizes) and ``actor.model.checkpoint_path`` (the policy's own
checker; for GR00T, ``python -m rlinf_isaac.models.gr00t.check``).
"""

from __future__ import annotations

from rlinf_isaac.config.schema import Config
from rlinf_isaac.config.structured import ConfigError

__all__ = ["preflight"]


def preflight(cfg: Config) -> list[str]:
    """Check ``cfg``'s tasks, resume checkpoint and policy checkpoint; returns lines to print."""
    _check_tasks(cfg)
    lines = []
    if cfg.runner.resume_dir:
        lines.append(f"resume: {_check_resume(cfg.runner.resume_dir)}")
    from rlinf_isaac.models.registry import check_policy_checkpoint

    verdict = check_policy_checkpoint(cfg.actor.model)
    if verdict:
        lines.append(f"checkpoint: {verdict}")
    return lines


def _check_tasks(cfg: Config) -> None:
    from rlinf_isaac.envs.registry import add_task_modules, get_task, list_tasks

    for group, env in (("train", cfg.env.train), ("eval", cfg.env.eval)):
        if env is None:
            continue
        add_task_modules(env.task_modules)
        try:
            get_task(env.task_id)
        except KeyError:
            raise ConfigError(
                f"env.{group}.task_id = {env.task_id!r}: no such task. Registered: {', '.join(list_tasks())}. "
                f"A task of your own: list the module that registers it in env.{group}.task_modules"
            ) from None


def _check_resume(resume_dir: str) -> str:
    """The checkpoint ``runner.resume_dir`` resolves to, checked complete (no tensors read)."""
    from rlinf_isaac.runners.checkpoint import CheckpointError, read_checkpoint_meta, resolve_checkpoint

    try:
        path = resolve_checkpoint(resume_dir)
        step = read_checkpoint_meta(path)["step"]
    except CheckpointError as e:
        raise ConfigError(
            f"runner.resume_dir = {resume_dir!r}: {e}. Point it at a run's checkpoints folder (its 'latest' "
            f"is taken) or one of its global_step_N folders, or leave it out to start a new run"
        ) from None
    return f"global step {step} from {path}"
