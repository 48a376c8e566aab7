"""Task definitions: the MuJoCo stack-cube tasks and the rewarded Isaac Lab stack-cube tasks (registering imports no simulator)."""

from rlinf_isaac.tasks import (
    isaaclab_stack,  # noqa: F401  (registers the Isaac Lab tasks; imports no Isaac Lab)
    stack_cube,  # noqa: F401  (registers the MuJoCo tasks)
)

__all__: list[str] = ["stack_cube", "isaaclab_stack"]
