"""Test-only reset event for the real stack task: chosen envs start with the three cubes stacked.

Installed through the builder's ``cfg_hook`` (``rlinf_isaac.envs.isaaclab.sim.launch``), so the
task itself stays Isaac Lab's; the event runs after the task's own reset events.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["add_place_stacked", "place_stacked"]

CUBE_EDGE = 0.0468


def place_stacked(env, env_ids, stacked_env_ids: Sequence[int] = (), origin=(0.5, -0.15)):
    """Reset event: in envs listed in ``stacked_env_ids`` put cube_2 on cube_1 and cube_3 on cube_2."""
    import torch

    ids = [e for e in _as_list(env_ids, env.num_envs) if e in set(stacked_env_ids)]
    for e in ids:
        for k, name in enumerate(("cube_1", "cube_2", "cube_3")):
            z = CUBE_EDGE * (k + 0.5)  # cube k rests on cube k-1: centre at (k + 1/2) * edge
            pos = torch.tensor([[origin[0], origin[1], z]], device=env.device) + env.scene.env_origins[e, :3]
            quat = torch.tensor([[0.0, 0.0, 0.0, 1.0]], device=env.device)  # identity, XYZW
            env.scene[name].write_root_pose_to_sim_index(
                root_pose=torch.cat([pos, quat], dim=-1), env_ids=torch.tensor([e], device=env.device))
            env.scene[name].write_root_velocity_to_sim_index(
                root_velocity=torch.zeros(1, 6, device=env.device), env_ids=torch.tensor([e], device=env.device))


def add_place_stacked(env_cfg: Any, stacked_env_ids: Sequence[int] = ()) -> None:
    """``cfg_hook``: add :func:`place_stacked` as the last reset event."""
    from isaaclab.managers import EventTermCfg

    env_cfg.events.place_stacked = EventTermCfg(func=place_stacked, mode="reset",
                                                params={"stacked_env_ids": [int(e) for e in stacked_env_ids]})


def _as_list(env_ids, num_envs: int) -> list[int]:
    if env_ids is None:
        return list(range(num_envs))
    if isinstance(env_ids, slice):
        return list(range(num_envs))[env_ids]
    return [int(e) for e in env_ids.reshape(-1).tolist()]
