"""Actor worker: advantages and PPO updates, data-parallel across actor ranks.

Each rank trains on its shard of envs; gradients are averaged across ranks with one
all-reduce per optimizer step (torch.distributed: gloo on CPU, NCCL on GPU), which is
what DDP does, minus bucketing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os

import torch
import torch.distributed as dist

from rlinf_isaac.algorithms.base import TrainBatch, build_algorithm
from rlinf_isaac.algorithms.decoupled import to_proximal
from rlinf_isaac.algorithms.registry import import_modules
from rlinf_isaac.cluster.handles import resolve
from rlinf_isaac.cluster.worker_group import WorkerBase
from rlinf_isaac.config.schema import ActorConfig, AlgorithmConfig
from rlinf_isaac.data.features import FeatureIndex, fetch_features
from rlinf_isaac.data.requests import AdvantageRequest
from rlinf_isaac.data.trajectory import concat_envs
from rlinf_isaac.data.weights import WeightPacker
from rlinf_isaac.distributed import fsdp
from rlinf_isaac.models.registry import build_policy
from rlinf_isaac.seeding import derive_seed

__all__ = ["ActorWorker", "update_threads"]

log = logging.getLogger(__name__)


def update_threads(requested: int | None, world_size: int) -> int:
    """Torch threads for a CPU actor rank's update: ``requested``, or (None) the cores this
    process may run on shared among the ``world_size`` actor ranks. The update runs while the
    env and rollout workers wait, so on a CPU machine it may use their cores too."""
    if requested is not None:
        return requested
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, world_size))


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (None: unchanged), then restore the count."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class ActorWorker(WorkerBase):
    """One actor rank: owns the trainable policy, its optimizer and scheduler."""

    def __init__(self, actor_cfg: ActorConfig, algo_cfg: AlgorithmConfig, rank: int, world_size: int,
                 device: str = "cpu", max_steps: int = 1, dist_addr: str | None = None, seed: int = 0):
        """seed: the run seed (``runner.seed``): the policy's random initialisation and each
        update's minibatch order derive from it (``rlinf_isaac.seeding``)."""
        super().__init__()
        self.seed = seed
        self.cfg, self.rank, self.world = actor_cfg, rank, world_size
        import_modules(algo_cfg.modules)  # user estimators / losses register in this process too
        self.algorithm = build_algorithm(algo_cfg)
        self.device = device
        if world_size > 1 and not dist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            dist.init_process_group(backend, init_method=dist_addr, rank=rank, world_size=world_size)
        self.policy = build_policy(actor_cfg.model, algo_cfg, device=device, seed=derive_seed(seed, "init"))
        # a compiled training graph rounds unlike the rollout's: recompute the old log-probs with it
        self._recompute_old_logprobs = bool(getattr(actor_cfg.model, "compile_action_head", False))
        # fsdp with one rank is plain training; with more, trainable layers are sharded (fsdp.py)
        self.sharded = actor_cfg.training_backend == "fsdp" and world_size > 1
        self.sharded_units = fsdp.shard_trainable_layers(self.policy, device) if self.sharded else []
        if self.sharded:
            log.info("actor rank %d: %d trainable units sharded over %d ranks (FSDP2)", rank,
                     len(self.sharded_units), world_size)
        self._packer = WeightPacker()
        self.policy.train()
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda(max_steps))
        self._batch: TrainBatch | None = None
        self._update_threads = update_threads(actor_cfg.num_threads, world_size) if device == "cpu" else None
        if self._update_threads is not None:
            log.info("actor rank %d: %d torch threads for the update (CPU)", rank, self._update_threads)
        self.start_memory_count()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        value, rest = [], []
        for name, p in self.policy.named_parameters():
            if p.requires_grad:
                (value if name.startswith("value_head.") else rest).append(p)
        groups = [{"params": rest, "lr": o.lr}]
        if value:
            groups.append({"params": value, "lr": o.value_lr})
        self._trainable = rest + value  # the order of the optimizer state's keys in checkpoints
        return torch.optim.AdamW(fsdp.split_param_groups(groups) if self.sharded else groups,
                                 betas=(o.adam_beta1, o.adam_beta2), eps=o.adam_eps, weight_decay=o.weight_decay,
                                 fused=o.fused or None)

    def _lr_lambda(self, max_steps: int):
        o = self.cfg.optim

        def f(step: int) -> float:
            if o.warmup_steps and step < o.warmup_steps:
                return (step + 1) / o.warmup_steps
            if o.lr_scheduler == "cosine":
                frac = (step - o.warmup_steps) / max(1, max_steps - o.warmup_steps)
                return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))  # lr_t = lr * (1 + cos(pi t/T)) / 2
            return 1.0

        return f

    # ------------------------------------------------------------------ phases
    def compute_advantages(self, req: AdvantageRequest) -> dict[str, float]:
        """Advantages of this rank's trajectory shards; keeps the flattened batch for update().

        The shards' stored inputs, left on the rollout workers (a ``FeatureIndex``), are
        fetched onto this rank's device from ``req.rollout_handles``; by CUDA IPC from the
        ranks in ``req.ipc_ranks`` (on this GPU)."""
        traj = concat_envs([resolve(p) for p in req.pieces])  # object refs when called through Ray
        if isinstance(traj.forward_inputs, FeatureIndex):
            if not req.rollout_handles:
                raise ValueError("the trajectory's stored inputs are on the rollout workers: pass their handles")
            traj.forward_inputs = fetch_features(traj.forward_inputs, req.rollout_handles, self.device, req.ipc_ranks)
        self._batch, metrics = self.algorithm.build_batch(traj, group=None)
        return metrics

    def update(self, step: int, proximal: bool = False) -> dict[str, float]:
        """PPO epochs over the stored batch; returns averaged metrics. ``proximal``: the batch
        was collected by an older policy (``rollout.overlap_update``): first recompute its
        log-probs under the current weights and train on the decoupled objective
        (algorithms/decoupled.py). With ``actor.model.compile_action_head`` this is done on every
        update: the recompute runs the compiled training graph, so the first ratio is exactly 1."""
        if self._batch is None:
            raise RuntimeError("update() before compute_advantages(): no batch to train on")
        batch, self._batch = self._batch, None
        per_rank = self.cfg.global_batch_size // self.world
        if batch.size < per_rank:
            raise ValueError(
                f"actor rank {self.rank} holds {batch.size} samples, fewer than one minibatch "
                f"(actor.global_batch_size / actor ranks = {per_rank}); lower actor.global_batch_size "
                f"or collect more (env.train.total_num_envs, max_episode_steps, algorithm.rollout_epoch)")
        sums: dict[str, float] = {}
        n_updates = 0
        weight_metrics: dict[str, float] = {}
        with _torch_threads(self._update_threads):
            if proximal or self._recompute_old_logprobs:
                batch, weight_metrics = to_proximal(batch, self._proximal_logprobs(batch, step),
                                                    self.algorithm.cfg.behavior_weight_cap)
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "update", step, self.rank))
            for _epoch in range(self.algorithm.cfg.update_epochs):
                perm = torch.randperm(batch.size, generator=gen)
                for start in range(0, batch.size - per_rank + 1, per_rank):
                    metrics = self._optimizer_step(batch, perm[start:start + per_rank], step, gen)
                    for k, v in metrics.items():
                        sums[k] = sums.get(k, 0.0) + v
                    n_updates += 1
        self.scheduler.step()
        out = {k: v / max(1, n_updates) for k, v in sums.items()}
        out.update(weight_metrics)
        out["actor/lr"] = self.optimizer.param_groups[0]["lr"]
        return out

    def _proximal_logprobs(self, batch: TrainBatch, step: int) -> torch.Tensor:
        """log pi(a|s) of every sample under the current weights, like ``batch.old_logprobs``.
        Computed in the first epoch's minibatch order and micro-batches, so the first optimizer
        step's ratio pi_theta / pi_prox is exactly 1 (with gradients on when the training graph
        is compiled: a compiled graph without them is another graph, which rounds differently)."""
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "update", step, self.rank))
        perm = torch.randperm(batch.size, generator=gen)  # the update's first permutation
        per_rank, micro = self.cfg.global_batch_size // self.world, self.cfg.micro_batch_size
        prox = torch.empty_like(batch.old_logprobs)
        for start in range(0, batch.size, per_rank):
            idx = perm[start:start + per_rank]
            n_micro = max(1, idx.numel() // micro)
            for m in range(n_micro):
                part = idx[m * micro:(m + 1) * micro] if m < n_micro - 1 else idx[m * micro:]
                with torch.set_grad_enabled(self._recompute_old_logprobs):
                    out = self.policy.evaluate({k: v[part] for k, v in batch.forward_inputs.items()})
                prox[part] = out["logprobs"].detach().float().to(prox.device, prox.dtype)
        return prox

    def _optimizer_step(self, batch: TrainBatch, idx: torch.Tensor, step: int,
                        gen: torch.Generator) -> dict[str, float]:
        micro = self.cfg.micro_batch_size
        n_micro = max(1, idx.numel() // micro)
        self.optimizer.zero_grad(set_to_none=True)
        acc: dict[str, float] = {}
        for m in range(n_micro):
            loss, metrics = self.algorithm.loss(self.policy, batch, idx[m * micro:(m + 1) * micro], step, gen)
            (loss / n_micro).backward()
            for k, v in metrics.items():
                acc[k] = acc.get(k, 0.0) + float(v) / n_micro
        self._all_reduce_grads()
        params = [p for p in self.policy.parameters() if p.requires_grad]
        acc["actor/grad_norm"] = fsdp.clip_grad_norm(params, self.cfg.optim.clip_grad, self.sharded)
        self.optimizer.step()
        return acc

    def _all_reduce_grads(self) -> None:
        if self.world == 1:
            return
        # sharded layers' gradients are already averaged across ranks by FSDP's reduce-scatter
        grads = [p.grad for p in self.policy.parameters()
                 if p.requires_grad and p.grad is not None and not fsdp.is_sharded(p.grad)]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world  # mean gradient across ranks
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    # ------------------------------------------------------------------ weights & state
    def sharded_layers(self) -> list[str]:
        """The modules FSDP shards as units on this rank (none with DDP)."""
        return self.sharded_units

    # With FSDP the first three gather shards: every actor rank must call them together (the
    # cluster does); each returns full, unsharded tensors in DDP's format.
    def trainable_weights(self) -> dict[str, torch.Tensor]:
        """Trainable tensors on the CPU (checkpoints, tests)."""
        return {k: v.cpu() for k, v in fsdp.full_trainable_state(self.policy).items()}

    def packed_weights(self, ipc: bool = False, host: bool = True) -> dict | None:
        """Trainable tensors in one buffer, for actor -> rollout sync (weight_sync.py):
        ``{"ipc": PackedWeights | None, "host": PackedWeights | None}``; "ipc" holds the CUDA IPC
        handle of a device buffer (for rollout workers on this GPU, when ``ipc`` and the
        weights are on a GPU), "host" a host buffer (when ``host``, or when IPC is not possible).
        Rank 0's is sent; the other ranks (FSDP: they took part in the gather) return None."""
        full = fsdp.full_trainable_state(self.policy)
        if self.rank != 0:
            return None
        on_gpu = ipc and all(t.is_cuda for t in full.values())  # offloaded weights go through the host
        shared = self._packer.share(full) if on_gpu else None
        return {"ipc": shared, "host": self._packer.pack(full) if host or shared is None else None}

    def state(self) -> dict:
        """Everything a checkpoint needs (rank 0's is saved; the same on every rank)."""
        return {"model": self.trainable_weights(),
                "optimizer": fsdp.full_optimizer_state(self.optimizer, self._trainable),
                "scheduler": fsdp.full_scheduler_state(self.scheduler)}

    def load_state(self, state: dict) -> None:
        """Load a full (unsharded) state from any backend; with FSDP every rank loads together."""
        params = dict(self.policy.named_parameters())
        model = {k: fsdp.like_param(v, params[k]) if k in params and v.shape == params[k].shape else v
                 for k, v in state["model"].items()}  # mismatches are named by the policy's check
        self.policy.load_trainable_state_dict(model)
        optim = state["optimizer"]
        self.optimizer.load_state_dict(fsdp.optimizer_state_like(self.optimizer, optim, self._trainable)
                                       if self.sharded else optim)
        self.scheduler.load_state_dict(fsdp.scheduler_state_like(self.scheduler, state["scheduler"]))

    def offload(self) -> None:
        """Weights and optimizer state to host memory while colocated workers use the GPU."""
        if self.cfg.enable_offload and self.device != "cpu":
            self._move("cpu")
            torch.cuda.empty_cache()

    def reload(self) -> None:
        if self.cfg.enable_offload and self.device != "cpu":
            self._move(self.device)

    def _move(self, device: str) -> None:
        self.policy.to(device)
        for state in self.optimizer.state.values():  # AdamW moments live beside each parameter
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    state[k] = v.to(device, non_blocking=True)
