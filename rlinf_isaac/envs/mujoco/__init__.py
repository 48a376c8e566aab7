"""Embedded MuJoCo backend: Franka scene builder, IK-Rel control, batched stack-cube env (MuJoCo imported lazily)."""

from rlinf_isaac.envs.mujoco.gl import import_mujoco, route_mujoco_warnings, select_gl_backend
from rlinf_isaac.envs.mujoco.task_spec import CubeSpec, SpawnSpec, StackTaskSpec, SuccessSpec

__all__ = [
    "CubeSpec",
    "SpawnSpec",
    "StackTaskSpec",
    "SuccessSpec",
    "import_mujoco",
    "route_mujoco_warnings",
    "select_gl_backend",
    "MujocoStackEnv",
    "MujocoStackConfig",
]


def __getattr__(name: str):
    # The env module imports mujoco; load it only on first use.
    if name in ("MujocoStackEnv", "MujocoStackConfig"):
        from rlinf_isaac.envs.mujoco import stack_env

        return getattr(stack_env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
