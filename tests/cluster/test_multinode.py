"""A Ray cluster of two nodes (two raylets on this host, started with ``ray start`` as on two
machines): a run attaches to it, authenticates with Ray's token, places workers on both nodes
and checks the nodes before any worker starts. The cluster is stopped by the processes it
started."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
# the 2-GPU hybrid layout on two nodes of one slot each: env 0 on node 0, rollout 0 on node 1,
# actor rank 0 on node 0 and rank 1 on node 1
PLACEMENT = ["cluster=2gpu_hybrid", "cluster.num_nodes=2", "cluster.gpus_per_node=1"]
SMALL = ["actor.model.checkpoint_path=null", "env.train.total_num_envs=4", "env.eval.total_num_envs=4",
         "env.train.max_episode_steps=32", "env.eval.max_episode_steps=32", "actor.global_batch_size=8",
         "actor.micro_batch_size=4", "algorithm.update_epochs=1", "runner.max_steps=1", "runner.val_check_interval=-1",
         "runner.eval_episodes=4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_processes(markers: tuple[str, ...]) -> list[int]:
    """PIDs of the processes whose command line holds one of ``markers`` (this cluster's temp dir
    and GCS port), and of all their descendants (agents rename themselves, e.g. ray::DashboardAgent)."""
    cmdline, parent = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = {pid for pid, cl in cmdline.items() if any(m in cl for m in markers)}
    grown = True
    while grown:  # add children until closed
        more = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= more
        grown = bool(more)
    return sorted(found - {os.getpid()})


@pytest.fixture(scope="module")
def cluster():
    """(address, env) of a two-node Ray cluster on this host; stopped by killing its processes."""
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths live under it
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_AUTH_MODE", None)  # as a user's shell: Ray decides from the saved token
    common = ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]  # head only
    try:  # the docs' commands: a token (kept if there is one), the head, a second node with the token
        subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True, env=env, timeout=60)
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", *common],
                       check=True, capture_output=True, text=True, env=env, timeout=120)
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                        "--disable-usage-stats"],
                       check=True, capture_output=True, text=True, env={**env, "RAY_AUTH_MODE": "token"}, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        markers = (temp, f":{port} ", f":{port}\0", f"127.0.0.1:{port}")
        for pid in _ray_processes(markers):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)
        alive = [pid for pid in _ray_processes(markers) if not _zombie(pid)]
        assert alive == [], f"Ray processes of the test cluster still running: {alive}"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _run(env, tmp_path, *overrides):
    return subprocess.run(["bash", str(ROOT / "run_embodiment.sh"), "cpu_quickstart", *SMALL, *overrides,
                           f"runner.logger.log_path={tmp_path}"],
                          capture_output=True, text=True, env={**env, "PYTHON": sys.executable}, timeout=600)


def test_a_run_attaches_with_the_token_and_places_workers_on_both_nodes(cluster, tmp_path):
    address, env = cluster
    out = _run(env, tmp_path, f"cluster.ray_address={address}", *PLACEMENT)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert f"ray: attached to {address} with token authentication" in text and "2 node(s) alive" in text
    lines = text[text.index("workers by node:"):].splitlines()[1:3]
    assert lines[0].startswith("  node 0 (") and ", head): " in lines[0] and lines[1].startswith("  node 1 (")
    assert set(lines[0].split(": ")[1].split(", ")) == {"actor-0", "env-0"}
    assert set(lines[1].split(": ")[1].split(", ")) == {"actor-1", "rollout-0"}
    assert json.loads((tmp_path / "checkpoints" / "global_step_1" / "meta.json").read_text())["step"] == 1


def test_more_nodes_than_alive_fail_before_workers_start(cluster, tmp_path):
    address, env = cluster
    out = _run(env, tmp_path, f"cluster.ray_address={address}", *PLACEMENT[:1], "cluster.num_nodes=3",
               "cluster.gpus_per_node=1")
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "cluster.num_nodes = 3, but the Ray cluster at" in text, text[-3000:]
    assert "has 2 alive node(s)" in text and "workers by node" not in text
