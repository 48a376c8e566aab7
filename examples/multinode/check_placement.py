"""Example: check a multi-node placement before launching, on any machine (no GPU, no Ray).

What it shows: ``placement_2x8.yaml`` read as a ``cluster`` config group, validated by
the typed schema (``ClusterConfig``) and resolved by ``parse_placement`` for its
``num_nodes`` x ``gpus_per_node``; prints the per-process table.
How long: about a second. What you see: "placement on 2 node(s) x 8 gpus" and 32 rows
(8 env, 8 rollout, 16 actor processes), then one line per node listing its components.

    python examples/multinode/check_placement.py [PLACEMENT_YAML]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from rlinf_isaac.cluster.placement import Placement, parse_placement
from rlinf_isaac.config.schema import ClusterConfig

__all__ = ["DEFAULT_YAML", "load_placement", "main"]

DEFAULT_YAML = Path(__file__).with_name("placement_2x8.yaml")


def load_placement(path: str | Path = DEFAULT_YAML) -> tuple[ClusterConfig, Placement]:
    """Read a cluster-group YAML, validate it, and resolve its placement (GPU device ranks)."""
    cluster = ClusterConfig(**yaml.safe_load(Path(path).read_text()))
    if cluster.gpus_per_node is None:
        raise ValueError(f"cluster.gpus_per_node in {path}: got null; a multi-node layout must state it")
    placement = parse_placement(cluster.component_placement, gpus_per_node=cluster.gpus_per_node,
                                num_nodes=cluster.num_nodes, device_type="cuda")
    return cluster, placement


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cluster, placement = load_placement(argv[0] if argv else DEFAULT_YAML)
    print(placement.table())
    for node in range(placement.num_nodes):
        here = {c: sum(p.node == node for p in procs) for c, procs in placement.components.items()}
        print(f"node {node}: " + ", ".join(f"{n} {c}" for c, n in here.items()))
    print(f"ray_address: {cluster.ray_address}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
