"""Assets the Isaac Lab backend generates from the project's own models (the Franka USD)."""

__all__ = ["franka"]
