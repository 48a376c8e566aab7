"""CUDA IPC between processes on one GPU (cuda_ipc.py): shared tensors, the weight sync's
device buffer and stored inputs fetched by an actor, each opened in a second process."""

import multiprocessing as mp

import pytest
import torch

from rlinf_isaac.cluster import cuda_ipc
from rlinf_isaac.cluster.placement import parse_placement


def test_same_gpu_follows_the_placement():
    p = parse_placement({"env": "0", "rollout": "1", "actor": "0-1"}, gpus_per_node=2)
    actor0, actor1 = p.processes("actor")
    (rollout,) = p.processes("rollout")
    assert not cuda_ipc.same_gpu(actor0, rollout) and cuda_ipc.same_gpu(actor1, rollout)
    assert not cuda_ipc.same_gpu(actor1, rollout, device_type="cpu")


def test_switch(monkeypatch):
    from rlinf_isaac.config import ConfigError, load_config

    assert load_config("cpu_quickstart").cluster.cuda_ipc
    assert not load_config("cpu_quickstart", ["cluster.cuda_ipc=false"]).cluster.cuda_ipc
    monkeypatch.setenv("RLINF_CUDA_IPC", "0")  # the environment overrides the config
    assert not load_config("cpu_quickstart", ["cluster.cuda_ipc=true"]).cluster.cuda_ipc
    monkeypatch.setenv("RLINF_CUDA_IPC", "maybe")
    with pytest.raises(ConfigError, match="RLINF_CUDA_IPC='maybe' \\(sets cluster.cuda_ipc\\)"):
        load_config("cpu_quickstart")


def test_share_refuses_host_tensors():
    with pytest.raises(ValueError, match="CUDA tensor"):
        cuda_ipc.share(torch.zeros(3))


def _child(conn):  # runs in a spawned process: open what the parent shared, answer with copies
    import torch

    from rlinf_isaac.data.features import FeatureIndex, fetch_features
    from rlinf_isaac.data.weights import unpack_into

    shared, packed, exported = conn.recv()
    t = shared.open()
    params = {n: torch.zeros(s, dtype=getattr(torch, d), device="cuda") for n, s, d in
              zip(packed.names, packed.shapes, packed.dtypes)}
    unpack_into(packed, params, "cuda")

    class _Handle:  # fetch_features asks a rollout worker; this one answers with the parent's export
        class export_features:
            @staticmethod
            def remote(segments, via):
                assert via == "ipc"
                return exported

    feats = fetch_features(FeatureIndex([[(0, 0, 0, 2)], [(0, 1, 0, 2)]]), [_Handle()], "cuda", ipc_ranks=(0,))
    conn.send((t.cpu(), {k: v.cpu() for k, v in params.items()}, {k: v.cpu() for k, v in feats.items()}))
    del t
    conn.recv()  # the parent checks, then lets this process end


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_another_process_reads_shared_gpu_memory():
    from rlinf_isaac.data.features import FeatureStore
    from rlinf_isaac.data.weights import WeightPacker

    x = torch.arange(12, dtype=torch.float32, device="cuda").view(3, 4)[1:]  # a view: offset into the storage
    weights = {"a": torch.randn(5, 3, device="cuda"), "b": torch.randn(7, device="cuda").to(torch.bfloat16)}
    packed = WeightPacker().share(weights)
    store = FeatureStore(0)
    calls = [{"f": torch.randn(2, 3, device="cuda").to(torch.bfloat16)} for _ in range(2)]
    for c in calls:
        store.put(c)
    exported = store.export([(0, 0, 2), (1, 0, 2)], "ipc")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child,))
    proc.start()
    try:
        parent.send((cuda_ipc.share(x), packed, exported))
        got_x, got_w, got_f = parent.recv()
        parent.send("done")
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert torch.equal(got_x, x.cpu())
    for k, v in weights.items():
        assert got_w[k].dtype == v.dtype and torch.equal(got_w[k], v.cpu()), k
    want = torch.stack([c["f"] for c in calls]).cpu()  # [T=2, 2 envs, 3]
    assert torch.equal(got_f["f"], want)
    assert store.release() == 2


def test_cluster_plans_ipc_only_within_a_gpu(monkeypatch, capsys):
    from types import SimpleNamespace

    from rlinf_isaac.runners.controller import Controller

    p = parse_placement({"env": "0", "rollout": "1", "actor": "0-1"}, gpus_per_node=2)  # 2gpu_hybrid
    cluster = SimpleNamespace(cuda_ipc=True)
    c = SimpleNamespace(placement=p, n_roll=1, n_act=2, cfg=SimpleNamespace(cluster=cluster))
    Controller._plan_transfers(c)
    assert c.ipc_ranks == [(), (0,)] and c.sync_via == ["host"]  # actor 0 is on GPU 0, the rollout on 1
    assert "weight sync to 0 of 1 rollout ranks, stored inputs on 1 of 2" in capsys.readouterr().out
    cluster.cuda_ipc = False
    Controller._plan_transfers(c)
    assert c.ipc_ranks == [(), ()] and "off: cluster.cuda_ipc=false" in capsys.readouterr().out


def test_share_tree_leaves_host_tensors_and_other_leaves():
    obs = {"states": torch.ones(2, 8), "task_descriptions": ["stack", "stack"], "pair": (torch.zeros(1), 3)}
    shared = cuda_ipc.share_tree(obs)
    assert shared["states"] is obs["states"] and shared["task_descriptions"] == ["stack", "stack"]
    assert shared["pair"][0] is obs["pair"][0] and shared["pair"][1] == 3
    assert cuda_ipc.open_tree(shared)["states"] is obs["states"]


def _open_tree_child(conn):  # spawned: open a shared observation, answer with host copies
    from rlinf_isaac.cluster import cuda_ipc as ipc

    obs = ipc.open_tree(conn.recv())
    conn.send({k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in obs.items()})
    conn.recv()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_shared_observation_opens_as_copies_in_another_process():
    obs = {"main_images": torch.randint(0, 255, (4, 8, 8, 3), dtype=torch.uint8, device="cuda"),
           "states": torch.randn(4, 8, device="cuda"), "task_descriptions": ["stack"] * 4}
    shared = cuda_ipc.share_tree(obs)
    assert isinstance(shared["main_images"], cuda_ipc.SharedTensor) and shared["task_descriptions"] == ["stack"] * 4
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_open_tree_child, args=(child,))
    proc.start()
    try:
        parent.send(shared)
        got = parent.recv()
        parent.send("done")
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert torch.equal(got["main_images"], obs["main_images"].cpu()) and torch.equal(got["states"], obs["states"].cpu())
    assert got["task_descriptions"] == ["stack"] * 4
