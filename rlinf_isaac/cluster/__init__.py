"""Ray plumbing: component placement, cluster start/attach, worker groups with bounded calls, tensor transport."""

from rlinf_isaac.cluster.handles import LocalHandle, is_ready, resolve
from rlinf_isaac.cluster.placement import (
    Placement,
    PlacementError,
    ProcessPlacement,
    detect_devices_per_node,
    parse_placement,
)
from rlinf_isaac.cluster.worker_group import WorkerBase, WorkerError, WorkerGroup, start_ray

__all__ = [
    "LocalHandle",
    "is_ready",
    "resolve",
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
