"""Parse ``cluster.component_placement`` into per-process device assignments.

Syntax (RLinf's, see docs/algorithms.md "Placement"): each key names one component or a
comma list of components that get the *same* rule (each its own processes)::

    cluster:
      num_nodes: 1
      component_placement:
        env: 0-3            # 4 env processes, one per GPU 0..3
        rollout: 4-7
        actor: 0-7          # shares GPUs 0..3 with env and 4..7 with rollout
        # env,rollout,actor: all

A value is a comma list of segments ``resource_ranks[:process_ranks]``:

* ``resource_ranks``: ``all``, ``a`` or ``a-b`` (inclusive): *global* device ranks,
  counted node by node (rank ``g`` lives on node ``g // gpus_per_node``, local device
  ``g % gpus_per_node``).
* ``process_ranks``: ``a`` or ``a-b``; omitted, the segment takes one process per device,
  continuing after the highest process rank used so far.
* Resources first, processes second (as in RLinf): ``0-3:0-7`` puts processes 0..7 on
  GPUs 0..3, two processes per GPU; ``0-7:0-3`` gives processes 0..3 two GPUs each
  (``(0,1), (2,3), ...``). One count must divide the other, and a multi-GPU process must
  stay on one node.

Every component's process ranks must be exactly ``0..N-1``, each once, and a device may
appear in only one segment of a component (use the ``a-b:c-d`` ratio form to share one).
With ``device_type="cpu"`` the same strings address logical CPU slots (``gpus_per_node``
then counts slots), so a GPU config runs unchanged on a laptop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = [
    "PlacementError",
    "ProcessPlacement",
    "Placement",
    "parse_placement",
    "detect_devices_per_node",
]

KEY_PREFIX = "cluster.component_placement"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RANGE = r"\d+(?:-\d+)?"
_SEGMENT = re.compile(rf"^(all|{_RANGE})(?::({_RANGE}))?$")
_SYNTAX_HELP = (
    "valid: 'all', '3', '0-3', '0-1,4-5', '0-3:0-7' (GPUs 0-3 for processes 0-7, two per "
    "GPU) or '0-7:0-3' (two GPUs per process)"
)


class PlacementError(ValueError):
    """A component placement that is malformed or does not fit the machine."""


@dataclass(frozen=True)
class ProcessPlacement:
    """Where one process of a component runs.

    rank: process rank within its component (0..N-1).
    node: node index (0..num_nodes-1).
    local_gpus: device indices on that node (CUDA_VISIBLE_DEVICES for a GPU process).
    global_gpus: the same devices as global ranks (node * gpus_per_node + local).
    """

    rank: int
    node: int
    local_gpus: tuple[int, ...]
    global_gpus: tuple[int, ...]


@dataclass(frozen=True)
class Placement:
    """A resolved placement: for each component, its processes in rank order."""

    components: Mapping[str, tuple[ProcessPlacement, ...]]
    num_nodes: int
    gpus_per_node: int
    device_type: str = "cuda"
    source: Mapping[str, str] = field(default_factory=dict)  # component -> its rule string

    def processes(self, component: str) -> tuple[ProcessPlacement, ...]:
        """The component's processes, rank 0 first; unknown names list the placed ones."""
        if component not in self.components:
            raise PlacementError(
                f"{KEY_PREFIX}.{component}: component {component!r} is not placed; placed "
                f"components: {', '.join(self.components)}"
            )
        return self.components[component]

    def world_size(self, component: str) -> int:
        """Number of processes of ``component``."""
        return len(self.processes(component))

    def gpus_of(self, component: str) -> tuple[int, ...]:
        """Sorted global device ranks used by any process of ``component``."""
        return tuple(sorted({g for p in self.processes(component) for g in p.global_gpus}))

    def components_sharing_gpus(self) -> dict[tuple[str, str], tuple[int, ...]]:
        """Each pair of components (in declaration order) that share devices -> those devices."""
        names, out = list(self.components), {}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                shared = sorted(set(self.gpus_of(a)) & set(self.gpus_of(b)))
                if shared:
                    out[(a, b)] = tuple(shared)
        return out

    def is_colocated(self, a: str, b: str) -> bool:
        """True when ``a`` and ``b`` use exactly the same set of devices."""
        return self.gpus_of(a) == self.gpus_of(b)

    def table(self) -> str:
        """A printable table: one row per process with its node and devices."""
        unit = "gpus" if self.device_type == "cuda" else "cpu slots"
        head = ("component", "rank", "node", f"local {unit}", f"global {unit}", "shares with")
        rows = [head]
        for name, procs in self.components.items():
            for p in procs:
                mine = set(p.global_gpus)
                others = [o for o in self.components if o != name and mine & set(self.gpus_of(o))]
                rows.append(
                    (name, str(p.rank), str(p.node), _fmt(p.local_gpus), _fmt(p.global_gpus),
                     ",".join(others) or "-")
                )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        title = f"placement on {self.num_nodes} node(s) x {self.gpus_per_node} {unit}"
        return "\n".join([title, lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def _fmt(ranks: Sequence[int]) -> str:
    return ",".join(map(str, ranks))


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Segment:
    devices: tuple[int, ...]  # global device ranks
    procs: tuple[int, ...] | None  # explicit process ranks, None = implicit


def _range(text: str, key: str, value: str) -> tuple[int, ...]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    if a > b:
        raise PlacementError(
            f"{key}: range {text!r} in {value!r} runs backwards; write it low-high, e.g. '{b}-{a}'"
        )
    return tuple(range(a, b + 1))


def _split_segments(value: str, key: str, total: int) -> list[_Segment]:
    """'0-1:0-3,4' -> [_Segment((0, 1), (0..3)), _Segment((4,), None)], devices checked."""
    segments = []
    for raw in value.split(","):
        text = raw.strip()
        m = _SEGMENT.match(text)
        if m is None:
            raise PlacementError(f"{key}: cannot parse {text!r} in {value!r}; {_SYNTAX_HELP}")
        devices = tuple(range(total)) if m.group(1) == "all" else _range(m.group(1), key, value)
        bad = [d for d in devices if d >= total]
        if bad:
            raise PlacementError(
                f"{key}: device rank {bad[0]} in {value!r} is out of range: this cluster has "
                f"{total} devices (valid ranks 0-{total - 1}); lower the range or raise "
                f"cluster.num_nodes / the devices per node"
            )
        procs = _range(m.group(2), key, value) if m.group(2) else None
        segments.append(_Segment(devices, procs))
    return segments


def _assign(
    seg: _Segment, procs: tuple[int, ...], key: str, value: str, gpn: int
) -> list[ProcessPlacement]:
    """Spread ``procs`` evenly over ``seg.devices`` (either count divides the other)."""
    n_dev, n_proc = len(seg.devices), len(procs)
    if n_proc % n_dev and n_dev % n_proc:
        raise PlacementError(
            f"{key}: {n_proc} processes on {n_dev} devices in {value!r}: one count must divide "
            f"the other (k processes per device, or k devices per process)"
        )
    out = []
    for i, rank in enumerate(procs):
        if n_proc >= n_dev:
            devs = (seg.devices[i // (n_proc // n_dev)],)  # k = n_proc / n_dev processes share a device
        else:
            k = n_dev // n_proc  # each process owns k consecutive devices
            devs = seg.devices[i * k : (i + 1) * k]
        nodes = {d // gpn for d in devs}
        if len(nodes) > 1:
            raise PlacementError(
                f"{key}: process {rank} would span devices {_fmt(devs)} on nodes "
                f"{_fmt(sorted(nodes))} in {value!r}; a process must stay on one node"
            )
        out.append(ProcessPlacement(rank, devs[0] // gpn, tuple(d % gpn for d in devs), devs))
    return out


def _resolve_component(value: str, key: str, total: int, gpn: int) -> tuple[ProcessPlacement, ...]:
    segments = _split_segments(value, key, total)
    seen_dev: set[int] = set()
    placed: list[ProcessPlacement] = []
    next_rank = 0
    for seg in segments:
        for d in seg.devices:
            if d in seen_dev:
                raise PlacementError(
                    f"{key}: device {d} appears twice in {value!r}; list each device once and "
                    f"share it with the ratio form, e.g. '{d}:0-1' for two processes on it"
                )
            seen_dev.add(d)
        procs = seg.procs or tuple(range(next_rank, next_rank + len(seg.devices)))
        placed.extend(_assign(seg, procs, key, value, gpn))
        next_rank = max(p.rank for p in placed) + 1
    ranks = sorted(p.rank for p in placed)
    if ranks != list(range(len(ranks))):
        dup = sorted({r for r in ranks if ranks.count(r) > 1})
        missing = sorted(set(range(max(ranks) + 1)) - set(ranks))
        raise PlacementError(
            f"{key}: process ranks in {value!r} must be 0-{len(ranks) - 1}, each once; "
            f"repeated: {dup or 'none'}, missing: {missing or 'none'}"
        )
    return tuple(sorted(placed, key=lambda p: p.rank))


def _rule_string(raw: Any, key: str) -> str:
    """A YAML value (str, int, or a mapping with 'placement') -> its rule string."""
    if isinstance(raw, Mapping):
        extra = set(raw) - {"placement", "node_group"}
        if "placement" not in raw or extra:
            raise PlacementError(
                f"{key}: a mapping value needs a 'placement' key (and optionally 'node_group'), "
                f"got keys {sorted(map(str, raw))}"
            )
        if raw.get("node_group") not in (None, "all"):
            raise PlacementError(
                f"{key}.node_group: node groups are not supported yet (got {raw['node_group']!r}); "
                f"address devices by global rank across cluster.num_nodes instead"
            )
        raw = raw["placement"]
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise PlacementError(f"{key}: expected a string such as '0-3', got {raw!r}; {_SYNTAX_HELP}")
    text = str(raw).replace(" ", "")
    if not text:
        raise PlacementError(f"{key}: empty placement; {_SYNTAX_HELP}")
    return text


def _component_names(key: Any) -> list[str]:
    names = [n.strip() for n in str(key).split(",")]
    for n in names:
        if not _NAME.match(n):
            raise PlacementError(
                f"{KEY_PREFIX}: bad component key {key!r}; write one name or a comma list "
                f"such as 'env,rollout,actor'"
            )
    return names


def parse_placement(
    component_placement: Mapping[Any, Any],
    *,
    gpus_per_node: int,
    num_nodes: int = 1,
    device_type: str = "cuda",
) -> Placement:
    """Resolve a ``cluster.component_placement`` mapping against the machine.

    component_placement: {component key: rule}, e.g. {"env": "0-3", "actor": "0-7"}.
    gpus_per_node: devices per node (GPUs; CPU slots with device_type="cpu").
    num_nodes: ``cluster.num_nodes``. device_type: "cuda" or "cpu".
    Raises :class:`PlacementError` naming the dotted key, the value and the fix.
    """
    if device_type not in ("cuda", "cpu"):
        raise PlacementError(f"device_type must be 'cuda' or 'cpu', got {device_type!r}")
    for name, n in (("cluster.num_nodes", num_nodes), ("gpus_per_node", gpus_per_node)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise PlacementError(f"{name} must be a positive integer, got {n!r}")
    if not component_placement:
        raise PlacementError(
            f"{KEY_PREFIX} is empty; place at least one component, e.g. 'env,rollout,actor: all'"
        )
    components: dict[str, tuple[ProcessPlacement, ...]] = {}
    source: dict[str, str] = {}
    for key, raw in component_placement.items():
        dotted = f"{KEY_PREFIX}.{key}"
        rule = _rule_string(raw, dotted)
        for name in _component_names(key):
            if name in components:
                raise PlacementError(
                    f"{dotted}: component {name!r} is placed twice (also under another key)"
                )
            total = num_nodes * gpus_per_node
            components[name] = _resolve_component(rule, dotted, total, gpus_per_node)
            source[name] = rule
    return Placement(components, num_nodes, gpus_per_node, device_type, source)


def detect_devices_per_node(device_type: str = "cuda") -> int:
    """Local device count: visible CUDA GPUs, or CPU cores for ``device_type="cpu"``."""
    if device_type == "cpu":
        import os

        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    import torch

    return torch.cuda.device_count()
