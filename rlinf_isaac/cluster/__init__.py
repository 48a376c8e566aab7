"""Cluster layout and Ray plumbing: component placement, worker groups with bounded calls."""

from rlinf_isaac.cluster.placement import (
    Placement,
    PlacementError,
    ProcessPlacement,
    detect_devices_per_node,
    parse_placement,
)
from rlinf_isaac.cluster.worker_group import WorkerBase, WorkerError, WorkerGroup, start_ray

__all__ = [
    "Placement",
    "PlacementError",
    "ProcessPlacement",
    "detect_devices_per_node",
    "parse_placement",
    "start_ray",
    "WorkerBase",
    "WorkerError",
    "WorkerGroup",
]
