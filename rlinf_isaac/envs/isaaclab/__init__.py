"""Isaac Lab backend: this level runs in the env worker (env, simulator client, wire format); ``sim/`` in the simulator process."""

__all__ = ["DEFAULT_BUILDER", "IsaacLabEnv", "IsaacLabEnvCfg", "SimulatorError"]


def __getattr__(name: str):
    # The env module imports torch; the simulator process imports sim/ only.
    if name in __all__:
        from rlinf_isaac.envs.isaaclab import env

        return getattr(env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
