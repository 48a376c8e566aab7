"""Env worker: owns B simulated envs split into S pipeline stages and drives rollouts.

Pipelining: each stage is its own batched env. The worker queues a prediction for every
stage, then for each stage in turn waits for its action chunk and starts simulating it.
While it waits for stage s's chunk, it finishes every earlier stage whose simulation has
ended (or, for a backend that simulates in this process, simulates it now) and queues that
stage's next prediction at once, so the rollout worker finds the next request waiting when
it finishes stage s: simulation and inference overlap (S >= 2) and the policy does not idle
between stages.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import torch

from rlinf_isaac.cluster import cuda_ipc
from rlinf_isaac.cluster.handles import is_ready, resolve
from rlinf_isaac.cluster.worker_group import WorkerBase
from rlinf_isaac.config.schema import EnvConfig
from rlinf_isaac.data.episodes import EpisodeLog, RolloutResult
from rlinf_isaac.data.requests import EvalRequest, RolloutRequest
from rlinf_isaac.data.trajectory import StepRecord, split_envs, stack_stages
from rlinf_isaac.envs.base import BatchedEnv, Obs, upscaled_video_frames
from rlinf_isaac.envs.registry import add_task_modules, get_task, make_env
from rlinf_isaac.seeding import derive_seed

if TYPE_CHECKING:
    from rlinf_isaac.logging.video import RolloutVideo

__all__ = ["EnvWorker", "handoff"]

log = logging.getLogger(__name__)


def handoff(obs: Obs, ipc: bool) -> Obs:
    """``obs`` as sent to a rollout worker: with ``ipc`` (it shares this GPU) GPU-held tensors go
    as CUDA IPC handles (the rollout worker copies them on the device), else through Ray."""
    return cuda_ipc.share_tree(obs) if ipc else obs


class EnvWorker(WorkerBase):
    """One env rank: ``num_envs`` envs in ``num_stages`` stage envs of ``num_envs / S`` each."""

    def __init__(self, env_cfg: EnvConfig, rank: int, num_envs: int, num_stages: int,
                 eval_cfg: EnvConfig | None = None, eval_num_envs: int | None = None,
                 device: str = "cpu", total_envs: int | None = None, bootstrap_values: bool = True,
                 seed: int = 0, cuda_ipc: bool = False):
        """seed: the run seed (``runner.seed``); stage s is built with ``derive_seed(seed, "env", rank, s)``.
        cuda_ipc: GPU tensors may cross processes by CUDA IPC (``cluster.cuda_ipc`` on a GPU
        placement): an Isaac Lab simulator on this GPU then hands its observations over that way."""
        super().__init__()
        self.cuda_ipc = cuda_ipc
        # ask the rollout worker for V(final obs) at truncations; off when nothing reads them
        # (GRPO, no value head, algorithm.bootstrap_on_truncation=false): a blocking round trip
        # and a backbone forward per truncating chunk saved
        self.bootstrap_values = bootstrap_values
        self.rank, self.num_stages, self.device = rank, num_stages, device
        self.cfg, self.eval_cfg = env_cfg, eval_cfg or env_cfg
        self.eval_num_envs = eval_num_envs or num_envs
        self.stage_size = num_envs // num_stages
        self.env_offset = rank * num_envs  # global index of this worker's first env
        self.total_envs = total_envs or num_envs
        self.stages: list[BatchedEnv] = [
            self._make(env_cfg, self.stage_size, seed=derive_seed(seed, "env", rank, s))
            for s in range(num_stages)
        ]
        self._eval_env: BatchedEnv | None = None
        self._obs: list[Obs] | None = None  # current observation of each stage (auto-reset runs)

    def _make(self, cfg: EnvConfig, n: int, seed: int, auto_reset: bool | None = None) -> BatchedEnv:
        add_task_modules(cfg.task_modules)
        backend_kwargs = self._backend_kwargs(cfg)
        return make_env(
            cfg.task_id, num_envs=n, image_size=cfg.image_size, reward_type=cfg.reward_type,
            max_episode_steps=cfg.max_episode_steps, auto_reset=cfg.auto_reset if auto_reset is None else auto_reset,
            seed=seed, num_workers=cfg.num_workers, render_backend=cfg.render_backend,
            action_scale=cfg.action_scale, **{**backend_kwargs, **cfg.extra},
        )

    def _backend_kwargs(self, cfg: EnvConfig) -> dict:
        """Factory arguments of the task's backend: the Isaac Lab simulator's interpreter, stack
        and device (this worker's: the simulator process inherits its GPUs), and whether it
        captures ended episodes' last observations (only bootstrapping reads them)."""
        if get_task(cfg.task_id).backend != "isaaclab":
            return {}
        return {"python": cfg.isaaclab.python, "stack": cfg.isaaclab.stack, "device": self.device,
                "obs_transport": "cuda_ipc" if self.cuda_ipc else "pipe",
                "capture_final_obs": self.bootstrap_values}

    def describe(self) -> str:
        """One line on the simulator of this worker's training envs (the start-up banner prints it)."""
        return self.stages[0].describe()

    # ------------------------------------------------------------------ training rollouts
    def rollout(self, req: RolloutRequest) -> tuple:
        """Collect ``req.num_chunk_steps`` chunk steps from every stage (see :class:`RolloutRequest`).

        Resets every env first unless ``req.reset_seed`` is None (episodes then continue from
        the last rollout); with ``req.group_size`` G > 1, groups of G consecutive envs share one
        reset-state id. Env ids are offset by ``req.epoch * total envs`` so GRPO groups of
        different epochs stay apart.
        Returns ``(RolloutResult, shard_1, ..., shard_pieces)``: the episode statistics and
        ``req.pieces`` trajectories of B/pieces envs each (separate Ray objects).
        """
        rollout_handles, num_chunk_steps = req.rollout_handles, req.num_chunk_steps
        S, log_eps = self.num_stages, EpisodeLog()
        ipc = [bool(req.obs_ipc[s]) if req.obs_ipc else False for s in range(S)]
        t_reset = time.perf_counter()
        if req.reset_seed is not None or self._obs is None:
            self._obs = [self._reset_stage(s, req.group_size, req.reset_seed) for s in range(S)]
        t_reset = time.perf_counter() - t_reset
        refs = [rollout_handles[s].predict.remote(handoff(self._obs[s], ipc[s]), "train") for s in range(S)]
        records: list[list[StepRecord]] = [[] for _ in range(S)]
        video = self._start_video(self.stages[0], self.cfg, req.record_video)
        timing = {"env": 0.0, "wait": 0.0}
        extras_of: list[dict | None] = [None] * S
        in_flight: deque[int] = deque()  # stages whose chunk is simulating, oldest first
        final_refs: list[tuple] = []  # (final_values, idx, ref): V(final obs) asked for, filled in at the end

        def collect(p: int) -> None:  # finish stage p's chunk, queue its next inference
            t0 = time.perf_counter()
            res = self.stages[p].chunk_step_wait()
            timing["env"] += time.perf_counter() - t0
            # after the stage's last chunk only V(s_T) is needed (GAE's bootstrap at the window's
            # end): no actions sampled, no inputs stored for the actors
            final = len(records[p]) + 1 == num_chunk_steps
            obs = handoff(res.obs, ipc[p])
            refs[p] = (rollout_handles[p].values.remote(obs, True) if final
                       else rollout_handles[p].predict.remote(obs, "train"))
            records[p].append(self._record(extras_of[p], res, rollout_handles[p], final_refs, ipc[p]))
            log_eps.add(res.info["episode"])
            if video is not None and p == 0:
                self._add_video_frames(video, res)
            self._obs[p] = res.obs

        def actions_of(s: int):  # stage s's chunk; meanwhile finish the stages done simulating
            t0, busy = time.perf_counter(), 0.0
            while in_flight and not is_ready(refs[s]):
                if self.stages[in_flight[0]].chunk_step_ready():
                    t1 = time.perf_counter()
                    collect(in_flight.popleft())  # its next inference queues behind stage s's
                    busy += time.perf_counter() - t1
                else:
                    is_ready(refs[s], timeout=0.002)
            out = resolve(refs[s])
            timing["wait"] += time.perf_counter() - t0 - busy
            return out

        for _t in range(num_chunk_steps):
            for s in range(S):
                actions, extras_of[s] = actions_of(s)  # inference of s overlapped the others' simulation
                t1 = time.perf_counter()
                self.stages[s].chunk_step_async(actions)
                timing["env"] += time.perf_counter() - t1
                in_flight.append(s)
                while len(in_flight) > S - 1:  # keep up to S-1 other stages simulating
                    collect(in_flight.popleft())
        while in_flight:
            collect(in_flight.popleft())
        # The queued value calls carry the bootstrap values V(s_T) of every stage and V(final
        # obs) of the episodes truncated on the way; waiting for them is waiting for the policy.
        t0 = time.perf_counter()
        last = [resolve(refs[s]).float() for s in range(S)]
        for final_values, idx, ref in final_refs:
            final_values[idx] = resolve(ref).float()
        t_env, t_wait = timing["env"], timing["wait"] + time.perf_counter() - t0
        first = self.env_offset + req.epoch * self.total_envs  # stage s holds the next stage_size envs
        env_ids = torch.arange(S * self.stage_size) + first
        traj = stack_stages(records, last, env_ids)
        steps = num_chunk_steps * S * self.stage_size * records[0][0].rewards.shape[1]
        result = RolloutResult(log_eps, steps, t_env, t_wait, t_reset, None if video is None else video.finish())
        return (result, *split_envs(traj, req.pieces))

    def _reset_stage(self, s: int, group_size: int, seed: int | None) -> Obs:
        """Reset stage env ``s``. Each (rank, stage) gets its own seed stream: envs that
        share a local index in different stages or ranks must not replay the same episodes."""
        env = self.stages[s]
        stage_seed = None if seed is None else derive_seed(seed, "stage", self.rank, s)
        if group_size > 1:
            rng = np.random.default_rng(stage_seed)
            group_ids = rng.integers(0, 2**31 - 1, size=self.stage_size // group_size)
            ids = torch.as_tensor(np.repeat(group_ids, group_size))  # [n]: G consecutive envs share an id
            return env.reset(seed=stage_seed, reset_state_ids=ids)
        return env.reset(seed=stage_seed)

    def _record(self, extras: dict, res, handle, final_refs: list, ipc: bool = False) -> StepRecord:
        """One chunk step's record. A truncated episode's V(final obs) is asked for here and
        not waited for: ``(final_values, idx, ref)`` goes to ``final_refs``, and the caller
        fills the record's ``final_values[idx]`` once the rollout's simulation is over."""
        info = res.info
        trunc_done = res.truncated.any(1) & info["episode"].done.bool()  # [B] truncated episodes
        final_values = torch.zeros(res.reward.shape[0])
        if self.bootstrap_values and bool(trunc_done.any()) and info.get("final_obs") is not None:
            idx = trunc_done.nonzero().squeeze(1)
            fo = info["final_obs"]
            sub = Obs(main_images=fo["main_images"][idx], wrist_images=fo["wrist_images"][idx],
                      states=fo["states"][idx], task_descriptions=[fo["task_descriptions"][i] for i in idx.tolist()])
            final_refs.append((final_values, idx, handle.values.remote(handoff(sub, ipc))))
        return StepRecord(
            forward_inputs=extras["forward_inputs"], logprobs=extras["logprobs"].float(),
            values=extras["values"].float(), rewards=res.reward.float(), terminated=res.terminated.bool(),
            truncated=res.truncated.bool(), valid=info["valid"].bool(), success=info["success"].bool(),
            final_values=final_values,
        )

    @staticmethod
    def _start_video(env: BatchedEnv, cfg: EnvConfig, record: bool):
        """Ask ``env`` for video views at ``cfg.video_cfg.frame_size`` px (or stop asking) and
        return a :class:`~rlinf_isaac.logging.video.VideoRecorder` (None when not recording)."""
        v = cfg.video_cfg
        env.set_video(v.frame_size if record else None, v.max_envs)
        if not record:
            return None
        from rlinf_isaac.logging.video import VideoRecorder

        return VideoRecorder(frame_size=v.frame_size, max_envs=v.max_envs, fps=v.fps, overlay=v.info_on_video)

    @staticmethod
    def _add_video_frames(video, res) -> None:
        """Feed one chunk's video views to the recorder: ``info["video_frames"]``, or (a backend
        that ignores ``set_video``) its observation images upscaled."""
        views = res.info.get("video_frames") or upscaled_video_frames(res.obs, video.frame_size, video.max_envs)
        video.add_chunk(views, res.reward, res.info["success"], res.info["valid"], res.obs["task_descriptions"])

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, req: EvalRequest) -> tuple[EpisodeLog, "RolloutVideo | None"]:
        """Run ``req.num_episodes`` episodes with the deterministic policy (see :class:`EvalRequest`).

        Envs don't auto-reset: each round resets all eval envs, runs until every env's
        episode ended (or the step limit), and counts the finished episodes.
        """
        rollout_handle = req.rollout_handle
        if self._eval_env is None:
            seed = derive_seed(self.eval_cfg.seed, "env", self.rank, 0)  # every round resets it with its own seed
            self._eval_env = self._make(self.eval_cfg, self.eval_num_envs, seed=seed, auto_reset=False)
        env, eps, video = self._eval_env, EpisodeLog(), None
        rounds = -(-req.num_episodes // env.num_envs)
        for r in range(rounds):
            obs = env.reset(seed=derive_seed(req.seed, "eval_episodes", self.rank, r))
            done = torch.zeros(env.num_envs, dtype=torch.bool)
            vid = self._start_video(env, self.eval_cfg, req.record_video and r == 0)
            while not bool(done.all()):
                actions, _ = resolve(rollout_handle.predict.remote(handoff(obs, req.obs_ipc), "eval"))
                res = env.chunk_step(actions)
                ep = res.info["episode"]
                eps.add(ep)
                done |= ep.done.bool()
                if vid is not None:
                    self._add_video_frames(vid, res)
                obs = res.obs
            video = video if vid is None else vid.finish()
        keep = req.num_episodes
        out = EpisodeLog(eps.success_once[:keep], eps.returns[:keep], eps.episode_len[:keep])
        return out, video

    def close(self) -> None:
        for env in self.stages:
            env.close()
        if self._eval_env is not None:
            self._eval_env.close()
