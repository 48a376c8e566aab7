"""Command-line options of the Isaac Lab simulator, shared by the tools that build envs directly
(the scripted expert, the SFT evaluator); training configs set the same keys under
``env.<group>.isaaclab`` (docs/isaaclab.md)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_simulator_arguments", "simulator_kwargs"]

STACKS = ("auto", "newton", "isaac_sim")


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--sim-device``, ``--isaaclab-stack`` and ``--isaaclab-python`` (used by Isaac Lab tasks only)."""
    group = parser.add_argument_group("Isaac Lab tasks")
    group.add_argument("--sim-device", default="cuda:0",
                       help="simulation device of the simulator process (cpu: kit-less Newton only)")
    group.add_argument("--isaaclab-stack", default="auto", choices=STACKS,
                       help="simulator stack: newton (kit-less), isaac_sim, or auto (Isaac Sim when installed)")
    group.add_argument("--isaaclab-python", default=None,
                       help="interpreter of the simulator process, e.g. Isaac Lab's python.sh (default: this one)")


def simulator_kwargs(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """Env factory kwargs from those options: {} unless ``backend`` is ``isaaclab``."""
    if backend != "isaaclab":
        return {}
    return {"device": args.sim_device, "stack": args.isaaclab_stack, "python": args.isaaclab_python}
