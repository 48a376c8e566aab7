"""The controller: the run's worker groups behind typed phase methods (what the runner loop calls).

Env rank r, stage s talks to rollout rank ``(r * k + s) % n_rollout`` with
``k = max(1, n_rollout // n_env)``; trajectories are split into contiguous env shards,
one run of shards per actor rank, in global env order.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlinf_isaac.algorithms.base import build_algorithm
from rlinf_isaac.cluster import cuda_ipc
from rlinf_isaac.cluster.placement import Placement, PlacementError, parse_placement
from rlinf_isaac.cluster.worker_group import WorkerBase, WorkerGroup, ray_auth, session_dir, start_ray
from rlinf_isaac.config.environment import describe_switches
from rlinf_isaac.config.schema import Config, validate
from rlinf_isaac.config.structured import ConfigError
from rlinf_isaac.data.episodes import EpisodeLog, episode_metrics
from rlinf_isaac.data.requests import AdvantageRequest, EvalRequest, RolloutRequest
from rlinf_isaac.runners.groups import ActorGroup, EnvGroup, RolloutGroup
from rlinf_isaac.runners.preflight import preflight
from rlinf_isaac.seeding import derive_seed
from rlinf_isaac.workers.actor_worker import ActorWorker
from rlinf_isaac.workers.env_worker import EnvWorker
from rlinf_isaac.workers.rollout_worker import RolloutWorker

if TYPE_CHECKING:
    from rlinf_isaac.logging.video import RolloutVideo

__all__ = ["Controller", "RolloutOutput", "resolve_placement"]

log = logging.getLogger(__name__)


@dataclass
class RolloutOutput:
    pieces: list[list[Any]]  # per actor rank: object refs of its trajectory shards
    metrics: dict[str, float]
    env_steps: int
    video: "RolloutVideo | None"  # the first env worker's video when recorded
    seconds: float = 0.0  # wall time of the rollout


def resolve_placement(cfg: Config) -> Placement:
    """Parse ``cluster.component_placement`` against this machine (GPUs, or CPU slots)."""
    import torch

    c = cfg.cluster
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_cuda and c.ray_address is None:
        want = c.gpus_per_node or n_cuda
        if want > n_cuda:
            raise PlacementError(
                f"cluster.gpus_per_node = {want}, but this machine has {n_cuda} GPU(s); use a "
                f"config/cluster/ layout for {n_cuda} GPU(s) or set cluster.gpus_per_node={n_cuda}")
        placement = parse_placement(c.component_placement, gpus_per_node=want, num_nodes=c.num_nodes)
    else:  # no GPU: the same layouts run with ranks on CPU slots
        slots = c.gpus_per_node or 1
        placement = parse_placement(c.component_placement, gpus_per_node=slots, num_nodes=c.num_nodes,
                                    device_type="cpu" if not n_cuda else "cuda")
    for comp in ("env", "rollout", "actor"):
        placement.processes(comp)  # each must be placed
    return placement


def _check_ratios(n_env: int, n_roll: int, n_act: int) -> None:
    key = "cluster.component_placement"
    if n_roll % n_env and n_env % n_roll:
        raise ConfigError(f"{key}: {n_env} env and {n_roll} rollout processes: one count must divide the other")
    if n_act % n_env and n_env % n_act:
        raise ConfigError(f"{key}: {n_env} env and {n_act} actor processes: one count must divide the other")


class Controller:
    """Env, rollout and actor worker groups started from a validated config."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.synced_version: int | None = None  # weights version the rollout workers hold
        self._graph_warnings: set[str] = set()  # CUDA graph capture failures already reported
        self.placement = p = resolve_placement(cfg)
        self.n_env, self.n_roll, self.n_act = (p.world_size(c) for c in ("env", "rollout", "actor"))
        validate(cfg, env_ranks=self.n_env, actor_ranks=self.n_act)
        _check_ratios(self.n_env, self.n_roll, self.n_act)
        checked = preflight(cfg)  # tasks, resume and policy checkpoints: bad ones fail here, before Ray
        print(p.table(), flush=True)
        for line in checked:
            print(line, flush=True)
        print(build_algorithm(cfg.algorithm).describe() + "; " + describe_switches(cfg), flush=True)
        self._plan_transfers()
        self.swap = bool(p.components_sharing_gpus()) and p.device_type == "cuda"
        self.groups: list[WorkerGroup] = []
        try:
            self._start()
        except BaseException:
            self.shutdown()
            raise

    def _start(self) -> None:
        cfg, p = self.cfg, self.placement
        nodes = start_ray(cfg.cluster.ray_address, tensor_transport=cfg.cluster.tensor_transport)
        print(describe_ray(cfg.cluster.ray_address, nodes), flush=True)
        _check_nodes(p, nodes, cfg.cluster.ray_address)
        log_dir = Path(cfg.runner.logger.log_path) / "workers"
        dev = "cuda:0" if p.device_type == "cuda" else "cpu"
        t = cfg.cluster.worker_timeout_s
        addr = f"tcp://{_node_ip(nodes, p.processes('actor')[0].node)}:{_free_port()}"
        seed = cfg.runner.seed
        self.actors = ActorGroup("actor", ActorWorker, p, "actor", [
            dict(actor_cfg=cfg.actor, algo_cfg=cfg.algorithm, rank=r, world_size=self.n_act, device=dev,
                 max_steps=max(1, cfg.runner.max_steps), dist_addr=addr, seed=seed) for r in range(self.n_act)],
            log_dir, t, nodes)
        self.groups.append(self.actors)
        self.rollouts = RolloutGroup("rollout", RolloutWorker, p, "rollout", [
            dict(model_cfg=cfg.actor.model, algo_cfg=cfg.algorithm, rank=r, device=dev,
                 seed=seed, enable_offload=cfg.rollout.enable_offload) for r in range(self.n_roll)],
            log_dir, t, nodes)
        self.groups.append(self.rollouts)
        n = cfg.env.train.total_num_envs // self.n_env
        ev = cfg.env.eval or cfg.env.train
        reads_final_values = build_algorithm(cfg.algorithm).reads_final_values(cfg)
        self.envs = EnvGroup("env", EnvWorker, p, "env", [
            dict(env_cfg=cfg.env.train, rank=r, num_envs=n, num_stages=cfg.rollout.pipeline_stage_num,
                 eval_cfg=ev, eval_num_envs=ev.total_num_envs // self.n_env, device=dev,
                 total_envs=cfg.env.train.total_num_envs, bootstrap_values=reads_final_values, seed=seed,
                 cuda_ipc=self.ipc_on)
            for r in range(self.n_env)], log_dir, t, nodes)
        self.groups.append(self.envs)
        print(f"env: {self.envs.describe()}", flush=True)
        if len(nodes) > 1:
            print(self._workers_by_node(nodes), flush=True)

    def _workers_by_node(self, nodes: list[dict]) -> str:
        """Where each worker runs, as reported by the worker itself: one line per Ray node."""
        index = {n["NodeID"]: i for i, n in enumerate(nodes)}
        where: dict[int, list[str]] = {}
        for group in self.groups:
            for rank, node_id in enumerate(group.run(WorkerBase.node_id)):
                where.setdefault(index.get(node_id, -1), []).append(f"{group.name}-{rank}")
        lines = [f"  node {i} ({nodes[i]['NodeID'][:8]}{', head' if i == 0 else ''}): {', '.join(names)}"
                 if i >= 0 else f"  not a listed node: {', '.join(names)}" for i, names in sorted(where.items())]
        return "workers by node:\n" + "\n".join(lines)

    # ------------------------------------------------------------------ phases
    def sync_weights(self, version: int) -> None:
        """Actor rank 0's trainable tensors -> every rollout worker (skipped if up to date)."""
        self._swap("rollout")
        if version == self.synced_version:  # e.g. the next step's sync right after an evaluation
            return
        via = self.sync_via
        refs = self.actors.packed_weights("ipc" in via, "host" in via, ranks=self._gather_ranks())
        self.rollouts.sync_weights(refs[0], version, via)
        self.actors.wait(refs[1:], what="sync_weights")
        self.synced_version = version

    def rollout(self, step: int, record_video: bool = False) -> RolloutOutput:
        """One global step's rollout: ``algorithm.rollout_epoch`` epochs of every env worker, each
        reset from ``derive_seed(runner.seed, "rollout", step, epoch)``, the policy noise of rollout
        rank r restarted from ``derive_seed(runner.seed, "policy_noise", step, r)``."""
        t0 = time.perf_counter()
        cfg = self.cfg
        seed = cfg.runner.seed
        n_chunk_steps = cfg.env.train.max_episode_steps // cfg.actor.model.num_action_chunks
        k = max(1, self.n_act // self.n_env)  # shards per env worker
        self.rollouts.reseed([derive_seed(seed, "policy_noise", step, r) for r in range(self.n_roll)])
        pieces: list[list[Any]] = [[] for _ in range(self.n_act)]
        eps, steps, video = EpisodeLog(), 0, None
        for epoch in range(cfg.algorithm.rollout_epoch):
            requests = [RolloutRequest(
                rollout_handles=[self.rollouts.handle(self._rollout_rank(r, s)) for s in range(cfg.rollout.pipeline_stage_num)],
                num_chunk_steps=n_chunk_steps, reset_seed=derive_seed(seed, "rollout", step, epoch),
                group_size=cfg.algorithm.group_size, pieces=k, epoch=epoch,
                record_video=record_video and r == 0 and epoch == 0,
                obs_ipc=[self.obs_ipc(r, self._rollout_rank(r, s)) for s in range(cfg.rollout.pipeline_stage_num)])
                for r in range(self.n_env)]
            refs = self.envs.rollout(requests)
            results = self.envs.wait([out[0] for out in refs], what="rollout")
            flat = [piece for out in refs for piece in out[1:]]  # env-major order of shards
            per_actor = len(flat) // self.n_act
            for a in range(self.n_act):
                pieces[a].extend(flat[a * per_actor:(a + 1) * per_actor])
            for res in results:
                eps.extend(res.episodes)
                steps += res.env_steps
                video = video or res.video
        metrics = episode_metrics(eps, "env")
        # Per env worker, summed over its stages: simulator time and time waiting for actions.
        metrics["time/env"] = max(r.time_env for r in results)
        metrics["time/env_wait"] = max(r.time_wait for r in results)
        metrics["time/env_reset"] = max(r.time_reset for r in results)
        seconds, fallbacks = zip(*self.rollouts.timing())
        metrics["time/inference"] = max(seconds)
        metrics.update(self._graph_fallbacks(fallbacks))
        return RolloutOutput(pieces, metrics, steps, video, seconds=time.perf_counter() - t0)

    def _graph_fallbacks(self, reasons: tuple[str | None, ...]) -> dict[str, float]:
        """Warn once per reason when rollout workers run the policy eagerly although
        ``actor.model.cuda_graph`` is on; -> ``rollout/cuda_graph_eager`` (ranks affected)."""
        eager = [(rank, why) for rank, why in enumerate(reasons) if why is not None]
        for rank, why in eager:
            if why not in self._graph_warnings:
                self._graph_warnings.add(why)
                log.warning("rollout rank %d runs the policy without CUDA graphs (slower, same results): "
                            "capture failed with %s. Set actor.model.cuda_graph=false to run eagerly "
                            "on purpose.", rank, why)
        return {"rollout/cuda_graph_eager": float(len(eager))} if eager else {}

    def compute_advantages(self, pieces: list[list[Any]]) -> dict[str, float]:
        """Actors take their trajectory shards, fetch the stored inputs the shards point to from
        the rollout workers (data/features.py), compute advantages; the rollout workers then drop
        what they stored."""
        self._swap("actor")
        handles = [self.rollouts.handle(r) for r in range(self.n_roll)]
        out = self.actors.compute_advantages([AdvantageRequest(p, handles, self.ipc_ranks[a])
                                              for a, p in enumerate(pieces)])
        self.rollouts.release_features()
        return _mean_dicts(out)

    def update(self, step: int, proximal: bool = False) -> dict[str, float]:
        """The actors' update on the batch of the last compute_advantages; ``proximal``: that
        batch came from an older policy (decoupled objective, ActorWorker.update)."""
        return _mean_dicts(self.actors.update(step, proximal))

    def evaluate(self, episodes: int, seed: int, record_video: bool = False) -> tuple[EpisodeLog, "RolloutVideo | None"]:
        """``episodes`` episodes of the deterministic policy, all drawn from ``seed``: env rank r's
        round i resets from ``derive_seed(seed, "eval_episodes", r, i)`` and rollout rank r's noise
        (the flow's x_0) restarts from ``derive_seed(seed, "eval_noise", r)``. The same seed plays
        the same episodes with the same noise (``eval_embodiment.sh`` and fixed evaluations during
        training both pass ``env.eval.seed``)."""
        self._swap("rollout")
        self.rollouts.reseed([derive_seed(seed, "eval_noise", r) for r in range(self.n_roll)])
        per_rank = math.ceil(episodes / self.n_env)
        out = self.envs.evaluate([EvalRequest(self.rollouts.handle(self._rollout_rank(r, 0)), per_rank, seed,
                                              record_video and r == 0, self.obs_ipc(r, self._rollout_rank(r, 0)))
                                  for r in range(self.n_env)])
        eps = EpisodeLog()
        for e, _ in out:
            eps.extend(e)
        eps = EpisodeLog(eps.success_once[:episodes], eps.returns[:episodes], eps.episode_len[:episodes])
        return eps, next((v for _, v in out if v is not None), None)

    def actor_state(self) -> dict:
        return self.actors.state(ranks=self._gather_ranks())[0]

    def _gather_ranks(self) -> list[int] | None:
        """Actor ranks that must serve weights / state: all with FSDP (gathering shards is a
        collective), rank 0 alone otherwise."""
        return None if self.cfg.actor.training_backend == "fsdp" and self.n_act > 1 else [0]

    def load_actor_state(self, state: dict) -> None:
        self.actors.load_state(state)
        self.synced_version = None  # the actors' weights changed under the same version

    def shutdown(self) -> None:
        """Close simulators, kill every worker (also after a failure); idempotent."""
        for g in reversed(self.groups):
            if isinstance(g, EnvGroup):
                try:
                    g.close()
                except Exception as e:  # a dead env worker cannot close; kill it below
                    log.warning("env close failed: %s", str(e).splitlines()[0])
            g.kill()
        self.groups = []

    # ------------------------------------------------------------------ helpers
    def _plan_transfers(self) -> None:
        """Which GPU tensors go by CUDA IPC (same GPU) and which through the host, once:
        ``sync_via[r]`` for actor 0 -> rollout r, ``ipc_ranks[a]`` the rollout ranks on actor
        a's GPU. Printed at start-up."""
        p = self.placement
        self.ipc_on = on = self.cfg.cluster.cuda_ipc and p.device_type == "cuda"
        roll, act = p.processes("rollout"), p.processes("actor")
        self.ipc_ranks = [tuple(r for r, pr in enumerate(roll) if on and cuda_ipc.same_gpu(pa, pr)) for pa in act]
        self.sync_via = ["ipc" if r in self.ipc_ranks[0] else "host" for r in range(self.n_roll)]
        if p.device_type == "cuda":
            pairs = sum(len(r) for r in self.ipc_ranks)
            print(f"GPU tensors by CUDA IPC{'' if on else ' (off: cluster.cuda_ipc=false)'}: weight sync to "
                  f"{self.sync_via.count('ipc')} of {self.n_roll} rollout ranks, stored inputs on {pairs} of "
                  f"{self.n_act * self.n_roll} actor-rollout pairs; the rest through the host", flush=True)

    def obs_ipc(self, env_rank: int, rollout_rank: int) -> bool:
        """Whether env rank ``env_rank`` hands GPU-held observations to ``rollout_rank`` by CUDA IPC."""
        p = self.placement
        return self.ipc_on and cuda_ipc.same_gpu(p.processes("env")[env_rank], p.processes("rollout")[rollout_rank])

    def _rollout_rank(self, env_rank: int, stage: int) -> int:
        k = max(1, self.n_roll // self.n_env)
        return (env_rank * k + stage % k) % self.n_roll if k > 1 else env_rank * self.n_roll // self.n_env

    def _swap(self, active: str) -> None:
        """Colocated GPU components: offload the idle one, reload the active one."""
        if not self.swap:
            return
        idle, busy = (self.actors, self.rollouts) if active == "rollout" else (self.rollouts, self.actors)
        idle.offload()
        busy.reload()


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*dicts) if dicts else set()
    return {k: sum(d[k] for d in dicts if k in d) / sum(1 for d in dicts if k in d) for k in keys}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def describe_ray(address: str | None, nodes: list[dict]) -> str:
    """The start-up line on the Ray cluster: attached (and how it authenticated) or started here."""
    where = (f"attached to {address} with {ray_auth(address)}" if address
             else f"started a local instance (session {session_dir()})")
    return f"ray: {where}; {len(nodes)} node(s) alive"


def _check_nodes(p: Placement, nodes: list[dict], address: str | None) -> None:
    """Every node the placement names must be alive, before any worker starts."""
    if p.num_nodes > len(nodes):
        cluster = f"the Ray cluster at {address}" if address else "the local Ray instance"
        raise ConfigError(
            f"cluster.num_nodes = {p.num_nodes}, but {cluster} has {len(nodes)} alive node(s): start Ray on the "
            f"other nodes first (ray start --address=HEAD:PORT, docs/placement.md) and attach with "
            f"cluster.ray_address, or lower cluster.num_nodes"
        )


def _node_ip(nodes: list[dict], node: int) -> str:
    if node < len(nodes) and nodes[node].get("NodeManagerAddress"):
        return nodes[node]["NodeManagerAddress"]
    return "127.0.0.1"
