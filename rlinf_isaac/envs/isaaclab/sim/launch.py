"""Builds the real Isaac Lab env inside the simulator process (Isaac Lab 2.3 or 3.0).

Order matters and is the reason this module exists:

* 2.3: Isaac Sim's ``AppLauncher`` must exist before torch or any ``isaaclab`` module is
  imported (Kit replaces parts of the runtime). :func:`build_isaaclab_env` launches it
  first (headless, cameras on), then imports the tasks.
* 3.0: config modules import without Kit; ``launch_simulation(env_cfg, args)`` decides
  from the resolved config whether Kit is needed (RTX cameras) or not (kit-less Newton).

The task id is resolved from what the installed version registers, the env config from
the registry entry point (``gymnasium.spec(id).kwargs["env_cfg_entry_point"]``).
Nothing here is imported by the env worker.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from typing import Any

__all__ = [
    "isaaclab_version",
    "quat_order_for",
    "import_task_packages",
    "resolve_isaaclab_id",
    "load_env_cfg",
    "configure_env_cfg",
    "build_isaaclab_env",
    "resolve_stack",
]

_TASK_PACKAGES = ("isaaclab_tasks", "isaaclab_tasks.contrib.stack", "isaaclab_contrib")


def isaaclab_version() -> str:
    """Installed Isaac Lab version, read from package metadata (imports nothing)."""
    for dist in ("isaaclab", "isaaclab-core"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise RuntimeError("Isaac Lab is not installed in this interpreter (no 'isaaclab' distribution)")


def quat_order_for(version: str) -> str:
    """Quaternion order of Isaac Lab observations: WXYZ before 3.0, XYZW from 3.0 on."""
    major = int(version.split(".")[0])
    return "xyzw" if major >= 3 else "wxyz"


def import_task_packages() -> list[str]:
    """Import the packages whose import registers Isaac Lab's gym ids; return those found."""
    found = []
    for name in _TASK_PACKAGES:
        try:
            importlib.import_module(name)
            found.append(name)
        except ImportError:
            continue
    return found


def resolve_isaaclab_id(candidates: tuple[str, ...]) -> str:
    """The first of ``candidates`` that the installed Isaac Lab registers with gymnasium."""
    import gymnasium

    for task_id in candidates:
        if task_id in gymnasium.registry:
            return task_id
    stack = sorted(t for t in gymnasium.registry if "Stack" in t)
    raise KeyError(f"none of {list(candidates)} is registered by Isaac Lab {isaaclab_version()}; "
                   f"registered stack ids: {stack}")


def load_env_cfg(isaaclab_id: str) -> Any:
    """Instantiate the env cfg named by the registry entry point of ``isaaclab_id``."""
    import gymnasium

    entry = gymnasium.spec(isaaclab_id).kwargs["env_cfg_entry_point"]
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name)
    return entry() if callable(entry) else entry


def configure_env_cfg(env_cfg: Any, task: Any, *, num_envs: int, image_size, max_episode_steps: int,
                      reward_type: str, action_scale, seed: int, device: str, reward_term_cls: Any) -> Any:
    """Apply our settings to an Isaac Lab stack env cfg: envs, device, cameras, length, rewards."""
    from rlinf_isaac.tasks.isaaclab_stack import StackRewardCfg, add_stack_rewards

    env_cfg.scene.num_envs = num_envs
    env_cfg.sim.device = device
    env_cfg.seed = seed
    h, w = image_size
    for cam in task.camera_terms:
        cam_cfg = getattr(env_cfg.scene, cam)
        cam_cfg.height, cam_cfg.width = int(h), int(w)
    if action_scale is not None:
        env_cfg.actions.arm_action.scale = float(action_scale)
    step_dt = env_cfg.sim.dt * env_cfg.decimation
    # Isaac Lab's own time-out fires half a step after ours, so our truncation is exact.
    env_cfg.episode_length_s = (max_episode_steps + 0.5) * step_dt
    add_stack_rewards(env_cfg, StackRewardCfg(reward_type=reward_type), reward_term_cls, step_dt)
    return env_cfg


def _launch_app_23(headless: bool, enable_cameras: bool, device: str):
    from isaaclab.app import AppLauncher  # first isaaclab import, before torch

    return AppLauncher(headless=headless, enable_cameras=enable_cameras, device=device).app


STACKS = ("auto", "newton", "isaac_sim")
NEWTON_PACKAGES = ("isaaclab_newton", "newton", "mujoco_warp", "warp")
NEWTON_INSTALL = "bash scripts/isaaclab_lane/run.sh --install (or pip install the pins of scripts/isaaclab_lane/)"


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_stack(stack: str, version: str) -> str:
    """The simulator stack to run: ``isaac_sim`` (Kit, PhysX, RTX cameras) or ``newton``
    (kit-less: MuJoCo-Warp physics, Warp cameras). ``auto``: Isaac Sim when it is installed (and
    always for Isaac Lab 2.x), Newton otherwise. Errors name what is missing and how to fix it."""
    if stack not in STACKS:
        raise ValueError(f"env.isaaclab.stack = {stack!r}: expected one of {STACKS}")
    major = int(version.split(".")[0])
    if stack == "auto":
        stack = "isaac_sim" if major < 3 or _installed("isaacsim") else "newton"
    if stack == "newton":
        if major < 3:
            raise RuntimeError(f"env.isaaclab.stack = newton needs Isaac Lab 3.0 (installed: {version}); "
                               f"Isaac Lab 2.x runs only with Isaac Sim (stack: isaac_sim)")
        missing = [m for m in NEWTON_PACKAGES if not _installed(m)]
        if missing:
            raise RuntimeError(f"env.isaaclab.stack = newton: missing packages {missing}; install them: {NEWTON_INSTALL}")
    elif not _installed("isaacsim"):
        raise RuntimeError("env.isaaclab.stack = isaac_sim: Isaac Sim is not installed in the simulator's Python, "
                           "so the RTX cameras cannot render; use stack: newton (kit-less: MuJoCo-Warp physics, "
                           f"Newton's Warp ray-traced cameras; {NEWTON_INSTALL})")
    return stack


def build_isaaclab_env(task_id: str, num_envs: int, image_size, max_episode_steps: int, reward_type: str,
                       action_scale=None, seed: int = 0, device: str = "cuda:0", headless: bool = True,
                       enable_cameras: bool = True, launcher_args: dict | None = None, app: Any = None,
                       stack: str = "auto", cfg_hook: str | None = None, cfg_hook_kwargs: dict | None = None) -> dict:
    """Simulator-process builder (see :class:`~rlinf_isaac.envs.isaaclab.process.SimulatorProcess`).

    app: Isaac Sim app already started by the simulator process (2.3); started here if None.
    stack: ``auto``, ``newton`` or ``isaac_sim`` (:func:`resolve_stack`).
    cfg_hook: ``"module:function"`` called as ``function(env_cfg, **cfg_hook_kwargs)`` on the
        finished env cfg before the env is built (e.g. an extra event term).
    """
    version = isaaclab_version()
    stack = resolve_stack(stack, version)
    major = int(version.split(".")[0])
    if major < 3 and app is None:
        app = _launch_app_23(headless, enable_cameras, device)

    from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS

    task = ISAACLAB_STACK_TASKS[task_id]
    import_task_packages()
    isaaclab_id = resolve_isaaclab_id(task.isaaclab_ids)
    env_cfg = load_env_cfg(isaaclab_id)
    refresh = None
    if stack == "newton":
        from rlinf_isaac.envs.isaaclab.sim import newton

        newton.apply_newton_overrides(env_cfg, task)
        refresh = newton.refresh_after_reset
    from isaaclab.managers import RewardTermCfg

    configure_env_cfg(env_cfg, task, num_envs=num_envs, image_size=image_size,
                      max_episode_steps=max_episode_steps, reward_type=reward_type,
                      action_scale=action_scale, seed=seed, device=device, reward_term_cls=RewardTermCfg)
    from rlinf_isaac.envs.isaaclab.sim.events import batch_object_pose_events

    batch_object_pose_events(env_cfg)  # the same cube placements, one write per cube instead of per env
    if cfg_hook:
        from rlinf_isaac.envs.isaaclab.sim.server import load_callable

        load_callable(cfg_hook)(env_cfg, **(cfg_hook_kwargs or {}))
    closers = []
    if major >= 3:
        from isaaclab.app import launch_simulation

        args = {"headless": headless, "enable_cameras": enable_cameras, "device": device, **(launcher_args or {})}
        ctx = launch_simulation(env_cfg, args)
        ctx.__enter__()
        closers.append(lambda: ctx.__exit__(None, None, None))
    elif app is not None:
        closers.append(app.close)
    env_cls = _entry_point_class(isaaclab_id)
    env = env_cls(cfg=env_cfg)
    step_dt = float(env_cfg.sim.dt * env_cfg.decimation)
    desc = STACK_DESCRIPTIONS[stack]
    print(f"[rlinf_isaac] Isaac Lab {version}: {isaaclab_id} with {num_envs} envs on {device}, {desc} "
          f"(pid {os.getpid()})", flush=True)
    return {
        "env": env,
        "stepper": {"quat_order": quat_order_for(version)},
        "info": {"isaaclab_id": isaaclab_id, "isaaclab_version": version, "step_dt": step_dt, "stack": stack,
                 "description": f"Isaac Lab {version} {isaaclab_id}, {desc}, {num_envs} envs on {device}"},
        "close": (lambda: [c() for c in closers]) if closers else None,
        "refresh": refresh,
    }


STACK_DESCRIPTIONS = {"newton": "kit-less Newton (MuJoCo-Warp physics, Warp cameras)",
                      "isaac_sim": "Isaac Sim (PhysX physics, RTX cameras)"}


def _entry_point_class(isaaclab_id: str):
    import gymnasium

    entry = gymnasium.spec(isaaclab_id).entry_point
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        return getattr(importlib.import_module(module), name)
    return entry
