"""Task definitions: MuJoCo stack-cube tasks and Isaac Lab rewarded stack-cube configs (installed as ``rlinf_isaac.tasks``)."""

__all__: list[str] = []
