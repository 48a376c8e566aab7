"""Env worker pipelining: stages overlap, yet the collected data is the same as stepping in order."""

import pytest
import torch

from rlinf_isaac.config import load_config
from rlinf_isaac.workers import EnvWorker, LocalHandle, RolloutWorker
from rlinf_isaac.workers.features import FeatureIndex, FeatureRef, fetch_features

OVR = ["actor.model.checkpoint_path=null", "env.train.max_episode_steps=32", "actor.model.num_action_chunks=16"]


@pytest.fixture(scope="module")
def rollout():
    cfg = load_config("cpu_quickstart", OVR)
    return cfg, RolloutWorker(cfg.actor.model, cfg.algorithm, rank=0, seed=3)


def _collect(cfg, rollout, stages, sim_procs, bootstrap_values=True):
    env_cfg = cfg.env.train
    env_cfg.num_workers = sim_procs
    worker = EnvWorker(env_cfg, rank=0, num_envs=4, num_stages=stages, total_envs=4,
                       bootstrap_values=bootstrap_values)
    try:
        rollout.reseed(11)
        result, traj = worker.rollout([LocalHandle(rollout)] * stages, num_chunk_steps=2, reset=True,
                                      reset_seed=5)
    finally:
        worker.close()
    # the stored inputs stayed on the rollout worker: fetch them as an actor does, then drop them
    assert isinstance(traj.forward_inputs, FeatureIndex) and traj.forward_inputs.num_envs == 4
    traj.forward_inputs = fetch_features(traj.forward_inputs, [LocalHandle(rollout)], "cpu")
    # T = 2 policy calls per stage stored inputs; the bootstrap V(s_T) calls sample nothing, store nothing
    assert rollout.release_features() == 2 * stages
    return result, traj


def test_subprocess_stages_match_in_process(rollout):
    cfg, rw = rollout
    r0, t0 = _collect(cfg, rw, stages=2, sim_procs=0)
    r1, t1 = _collect(cfg, rw, stages=2, sim_procs=1)  # async chunk_step in simulator processes
    assert t0.rewards.shape == (2, 4, 16)  # [T, B, C]
    for name in ("rewards", "terminated", "truncated", "valid", "logprobs", "values"):
        assert torch.equal(getattr(t0, name), getattr(t1, name)), name
    assert torch.equal(t0.forward_inputs["chain"], t1.forward_inputs["chain"])
    assert r0.env_steps == r1.env_steps == 2 * 4 * 16


def test_final_values_only_when_something_reads_them(rollout):
    """Episodes truncate at step 32 = the 2nd chunk: V(final obs) is asked for only when on."""
    cfg, rw = rollout
    _, on = _collect(cfg, rw, stages=1, sim_procs=0)
    _, off = _collect(cfg, rw, stages=1, sim_procs=0, bootstrap_values=False)
    assert on.truncated[1].any() and (on.final_values[1] != 0).all()
    assert torch.equal(off.final_values, torch.zeros_like(off.final_values))
    for name in ("rewards", "truncated", "logprobs", "values"):  # the rest is unchanged
        assert torch.equal(getattr(on, name), getattr(off, name)), name


def test_stage_split_keeps_env_ids_and_shapes(rollout):
    cfg, rw = rollout
    _, t1 = _collect(cfg, rw, stages=1, sim_procs=0)
    _, t2 = _collect(cfg, rw, stages=2, sim_procs=0)
    assert t1.env_ids.tolist() == t2.env_ids.tolist() == [0, 1, 2, 3]
    assert t1.values.shape == t2.values.shape == (3, 4)  # [T+1, B]: bootstrap row included


def test_stages_and_ranks_start_from_different_states(rollout):
    """Regression: stage envs once shared one seed, so every stage replayed the same episodes."""
    cfg, _ = rollout
    workers = [EnvWorker(cfg.env.train, rank=r, num_envs=4, num_stages=2, total_envs=8) for r in (0, 1)]
    try:
        obs = [w._reset_stage(s, 1, seed=7)["main_images"] for w in workers for s in (0, 1)]
        for i in range(4):
            for j in range(i + 1, 4):
                assert not torch.equal(obs[i], obs[j]), (i, j)
        again = workers[1]._reset_stage(1, 1, seed=7)["main_images"]
        assert torch.equal(again, obs[3])  # and it stays deterministic
        grouped = workers[0]._reset_stage(0, 2, seed=7)["main_images"]  # GRPO: the stage's 2 envs form a group
        assert torch.equal(grouped[0], grouped[1])
    finally:
        for w in workers:
            w.close()


def test_eval_replies_carry_actions_only(rollout):
    cfg, worker = rollout
    env_cfg = cfg.env.train
    env_cfg.num_workers = 0
    env = EnvWorker(env_cfg, rank=0, num_envs=2, num_stages=1, total_envs=2)
    try:
        obs = env.stages[0].reset(seed=1)
        actions, extras = worker.predict(obs, "eval")
        assert extras is None and actions.shape == (2, 16, 7)
        _, train_extras = worker.predict(obs, "train")
        ref = train_extras["forward_inputs"]  # the stored inputs stay on the rollout worker
        assert isinstance(ref, FeatureRef) and ref.rows == 2 and train_extras["logprobs"].shape[0] == 2
        assert set(worker.export_features([(ref.key, 0, 2)], "host")) >= {"chain", "state"}
        worker.release_features()
    finally:
        env.close()

