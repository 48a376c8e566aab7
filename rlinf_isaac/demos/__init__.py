"""Demonstrations: the scripted stacking expert and the LeRobot v2 dataset writer."""

__all__ = ["expert", "dataset"]
