"""Env worker pipelining: stages overlap, yet the collected data is the same as stepping in order."""

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from rlinf_isaac.cluster.handles import LocalHandle
from rlinf_isaac.config import load_config
from rlinf_isaac.data.features import FeatureIndex, FeatureRef, fetch_features
from rlinf_isaac.data.requests import RolloutRequest
from rlinf_isaac.logging.video import GAP, RolloutVideo
from rlinf_isaac.sft.dataset import decode_video
from rlinf_isaac.workers import EnvWorker, RolloutWorker

OVR = ["actor.model.checkpoint_path=null", "env.train.max_episode_steps=32", "actor.model.num_action_chunks=16"]


@pytest.fixture(scope="module")
def rollout():
    cfg = load_config("cpu_quickstart", OVR)
    return cfg, RolloutWorker(cfg.actor.model, cfg.algorithm, rank=0, seed=3)


class QueuedHandle:
    """A rollout worker behind a one-thread queue, as a Ray actor is: ``m.remote()`` returns a
    Future at once and calls run one at a time in call order. Logs ("queued", i, method) and
    ("end", i, method) for the i-th call; each ``predict`` takes at least ``latency_s``."""

    def __init__(self, worker, latency_s: float):
        self._worker, self._latency = worker, latency_s
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._lock = threading.Lock()
        self.events: list[tuple[str, int, str]] = []

    def _log(self, kind: str, i: int, name: str) -> int:
        with self._lock:
            i = sum(e[0] == "queued" for e in self.events) if i < 0 else i
            self.events.append((kind, i, name))
            return i

    def __getattr__(self, name):
        handle = self

        class _Method:
            def remote(self, *args):
                def call():
                    t0 = time.perf_counter()
                    out = getattr(handle._worker, name)(*args)
                    if name == "predict":
                        time.sleep(max(0.0, handle._latency - (time.perf_counter() - t0)))
                    handle._log("end", i, name)
                    return out

                i = handle._log("queued", -1, name)
                return handle._pool.submit(call)

        return _Method()


def _collect(cfg, rollout, stages, sim_procs, bootstrap_values=True, handle=None, record_video=False):
    env_cfg = cfg.env.train
    env_cfg.num_workers = sim_procs
    worker = EnvWorker(env_cfg, rank=0, num_envs=4, num_stages=stages, total_envs=4,
                       bootstrap_values=bootstrap_values)
    try:
        rollout.reseed(11)
        result, traj = worker.rollout(RolloutRequest([handle or LocalHandle(rollout)] * stages, num_chunk_steps=2,
                                                     reset_seed=5, record_video=record_video))
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


@pytest.mark.parametrize("sim_procs", [0, 1])
def test_next_request_is_queued_before_the_policy_is_free(rollout, sim_procs):
    """S = 2 through a queued (Ray-like) handle: while stage 1 is inferred, stage 0's chunk is
    simulated and its next request queued, so the policy never waits for the env worker
    between stages. The data is the same as with direct calls."""
    cfg, rw = rollout
    handle = QueuedHandle(rw, latency_s=1.0)  # inference longer than a chunk simulation, also on a busy CI machine
    _, direct = _collect(cfg, rw, stages=2, sim_procs=0)
    _, queued = _collect(cfg, rw, stages=2, sim_procs=sim_procs, handle=handle)
    for name in ("rewards", "terminated", "truncated", "logprobs", "values"):
        assert torch.equal(getattr(direct, name), getattr(queued, name)), name
    ev = handle.events
    pos = {e[:2]: k for k, e in enumerate(ev)}
    n = sum(e[:3:2] == ("queued", "predict") for e in ev)  # 2 stages x 2 chunk steps
    # each call from the third to the one after the last predict was queued before the call
    # ahead of it ended (queued only after stage 1's chunk came back, the policy would idle
    # between stages); the calls after that wait for the last chunks' simulation by necessity
    assert n == 4 and all(pos["queued", i] < pos["end", i - 1] for i in range(2, n + 1)), str(ev)


def test_rollout_video_leaves_the_data_unchanged(rollout, tmp_path):
    """Recording a video (env views at frame_size, through a simulator process) changes nothing the
    policy sees or learns from; the video holds stage 0's first max_envs envs, one frame per step."""
    cfg, rw = rollout
    cfg = copy.deepcopy(cfg)
    cfg.env.train.video_cfg.frame_size, cfg.env.train.video_cfg.max_envs = 64, 3
    plain, t0 = _collect(cfg, rw, stages=2, sim_procs=0)
    rec, t1 = _collect(cfg, rw, stages=2, sim_procs=1, record_video=True)
    for name in ("rewards", "terminated", "truncated", "valid", "logprobs", "values"):
        assert torch.equal(getattr(t0, name), getattr(t1, name)), name
    assert torch.equal(t0.forward_inputs["chain"], t1.forward_inputs["chain"])
    assert plain.video is None and isinstance(rec.video, RolloutVideo)
    v = rec.video  # stage 0 holds 2 envs: 2 tiles of (table | wrist) at 64 px, 1 column
    assert v.num_frames == 2 * 16 and v.frame_hw[1] == 2 * 64 and v.frame_hw[0] > 2 * 64 + GAP
    back = decode_video(v.save(tmp_path / "r.mp4"))
    assert back.shape == (32, *v.frame_hw, 3) and v.preview.shape == back.shape


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



def test_is_ready_and_resolve_for_values_futures_and_refs():
    from concurrent.futures import Future

    from rlinf_isaac.cluster.handles import is_ready, resolve

    assert is_ready(3) and resolve(3) == 3
    f = Future()
    assert not is_ready(f) and not is_ready(f, timeout=0.01)
    f.set_result("x")
    assert is_ready(f) and resolve(f) == "x"


@pytest.mark.parametrize("bootstrap", [True, False])
def test_isaaclab_simulator_captures_final_obs_only_for_bootstrapping(bootstrap):
    """An Isaac Lab simulator renders every camera once more on a step where an env ends to capture
    its last observation: asked for only when truncations bootstrap (user's extra wins)."""
    from types import SimpleNamespace

    env_cfg = load_config("isaaclab_stack_ppo_gr00t_tiny").env.train
    worker = SimpleNamespace(bootstrap_values=bootstrap, device="cpu", cuda_ipc=False)
    kwargs = EnvWorker._backend_kwargs(worker, env_cfg)
    assert kwargs["capture_final_obs"] is bootstrap and kwargs["stack"] == "newton"
