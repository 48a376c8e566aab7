"""SubprocVectorEnv: one batched env split into shards, each stepped in its own spawned process.

Worker ``w`` owns envs ``[offset_w, offset_w + n_w)`` and builds the registered task with
``env_index_offset=offset_w``, so per-env generators (seeded by (seed, global env index)) and
reset-state ids match the single-process env exactly. Observation images travel through
shared memory; everything else through pipes. A worker that dies or does not answer within
``timeout_s`` raises :class:`WorkerError` naming the worker, its exit code and its last log lines.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import shutil
import sys
import traceback
import weakref
from multiprocessing import shared_memory
from typing import Any, Sequence

import numpy as np
import torch

from rlinf_isaac.envs.base import BatchedEnv, ChunkStepResult, EnvSpec, EpisodeStats, Obs, as_env_ids
from rlinf_isaac.tempdirs import make_tempdir

__all__ = ["SubprocVectorEnv", "WorkerError"]

_LIVE: "weakref.WeakSet[SubprocVectorEnv]" = weakref.WeakSet()


class WorkerError(RuntimeError):
    """A simulator worker process died, hung, or raised."""


def _worker(idx: int, conn, task_id: str, num_envs: int, offset: int, kwargs: dict, log_path: str,
            shm_names: tuple[str, str]) -> None:
    """Worker loop: build the env shard, then serve (command, payload) requests until 'close'."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    from rlinf_isaac.envs.registry import make_env

    env = make_env(task_id, num_envs=num_envs, num_workers=0, env_index_offset=offset, **kwargs)
    h, w = env.spec.image_size
    shms = [shared_memory.SharedMemory(name=n) for n in shm_names]
    views = [np.ndarray((num_envs, h, w, 3), np.uint8, buffer=s.buf) for s in shms]
    print(f"env worker {idx} (pid {os.getpid()}): {num_envs} envs of {task_id} from global index {offset}", flush=True)
    conn.send(("ready", env.spec))
    try:
        while True:
            try:
                cmd, payload = conn.recv()
            except EOFError:  # parent gone: exit instead of lingering
                break
            if cmd == "close":
                conn.send(("ok", None))
                break
            try:
                conn.send(("ok", _serve(env, cmd, payload, views)))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        env.close()
        for s in shms:
            s.close()


def _serve(env, cmd: str, payload: Any, views: list[np.ndarray]) -> Any:
    if cmd == "reset":
        obs = env.reset(**payload)
        return _strip_images(obs, views)
    if cmd == "chunk_step":
        obs, reward, term, trunc, info = env.chunk_step(payload)
        return _strip_images(obs, views), reward, term, trunc, info
    if cmd == "privileged_state":
        return env.privileged_state()
    if cmd == "set_video":
        return env.set_video(*payload)
    if cmd == "crash":  # test hook: die like a segfaulting simulator would
        os._exit(int(payload))
    raise ValueError(f"unknown worker command {cmd!r}")


def _strip_images(obs: Obs, views: list[np.ndarray]) -> dict:
    views[0][:] = obs["main_images"].numpy()
    views[1][:] = obs["wrist_images"].numpy()
    return {"states": obs["states"], "task_descriptions": obs["task_descriptions"]}


class SubprocVectorEnv(BatchedEnv):
    """``num_envs`` envs of ``task_id`` spread over ``num_workers`` spawned processes (same contract)."""

    def __init__(self, task_id: str, num_envs: int, num_workers: int, env_kwargs: dict | None = None,
                 timeout_s: float = 120.0, start_timeout_s: float = 300.0):
        if not 1 <= num_workers <= num_envs:
            raise ValueError(f"num_workers must be in [1, num_envs={num_envs}], got {num_workers}")
        self.timeout_s = timeout_s
        self._closed = True
        self._failed = False  # a worker failed: close() keeps the worker logs
        sizes = [num_envs // num_workers + (i < num_envs % num_workers) for i in range(num_workers)]
        self._offsets = np.cumsum([0] + sizes[:-1]).tolist()
        self._sizes = sizes
        kwargs = dict(env_kwargs or {})
        size = kwargs.get("image_size", 84)
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        self._logdir = make_tempdir("rlinf_envs_")
        self._shms: list[list[shared_memory.SharedMemory]] = []
        self._procs, self._conns = [], []
        ctx = mp.get_context("spawn")
        for i, (n, off) in enumerate(zip(sizes, self._offsets)):
            shms = [shared_memory.SharedMemory(create=True, size=n * h * w * 3) for _ in range(2)]
            self._shms.append(shms)
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, name=f"env-worker-{i}", daemon=True,
                            args=(i, child, task_id, n, off, kwargs, self._log_path(i), tuple(s.name for s in shms)))
            p.start()
            child.close()
            self._procs.append(p)
            self._conns.append(parent)
        self._closed = False
        _LIVE.add(self)
        specs = [self._recv(i, start_timeout_s) for i in range(num_workers)]
        s0: EnvSpec = specs[0]
        self.spec = EnvSpec(s0.task_id, num_envs, s0.image_size, s0.instruction, s0.max_episode_steps, s0.control_hz)
        self._views = [[np.ndarray((n, h, w, 3), np.uint8, buffer=s.buf) for s in shms]
                       for n, shms in zip(sizes, self._shms)]

    # ------------------------------------------------------------------ plumbing
    def _log_path(self, i: int) -> str:
        return os.path.join(self._logdir, f"worker{i}.log")

    def _log_tail(self, i: int, n: int = 20) -> str:
        try:
            with open(self._log_path(i), errors="replace") as f:
                return "".join(f.readlines()[-n:]) or "<empty log>"
        except OSError:
            return "<no log>"

    def _fail(self, i: int, why: str) -> WorkerError:
        p = self._procs[i]
        err = WorkerError(
            f"env worker {i} (pid {p.pid}, envs {self._offsets[i]}..{self._offsets[i] + self._sizes[i] - 1}) "
            f"{why}; exit code {p.exitcode}; last log lines:\n{self._log_tail(i)}\n(full logs: {self._logdir})"
        )
        self._failed = True
        self.close()
        return err

    def _recv(self, i: int, timeout: float | None = None) -> Any:
        conn, p = self._conns[i], self._procs[i]
        timeout = self.timeout_s if timeout is None else timeout
        waited = 0.0
        while not conn.poll(0.05):
            waited += 0.05
            if not p.is_alive() and not conn.poll(0):
                p.join(timeout=1.0)
                raise self._fail(i, "died")
            if waited >= timeout:
                raise self._fail(i, f"did not answer within {timeout:.0f} s (hung)")
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            p.join(timeout=1.0)
            raise self._fail(i, "closed its pipe (died)") from None
        if status == "error":
            raise self._fail(i, f"raised an exception:\n{payload}")
        return payload

    def _send(self, cmd: str, payloads: Sequence[Any]) -> None:
        if self._closed:
            raise RuntimeError("SubprocVectorEnv is closed")
        for i, pl in enumerate(payloads):
            try:
                self._conns[i].send((cmd, pl))
            except (BrokenPipeError, OSError):
                raise self._fail(i, "is not reachable (broken pipe)") from None

    def _call(self, cmd: str, payloads: Sequence[Any]) -> list[Any]:
        self._send(cmd, payloads)
        return [self._recv(i) for i in range(len(payloads))]

    def _obs(self, parts: list[dict]) -> Obs:
        return Obs(
            main_images=torch.from_numpy(np.concatenate([v[0] for v in self._views])),
            wrist_images=torch.from_numpy(np.concatenate([v[1] for v in self._views])),
            states=torch.cat([p["states"] for p in parts]),
            task_descriptions=[t for p in parts for t in p["task_descriptions"]],
        )

    # ------------------------------------------------------------------ contract
    def reset(self, seed=None, reset_state_ids=None, env_ids=None) -> Obs:
        """See :meth:`BatchedEnv.reset`; env_ids / reset_state_ids are global and routed to shards."""
        ids = as_env_ids(env_ids, self.num_envs)
        pinned = None if reset_state_ids is None else torch.as_tensor(reset_state_ids, dtype=torch.int64).reshape(-1)
        if pinned is not None and pinned.numel() != ids.numel():
            raise ValueError(f"reset_state_ids must hold one id per reset env ({ids.numel()}), got {pinned.numel()}")
        payloads = []
        for off, n in zip(self._offsets, self._sizes):
            mask = (ids >= off) & (ids < off + n)
            payloads.append({"seed": seed, "env_ids": (ids[mask] - off).tolist(),
                             "reset_state_ids": None if pinned is None else pinned[mask].tolist()})
        return self._obs(self._call("reset", payloads))

    def chunk_step(self, actions: torch.Tensor) -> ChunkStepResult:
        """Split actions float [B, C, A] by shard, step all workers in parallel, concatenate in env order."""
        self.chunk_step_async(actions)
        return self.chunk_step_wait()

    def chunk_step_async(self, actions: torch.Tensor) -> None:
        """Send each shard its actions and return at once; the workers simulate meanwhile."""
        from rlinf_isaac.envs.base import validate_actions

        acts = validate_actions(actions, self.num_envs)
        self._chunk_sent()
        self._send("chunk_step", [acts[o : o + n] for o, n in zip(self._offsets, self._sizes)])

    def chunk_step_ready(self) -> bool:
        """True when every shard has sent its result of the pending chunk (nothing left to wait for)."""
        return self._chunk_in_flight and all(conn.poll(0) for conn in self._conns)

    def chunk_step_wait(self) -> ChunkStepResult:
        """Collect the shards' results of the pending chunk, concatenated in env order."""
        self._chunk_collected()
        parts = [self._recv(i) for i in range(len(self._conns))]
        obs = self._obs([p[0] for p in parts])
        cat = lambda k: torch.cat([p[k] for p in parts])  # noqa: E731
        infos = [p[4] for p in parts]
        info = {k: torch.cat([f[k] for f in infos]) for k in ("success", "valid", "reset_state_ids", "diverged")}
        info["episode"] = EpisodeStats(*(torch.cat([getattr(f["episode"], k) for f in infos])
                                         for k in ("done", "success_once", "returns", "episode_len")))
        if "frames" in infos[0]:
            info["frames"] = torch.cat([f["frames"] for f in infos])
        videos = [f["video_frames"] for f in infos if "video_frames" in f]  # shards holding the first N envs
        if videos:
            info["video_frames"] = {k: torch.cat([v[k] for v in videos]) for k in videos[0]}
        info["final_obs"] = self._final_obs(obs, infos)
        return ChunkStepResult(obs, cat(1), cat(2), cat(3), info)

    def _final_obs(self, obs: Obs, infos: list[dict]) -> Obs | None:
        if all(f["final_obs"] is None for f in infos):
            return None
        rows = [f["final_obs"] or None for f in infos]
        out = {k: [] for k in ("main_images", "wrist_images", "states")}
        for f, o, n in zip(rows, self._offsets, self._sizes):
            for k in out:
                out[k].append(f[k] if f is not None else obs[k][o : o + n])
        return Obs(**{k: torch.cat(v) for k, v in out.items()}, task_descriptions=list(obs["task_descriptions"]))

    def set_video(self, frame_size: int | None, num_envs: int | None = None) -> None:
        """See :meth:`BatchedEnv.set_video`; each shard renders those of the first N envs it holds
        (video views travel through the pipes, ~0.4 MB per env and step at 256 px)."""
        if self._chunk_in_flight:
            raise RuntimeError("set_video called while a chunk is pending: call chunk_step_wait first")
        before = self.video_request
        super().set_video(frame_size, num_envs)
        if self.video_request == before:
            return
        if self.video_request is None:
            payloads = [(None, None)] * len(self._procs)
        else:
            s, n = self.video_request
            payloads = [(s, max(0, min(n - o, k))) for o, k in zip(self._offsets, self._sizes)]
        self._call("set_video", payloads)

    def privileged_state(self) -> dict[str, np.ndarray]:
        """Concatenation of the shards' ``privileged_state()`` in env order."""
        parts = self._call("privileged_state", [None] * len(self._procs))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def describe(self) -> str:
        return f"MuJoCo: {self.spec.task_id}, {self.num_envs} envs in {len(self._procs)} simulator processes"

    def close(self) -> None:
        """Stop workers (polite 'close', then terminate, then kill), free shared memory and, unless
        a worker failed, the worker logs' temporary folder. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn, p in zip(self._conns, self._procs):
            try:
                if p.is_alive():
                    conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for conn, p in zip(self._conns, self._procs):
            p.join(timeout=5.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
            if p.is_alive():
                p.kill()
                p.join(timeout=2.0)
            conn.close()
        for shms in self._shms:
            for s in shms:
                s.close()
                s.unlink()
        if not self._failed:
            shutil.rmtree(self._logdir, ignore_errors=True)
        _LIVE.discard(self)


@atexit.register
def _close_all() -> None:
    for env in list(_LIVE):
        env.close()
