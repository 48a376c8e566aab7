"""Runs inside the Isaac Lab simulator process: the request server, the env builder and the chunk stepper."""

__all__ = ["launch", "server", "stepper"]
