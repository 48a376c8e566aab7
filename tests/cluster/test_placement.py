"""cluster.component_placement parsing: every syntax, the common layouts at 1-8 GPUs, errors."""

from pathlib import Path

import pytest

from rlinf_isaac.cluster.placement import (
    Placement,
    PlacementError,
    ProcessPlacement,
    detect_devices_per_node,
    parse_placement,
)


def _devices(p: Placement, component: str) -> list[tuple[int, ...]]:
    """Global devices of each process of ``component`` in rank order."""
    return [proc.global_gpus for proc in p.processes(component)]


# --------------------------------------------------------------------- every syntax

SYNTAX = [
    # (rule, gpus_per_node, expected global devices per process rank)
    ("all", 4, [(0,), (1,), (2,), (3,)]),
    ("0-3", 8, [(0,), (1,), (2,), (3,)]),
    ("4", 8, [(4,)]),
    (4, 8, [(4,)]),  # YAML reads `rollout: 4` as an int
    ("0-1,4-5", 8, [(0,), (1,), (4,), (5,)]),
    (" 0-1 , 6 ", 8, [(0,), (1,), (6,)]),  # spaces are ignored
    # GPUs 0-3 for processes 0-7: two processes per GPU (RLinf: resources first).
    ("0-3:0-7", 8, [(0,), (0,), (1,), (1,), (2,), (2,), (3,), (3,)]),
    # GPUs 0-7 for processes 0-3: each process owns two consecutive GPUs.
    ("0-7:0-3", 8, [(0, 1), (2, 3), (4, 5), (6, 7)]),
    ("all:0-15", 8, [(g,) for g in range(8) for _ in range(2)]),
    ("2:0", 4, [(2,)]),
    # Mixed explicit / implicit (RLinf's example): procs 0-3 on GPUs 0-1 (2 each), procs 4-6
    # implicitly on 3-5, procs 7-14 on GPUs 7-10 (2 each).
    ("0-1:0-3,3-5,7-10:7-14", 16,
     [(0,), (0,), (1,), (1,), (3,), (4,), (5,)] + [(g,) for g in range(7, 11) for _ in range(2)]),
    ("4-7:0-3,0-3", 8, [(4,), (5,), (6,), (7,), (0,), (1,), (2,), (3,)]),  # implicit after explicit
    ("0-1:1,2-3:0", 4, [(2, 3), (0, 1)]),  # process ranks may be listed out of order
]


@pytest.mark.parametrize("rule, gpn, expected", SYNTAX)
def test_every_syntax(rule, gpn, expected):
    p = parse_placement({"actor": rule}, gpus_per_node=gpn)
    assert _devices(p, "actor") == expected
    assert [proc.rank for proc in p.processes("actor")] == list(range(len(expected)))
    assert p.world_size("actor") == len(expected)


def test_multi_node_global_ranks():
    # 2 nodes x 4 GPUs: global rank g -> node g // 4, local g % 4.
    p = parse_placement({"actor": "0-7", "rollout": "4-7:0-1"}, gpus_per_node=4, num_nodes=2)
    assert p.processes("actor")[5] == ProcessPlacement(rank=5, node=1, local_gpus=(1,), global_gpus=(5,))
    assert p.processes("rollout")[1] == ProcessPlacement(rank=1, node=1, local_gpus=(2, 3), global_gpus=(6, 7))
    assert [q.node for q in p.processes("actor")] == [0] * 4 + [1] * 4


def test_shared_key_gives_each_component_its_own_processes():
    p = parse_placement({"env,rollout,actor": "0-1"}, gpus_per_node=2)
    assert list(p.components) == ["env", "rollout", "actor"]
    assert all(p.world_size(c) == 2 for c in ("env", "rollout", "actor"))
    assert p.source["rollout"] == "0-1"


def test_mapping_value_with_placement_key():
    p = parse_placement({"actor": {"placement": "0-1"}}, gpus_per_node=2)
    assert _devices(p, "actor") == [(0,), (1,)]


# -------------------------------------------------------- the three layouts users copy

HYBRID = {"env": "0-3", "rollout": "4-7", "actor": "0-7"}
SHARED = {"env,rollout,actor": "all"}
SEPARATE = {"env": "0-1", "rollout": "2-5", "actor": "6-7"}

LAYOUTS = [
    # (name, gpus, mapping, {component: devices}, {shared pair: devices})
    ("hybrid", 8, HYBRID, {"env": [0, 1, 2, 3], "rollout": [4, 5, 6, 7], "actor": list(range(8))},
     {("env", "actor"): (0, 1, 2, 3), ("rollout", "actor"): (4, 5, 6, 7)}),
    ("hybrid", 4, {"env": "0-1", "rollout": "2-3", "actor": "0-3"},
     {"env": [0, 1], "rollout": [2, 3], "actor": [0, 1, 2, 3]},
     {("env", "actor"): (0, 1), ("rollout", "actor"): (2, 3)}),
    ("hybrid", 2, {"env": "0", "rollout": "1", "actor": "0-1"},
     {"env": [0], "rollout": [1], "actor": [0, 1]},
     {("env", "actor"): (0,), ("rollout", "actor"): (1,)}),
    ("hybrid", 1, {"env": "0", "rollout": "0", "actor": "0"},
     {"env": [0], "rollout": [0], "actor": [0]},
     {("env", "rollout"): (0,), ("env", "actor"): (0,), ("rollout", "actor"): (0,)}),
    *[
        ("shared", n, SHARED, {c: list(range(n)) for c in ("env", "rollout", "actor")},
         {pair: tuple(range(n)) for pair in (("env", "rollout"), ("env", "actor"), ("rollout", "actor"))})
        for n in (1, 2, 4, 8)
    ],
    ("separate", 8, SEPARATE, {"env": [0, 1], "rollout": [2, 3, 4, 5], "actor": [6, 7]}, {}),
    ("separate", 4, {"env": "0", "rollout": "1-2", "actor": "3"},
     {"env": [0], "rollout": [1, 2], "actor": [3]}, {}),
    # Two GPUs cannot separate three components: env and rollout share GPU 0.
    ("separate", 2, {"env,rollout": "0", "actor": "1"},
     {"env": [0], "rollout": [0], "actor": [1]}, {("env", "rollout"): (0,)}),
    ("separate", 1, {"env,rollout,actor": "0"}, {"env": [0], "rollout": [0], "actor": [0]},
     {("env", "rollout"): (0,), ("env", "actor"): (0,), ("rollout", "actor"): (0,)}),
]


@pytest.mark.parametrize("name, gpus, mapping, devices, shared", LAYOUTS, ids=lambda x: str(x)[:12])
@pytest.mark.parametrize("device_type", ["cuda", "cpu"])
def test_common_layouts(name, gpus, mapping, devices, shared, device_type):
    p = parse_placement(mapping, gpus_per_node=gpus, device_type=device_type)
    for comp, devs in devices.items():
        assert list(p.gpus_of(comp)) == devs
        assert p.world_size(comp) == len(devs)  # one process per device in these layouts
    assert p.components_sharing_gpus() == shared
    if name == "shared":
        assert p.is_colocated("env", "actor") and p.is_colocated("rollout", "actor")
    if name == "hybrid" and gpus > 1:
        assert not p.is_colocated("env", "actor")


def test_eight_gpu_layouts_on_two_nodes_of_four():
    p = parse_placement(HYBRID, gpus_per_node=4, num_nodes=2)
    assert {q.node for q in p.processes("env")} == {0}
    assert {q.node for q in p.processes("rollout")} == {1}
    assert [q.local_gpus for q in p.processes("rollout")] == [(0,), (1,), (2,), (3,)]
    sep = parse_placement(SEPARATE, gpus_per_node=4, num_nodes=2)
    # rollout 2-5 straddles the nodes: processes 0, 1 on node 0 (GPUs 2, 3), 2, 3 on node 1 (0, 1)
    assert [(q.node, q.local_gpus) for q in sep.processes("rollout")] == [(0, (2,)), (0, (3,)), (1, (0,)), (1, (1,))]


@pytest.mark.parametrize("mapping", [HYBRID, SEPARATE])
def test_eight_gpu_layout_on_four_gpus_is_out_of_range(mapping):
    with pytest.raises(PlacementError, match=r"cluster\.component_placement\.(rollout|actor): device rank \d "
                       r"in '.*' is out of range: this cluster has 4 devices \(valid ranks 0-3\)"):
        parse_placement(mapping, gpus_per_node=4)


def test_table_lists_every_process():
    p = parse_placement({"env": "0-1:0-3", "actor": "0-1"}, gpus_per_node=2)
    lines = p.table().splitlines()
    assert lines[0] == "placement on 1 node(s) x 2 gpus"
    assert lines[1].split() == ["component", "rank", "node", "local", "gpus", "global", "gpus", "shares", "with"]
    assert len(lines) == 3 + 4 + 2  # title, header, rule, 4 env + 2 actor processes
    assert lines[3].split() == ["env", "0", "0", "0", "0", "actor"]
    assert lines[-1].split() == ["actor", "1", "0", "1", "1", "env"]
    cpu = parse_placement({"env": "0"}, gpus_per_node=1, device_type="cpu")
    assert "cpu slots" in cpu.table() and cpu.table().splitlines()[-1].split()[-1] == "-"


# ------------------------------------------------------------------------- errors

ERRORS = [
    # (mapping, gpus_per_node, num_nodes, regex)
    ({"env": "0-8"}, 8, 1, r"\.env: device rank 8 in '0-8' is out of range.*valid ranks 0-7"),
    ({"env": "0-3,2-5"}, 8, 1, r"\.env: device 2 appears twice in '0-3,2-5'.*'2:0-1'"),
    ({"env": ""}, 8, 1, r"\.env: empty placement"),
    ({"env": None}, 8, 1, r"\.env: expected a string such as '0-3', got None"),
    ({"env": "0-3;4"}, 8, 1, r"\.env: cannot parse '0-3;4' in '0-3;4'; valid: 'all'"),
    ({"env": "0-3,"}, 8, 1, r"\.env: cannot parse '' in '0-3,'"),
    ({"env": "gpu0"}, 8, 1, r"\.env: cannot parse 'gpu0'"),
    ({"env": "0-3:all"}, 8, 1, r"\.env: cannot parse '0-3:all'"),
    ({"env": "3-1"}, 8, 1, r"\.env: range '3-1' in '3-1' runs backwards; write it low-high, e.g. '1-3'"),
    ({"env": "0-2:0-1"}, 8, 1, r"\.env: 2 processes on 3 devices in '0-2:0-1': one count must divide"),
    ({"env": "0-1:1-2"}, 8, 1, r"\.env: process ranks in '0-1:1-2' must be 0-1, each once; repeated: none, missing: \[0\]"),
    ({"env": "0:0,1:0"}, 8, 1, r"repeated: \[0\], missing: none"),
    ({"env": "2-5:0"}, 4, 2, r"\.env: process 0 would span devices 2,3,4,5 on nodes 0,1.*stay on one node"),
    ({"env": "0", "env,actor": "1"}, 8, 1, r"\.env,actor: component 'env' is placed twice"),
    ({"env rollout": "0"}, 8, 1, r"bad component key 'env rollout'"),
    ({"actor": {"placement": "0", "node_group": "a800"}}, 8, 1, r"\.actor\.node_group: node groups are not supported"),
    ({"actor": {"gpus": "0"}}, 8, 1, r"\.actor: a mapping value needs a 'placement' key"),
    ({}, 8, 1, r"cluster\.component_placement is empty"),
    ({"env": "0"}, 0, 1, r"gpus_per_node must be a positive integer, got 0"),
    ({"env": "0"}, 8, 0, r"cluster\.num_nodes must be a positive integer, got 0"),
]


@pytest.mark.parametrize("mapping, gpn, nodes, match", ERRORS)
def test_errors_name_key_value_and_fix(mapping, gpn, nodes, match):
    with pytest.raises(PlacementError, match=match):
        parse_placement(mapping, gpus_per_node=gpn, num_nodes=nodes)


def test_unknown_component_and_device_type():
    p = parse_placement({"env": "0"}, gpus_per_node=1)
    with pytest.raises(PlacementError, match=r"\.rollout: component 'rollout' is not placed; placed components: env"):
        p.processes("rollout")
    with pytest.raises(PlacementError, match="device_type must be 'cuda' or 'cpu', got 'tpu'"):
        parse_placement({"env": "0"}, gpus_per_node=1, device_type="tpu")
    assert PlacementError.__mro__[1] is ValueError


def test_cpu_slot_count_is_positive():
    assert detect_devices_per_node("cpu") >= 1


# ------------------------------------------------- the shipped config/cluster layouts

_CLUSTER_DIR = Path(__file__).resolve().parents[2] / "config" / "cluster"


@pytest.mark.parametrize("path", sorted(_CLUSTER_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_cluster_layouts_parse(path):
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(OmegaConf.load(path))
    gpn = c.get("gpus_per_node") or 1
    p = parse_placement(c["component_placement"], gpus_per_node=gpn, num_nodes=c.get("num_nodes", 1))
    assert {"env", "rollout", "actor"} <= set(p.components)
    # Every device of the machine is used by some component (no idle GPU in a shipped layout).
    used = set().union(*(p.gpus_of(comp) for comp in p.components))
    assert used == set(range(gpn * c.get("num_nodes", 1)))
    if "separated" in path.stem and gpn >= 4:
        assert p.components_sharing_gpus() == {}
