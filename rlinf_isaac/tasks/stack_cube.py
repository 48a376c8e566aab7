"""MuJoCo stack-cube tasks (three cubes and two cubes), registered for the ``mujoco`` backend.

The task definitions are data (:class:`StackTaskSpec`); the simulation lives in
``rlinf_isaac.envs.mujoco``. Importing this module is cheap: MuJoCo is imported only when
a factory builds an env.
"""

from __future__ import annotations

from typing import Any

from rlinf_isaac.envs.mujoco.task_spec import CubeSpec, StackTaskSpec
from rlinf_isaac.envs.registry import register_task

__all__ = ["STACK_THREE", "STACK_TWO", "TASK_SPECS", "make_stack_env"]

BLUE = CubeSpec("cube_blue", (0.1, 0.25, 0.9, 1.0))
RED = CubeSpec("cube_red", (0.9, 0.12, 0.1, 1.0))
GREEN = CubeSpec("cube_green", (0.15, 0.8, 0.2, 1.0))

STACK_THREE = StackTaskSpec(
    task_id="MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0",
    instruction="Stack the red cube on the blue cube, then the green cube on the red cube.",
    cubes=(BLUE, RED, GREEN),
    stack_pairs=(("cube_red", "cube_blue"), ("cube_green", "cube_red")),
)
STACK_TWO = StackTaskSpec(
    task_id="MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0",
    instruction="Stack the red cube on the blue cube.",
    cubes=(BLUE, RED),
    stack_pairs=(("cube_red", "cube_blue"),),
)
TASK_SPECS = {t.task_id: t for t in (STACK_THREE, STACK_TWO)}
# Episode step limits at 20 Hz (the scripted expert needs ~65 steps per stacked pair: <= 73 for
# two cubes, <= 148 for three; the RL configs use 160 / 320).
DEFAULT_MAX_STEPS = {STACK_THREE.task_id: 400, STACK_TWO.task_id: 250}


def make_stack_env(
    task_id: str,
    num_envs: int,
    image_size: int | tuple[int, int] = 84,
    reward_type: str = "sparse",
    max_episode_steps: int | None = None,
    auto_reset: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    render_backend: str | None = None,
    action_scale: float = 0.5,
    **kw: Any,
):
    """Build the MuJoCo env of ``task_id``: in-process, or a SubprocVectorEnv when num_workers > 0."""
    kwargs = dict(image_size=image_size, reward_type=reward_type, auto_reset=auto_reset, seed=seed,
                  render_backend=render_backend, action_scale=action_scale,
                  max_episode_steps=max_episode_steps or DEFAULT_MAX_STEPS[task_id], **kw)
    if num_workers > 0:
        from rlinf_isaac.envs.vector import SubprocVectorEnv

        return SubprocVectorEnv(task_id, num_envs=num_envs, num_workers=num_workers, env_kwargs=kwargs)
    from rlinf_isaac.envs.mujoco.stack_env import MujocoStackConfig, MujocoStackEnv

    return MujocoStackEnv(TASK_SPECS[task_id], num_envs, MujocoStackConfig(**kwargs))


def _register(spec: StackTaskSpec, description: str) -> None:
    @register_task(spec.task_id, backend="mujoco", description=description)
    def factory(num_envs: int, **kwargs: Any):
        return make_stack_env(spec.task_id, num_envs, **kwargs)


_register(STACK_THREE, "Franka stacks red on blue, then green on red (MuJoCo, IK-Rel, table + wrist camera)")
_register(STACK_TWO, "Franka stacks red on blue (MuJoCo, IK-Rel, table + wrist camera)")
