"""Worker groups report a dead or hung worker with its rank and last log lines, never hang."""

import os
import time

import pytest

from rlinf_isaac.cluster.placement import parse_placement
from rlinf_isaac.cluster.worker_group import WorkerBase, WorkerError, WorkerGroup, start_ray

pytest.importorskip("ray")


def _group(tmp_path, timeout_s, n=2):
    class Flaky(WorkerBase):  # local class: Ray ships it by value
        def __init__(self, rank: int, device: str = "cpu"):
            super().__init__()
            self.rank = rank

        def echo(self, x):
            return (self.rank, x)

        def tensor_path(self):  # is the raw-bytes tensor path installed in this worker?
            import torch
            from ray import cloudpickle

            return torch.Tensor in cloudpickle.CloudPickler.dispatch

        def die(self):
            print(f"rank {self.rank}: simulator lost, exiting", flush=True)
            os._exit(3)

        def hang(self, seconds):
            print(f"rank {self.rank}: stepping forever", flush=True)
            time.sleep(seconds)

    placement = parse_placement({"env": "all"}, gpus_per_node=n, device_type="cpu")
    nodes = start_ray(None)
    return WorkerGroup("env", Flaky, placement, "env", [dict(rank=r) for r in range(n)],
                       tmp_path, timeout_s, nodes)


def test_results_in_rank_order(tmp_path):
    g = _group(tmp_path, timeout_s=60)
    try:
        assert g.run(g.worker_class.echo, "x") == [(0, "x"), (1, "x")]
        assert g.wait(g.call(g.worker_class.echo, per_rank_args=[("a",), ("b",)])) == [(0, "a"), (1, "b")]
    finally:
        g.kill()


def test_tensors_round_trip_through_workers_on_the_bytes_path(tmp_path):
    import torch

    g = _group(tmp_path, timeout_s=60, n=1)
    try:
        assert g.run(g.worker_class.tensor_path) == [True]
        wide = torch.randn(6, 8, 5).to(torch.bfloat16)
        sent = {"view": wide[:, 2:4], "flags": torch.tensor([True, False]), "scalar": torch.tensor(3.5),
                "empty": torch.zeros(0, 4, dtype=torch.int64)}
        (_, back), = g.run(g.worker_class.echo, sent)
        for k, v in sent.items():
            assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
            assert torch.equal(back[k], v), k
        back["view"].add_(1)  # received tensors own writable memory (not the object store's)
    finally:
        g.kill()


def test_dead_worker_is_reported_with_rank_and_log(tmp_path):
    g = _group(tmp_path, timeout_s=60)
    try:
        with pytest.raises(WorkerError) as e:
            g.wait(g.call(g.worker_class.die, ranks=[1]), what="rollout")
        msg = str(e.value)
        assert "worker env rank 1 died during 'rollout'" in msg
        assert "rank 1: simulator lost, exiting" in msg  # the worker's last log lines
    finally:
        g.kill()


def test_hung_worker_times_out(tmp_path):
    g = _group(tmp_path, timeout_s=2.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(WorkerError, match=r"worker env rank 0 did not finish 'rollout' within 2 s"):
            g.wait(g.call(g.worker_class.hang, 60, ranks=[0]), what="rollout")
        assert time.monotonic() - t0 < 20
    finally:
        g.kill()


def test_a_method_of_another_class_is_refused(tmp_path):
    from rlinf_isaac.workers.actor_worker import ActorWorker

    g = _group(tmp_path, timeout_s=60, n=1)
    try:
        with pytest.raises(TypeError, match="ActorWorker.update.* is not a method of Flaky"):
            g.call(ActorWorker.update, 0)
    finally:
        g.kill()


def test_alive_nodes_put_the_head_first():
    from rlinf_isaac.cluster.worker_group import alive_nodes

    nodes = [{"NodeID": "a", "Alive": True, "Resources": {"CPU": 2}},
             {"NodeID": "dead", "Alive": False, "Resources": {}},
             {"NodeID": "h", "Alive": True, "Resources": {"CPU": 2, "node:__internal_head__": 1}},
             {"NodeID": "b", "Alive": True, "Resources": {"CPU": 2}}]
    assert [n["NodeID"] for n in alive_nodes(nodes)] == ["h", "a", "b"]


def test_ray_auth_uses_a_saved_token_for_an_explicit_address(monkeypatch, tmp_path):
    from rlinf_isaac.cluster.worker_group import ray_auth

    token = tmp_path / "auth_token"
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert ray_auth("10.0.0.1:6379") == "no authentication token found" and "RAY_AUTH_MODE" not in os.environ
    token.write_text("secret")
    assert ray_auth("auto") == "no authentication token found"  # Ray itself enables it for auto
    assert ray_auth("10.0.0.1:6379") == f"token authentication ({token})" and os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert ray_auth("10.0.0.1:6379") == "no authentication (RAY_AUTH_MODE=disabled)"
