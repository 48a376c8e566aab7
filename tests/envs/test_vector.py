"""SubprocVectorEnv: bit-identical to the in-process env for the same ids; loud worker failures."""

import os
import shutil
import time

import pytest
import torch

from rlinf_isaac.envs.registry import make_env
from rlinf_isaac.envs.vector import SubprocVectorEnv, WorkerError

TWO = "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0"


def test_vector_matches_single_process_env():
    vec = make_env(TWO, num_envs=3, num_workers=2, seed=5, image_size=24, max_episode_steps=3)
    one = make_env(TWO, num_envs=3, seed=5, image_size=24, max_episode_steps=3)
    try:
        ov, o1 = vec.reset(reset_state_ids=[9, 4, 9]), one.reset(reset_state_ids=[9, 4, 9])
        for k in ("main_images", "wrist_images", "states"):
            assert torch.equal(ov[k], o1[k])
        a = torch.rand(3, 4, 7) - 0.5
        rv, r1 = vec.chunk_step(a), one.chunk_step(a)  # truncation + auto-reset inside the chunk
        assert torch.equal(rv.obs["main_images"], r1.obs["main_images"])
        assert torch.equal(rv.info["final_obs"]["states"], r1.info["final_obs"]["states"])
        assert torch.equal(rv.info["reset_state_ids"], r1.info["reset_state_ids"])
        assert torch.equal(rv.reward, r1.reward) and torch.equal(rv.truncated, r1.truncated)
        assert vec.privileged_state()["cube_pos"].shape == (3, 2, 3)
    finally:
        vec.close()
        one.close()
    vec.close()  # idempotent
    assert not os.path.exists(vec._logdir)  # a clean close leaves no temporary folder behind


def test_dead_worker_is_reported():
    vec = SubprocVectorEnv(TWO, num_envs=2, num_workers=2, env_kwargs={"image_size": 16}, timeout_s=30)
    procs = list(vec._procs)
    vec._conns[1].send(("crash", 7))
    with pytest.raises(WorkerError, match=r"env worker 1 .*died\)?; exit code 7; last log lines:\n.*env worker 1 \(pid") as e:
        vec.chunk_step(torch.zeros(2, 1, 7))
    assert all(not p.is_alive() for p in procs)  # the other worker was shut down too, no orphans
    assert vec._logdir in str(e.value) and os.path.exists(vec._log_path(1))  # the logs stay for the user
    shutil.rmtree(vec._logdir)


def test_async_stepping_runs_two_envs_concurrently_and_matches_sync():
    """chunk_step_async returns at once; two vector envs simulate at the same time."""
    a_env = make_env(TWO, num_envs=2, num_workers=1, seed=1, image_size=16)
    b_env = make_env(TWO, num_envs=2, num_workers=1, seed=1, image_size=16)
    ref = make_env(TWO, num_envs=2, seed=1, image_size=16)
    try:
        for env in (a_env, b_env, ref):
            env.reset(reset_state_ids=[3, 4])
        act = torch.rand(2, 16, 7) - 0.5
        assert not a_env.chunk_step_ready()  # nothing pending
        a_env.chunk_step_async(act)
        b_env.chunk_step_async(act)  # both shards simulate now
        with pytest.raises(RuntimeError, match="twice without chunk_step_wait"):
            a_env.chunk_step_async(act)
        deadline = time.monotonic() + 60
        while not (a_env.chunk_step_ready() and b_env.chunk_step_ready()) and time.monotonic() < deadline:
            time.sleep(0.01)  # ready = the shards' results arrived: wait will not block
        assert a_env.chunk_step_ready() and b_env.chunk_step_ready()
        ra, rb, rr = a_env.chunk_step_wait(), b_env.chunk_step_wait(), ref.chunk_step(act)
        assert not a_env.chunk_step_ready()
        for r in (ra, rb):
            assert torch.equal(r.obs["states"], rr.obs["states"])
            assert torch.equal(r.obs["main_images"], rr.obs["main_images"])
        with pytest.raises(RuntimeError, match="without a pending chunk_step_async"):
            a_env.chunk_step_wait()
        ref.chunk_step_async(act)  # the in-process default: runs inside wait, same contract
        assert ref.chunk_step_ready()  # ... so the caller may run it whenever it likes
        assert torch.equal(ref.chunk_step_wait().obs["states"], a_env.chunk_step(act).obs["states"])
    finally:
        for env in (a_env, b_env, ref):
            env.close()


def test_video_views_through_workers_match_single_process_env():
    # 3 envs over 2 workers (2 + 1): video views of the first 2 come from worker 0 only
    vec = make_env(TWO, num_envs=3, num_workers=2, seed=5, image_size=24)
    one = make_env(TWO, num_envs=3, seed=5, image_size=24)
    try:
        for e in (vec, one):
            e.set_video(48, num_envs=2)
            e.reset(reset_state_ids=[9, 4, 9])
        a = torch.rand(3, 2, 7) - 0.5
        rv, r1 = vec.chunk_step(a), one.chunk_step(a)
        for k in ("main_images", "wrist_images"):
            assert rv.info["video_frames"][k].shape == (2, 2, 48, 48, 3)
            assert torch.equal(rv.info["video_frames"][k], r1.info["video_frames"][k])
        vec.set_video(None)
        assert "video_frames" not in vec.chunk_step(a).info
    finally:
        vec.close()
        one.close()
