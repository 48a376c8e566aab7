"""Batched equivalents of Isaac Lab's per-env reset events (same draws, same resulting state).

Isaac Lab's stack tasks place the cubes at reset with ``randomize_object_pose``: for each env
in turn it samples the cube poses with python's ``random`` (rejection sampling for a minimum
separation), then writes each cube's pose and zero velocity for that one env. With one
simulator write per cube per env, resetting 1,024 envs costs thousands of small device
writes. :func:`batch_object_pose_events` swaps in a version that samples exactly as the
original does (the same ``sample_object_poses`` calls, env by env, in the same order, so the
same random numbers) and then writes each cube once for all the envs being reset: the
resulting state is the same, in a few writes.

Needs Isaac Lab (imported when an env cfg is patched or the event runs).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

__all__ = ["batch_object_pose_events", "batched_object_pose"]

PER_ENV_EVENT = "randomize_object_pose"


def batch_object_pose_events(env_cfg: Any) -> list[str]:
    """Replace every reset event of ``env_cfg.events`` whose function is Isaac Lab's
    ``randomize_object_pose`` by :func:`batched_object_pose` of it; returns the term names."""
    replaced = []
    events = getattr(env_cfg, "events", None)
    for name in list(vars(events)) if events is not None else []:
        term = getattr(events, name)
        func = getattr(term, "func", None)
        if getattr(term, "mode", None) == "reset" and getattr(func, "__name__", "") == PER_ENV_EVENT:
            term.func = batched_object_pose(func)
            replaced.append(name)
    return replaced


def batched_object_pose(original: Callable) -> Callable:
    """The batched form of Isaac Lab's ``randomize_object_pose`` (``original``), with its signature.

    Samples with ``sample_object_poses`` of the original's module, env by env, then writes each
    object's root pose (position + env origin, quaternion from roll/pitch/yaw) and zero root
    velocity for all the envs at once.
    """
    sample_object_poses = inspect.getmodule(original).sample_object_poses

    def randomize_object_pose(env, env_ids, asset_cfgs, min_separation: float = 0.0,
                              pose_range: dict | None = None, max_sample_tries: int = 5000):
        if env_ids is None:
            return
        envs = list(range(env.num_envs)[env_ids]) if isinstance(env_ids, slice) else torch.as_tensor(env_ids).tolist()
        if not envs:
            return
        from isaaclab.utils import math as math_utils

        # [n envs][objects][x, y, z, roll, pitch, yaw]: the original's draws, in its order
        poses = [sample_object_poses(num_objects=len(asset_cfgs), min_separation=min_separation,
                                     pose_range=pose_range or {}, max_sample_tries=max_sample_tries) for _ in envs]
        table = torch.tensor(poses, device=env.device)  # [n, objects, 6]
        ids = torch.tensor(envs, device=env.device)
        origins = env.scene.env_origins[ids, 0:3]  # [n, 3]
        for i, asset_cfg in enumerate(asset_cfgs):
            asset = env.scene[asset_cfg.name]
            quat = math_utils.quat_from_euler_xyz(table[:, i, 3], table[:, i, 4], table[:, i, 5])
            _write_root_state(asset, torch.cat([table[:, i, 0:3] + origins, quat], dim=-1),
                              torch.zeros(len(envs), 6, device=env.device), ids)

    randomize_object_pose.__wrapped__ = original
    return randomize_object_pose


def _write_root_state(asset: Any, pose: torch.Tensor, velocity: torch.Tensor, ids: torch.Tensor) -> None:
    """Root pose [n, 7] and velocity [n, 6] of envs ``ids``: Isaac Lab 3.0's indexed writers, else 2.x's."""
    if hasattr(asset, "write_root_pose_to_sim_index"):
        asset.write_root_pose_to_sim_index(root_pose=pose, env_ids=ids)
        asset.write_root_velocity_to_sim_index(root_velocity=velocity, env_ids=ids)
    else:
        asset.write_root_pose_to_sim(pose, env_ids=ids)
        asset.write_root_velocity_to_sim(velocity, env_ids=ids)
