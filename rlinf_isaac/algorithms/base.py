"""The algorithm seam: a registered object that turns a trajectory into a training batch and a
minibatch of it into a loss.

An :class:`Algorithm` owns what differs between RL algorithms — which advantage estimator it
feeds and with which tensors, how advantages, returns and masks are flattened into samples,
which loss terms a minibatch contributes, and the config checks it needs. The actor worker
keeps what does not differ: micro-batching, backward, gradient averaging across ranks (DDP or
FSDP), clipping and the optimizer step. Built-ins: ``ppo`` (``ppo.py``: actor-critic, GAE) and
``grpo`` (``grpo.py``: group-relative, no critic). ``algorithm.adv_type`` names a registered
estimator, and the estimator names its algorithm (``register_advantage(name, algorithm=...)``).

Dimension names: T chunk steps, B envs, C actions per chunk, N = T * B samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

import torch

from rlinf_isaac.algorithms.losses import entropy_bonus, masked_mean, sequence_mean_weights, successful_episode_steps
from rlinf_isaac.algorithms.normalization import normalize_advantages
from rlinf_isaac.algorithms.registry import (
    advantage_algorithm,
    get_advantage,
    get_algorithm_class,
    get_policy_loss,
)

if TYPE_CHECKING:
    from rlinf_isaac.config.schema import AlgorithmConfig, Config
    from rlinf_isaac.data.trajectory import Trajectory

__all__ = ["Advantages", "Algorithm", "TrainBatch", "build_algorithm", "build_train_batch"]


@dataclass
class TrainBatch:
    """Flattened samples N = T*B of one rank.

    forward_inputs: dict of [N, ...]; old_logprobs [N] or [N, C]; advantages, mask: like
    old_logprobs; old_values, returns: [N] or [N, C] (None without a critic); policy_weights:
    like mask, the policy loss's weights when they are not the mask (seq-mean-token-mean);
    imitation_weights: float [N, C], 1 on executed steps of successful episodes
    (``algorithm.self_imitation_coef`` > 0).
    """

    forward_inputs: dict[str, torch.Tensor]
    old_logprobs: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    old_values: Optional[torch.Tensor]
    returns: Optional[torch.Tensor]
    policy_weights: Optional[torch.Tensor] = None
    imitation_weights: Optional[torch.Tensor] = None

    @property
    def size(self) -> int:
        return self.old_logprobs.shape[0]


@dataclass
class Advantages:
    """An algorithm's advantages of one trajectory: advantages and mask [T, B] or [T, B, C];
    returns of the same shape (value targets), or None for a critic-free algorithm."""

    advantages: torch.Tensor
    returns: Optional[torch.Tensor]
    mask: torch.Tensor


def _chunk_view(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over C: [T, B, C] -> [T, B] (a chunk-level quantity from per-step ones)."""
    return (x * mask).sum(-1) / mask.sum(-1).clamp(min=1)


class Algorithm:
    """Base of every algorithm. Subclasses implement :meth:`advantages`, may extend
    :meth:`loss`, and state what they need in :meth:`check_static` / :meth:`check`.

    ``uses_critic``: the value head's loss and the GAE bootstrap values are part of it.
    ``estimator_signature``: what an estimator registered for this algorithm receives.
    """

    uses_critic: ClassVar[bool] = False
    estimator_signature: ClassVar[str] = ""

    def __init__(self, cfg: "AlgorithmConfig"):
        self.cfg = cfg
        self.estimator = get_advantage(cfg.adv_type)
        self.policy_loss = get_policy_loss(cfg.loss_type)

    # ------------------------------------------------------------------ config checks
    @classmethod
    def check_static(cls, cfg: "AlgorithmConfig") -> None:
        """Checks of the ``algorithm`` section alone (run when the config is loaded)."""

    def check(self, cfg: "Config", *, env_ranks: int, actor_ranks: int) -> None:
        """Checks across sections that need the placement (run before any worker starts)."""

    def reads_final_values(self, cfg: "Config") -> bool:
        """Whether env workers must ask for V(final obs) of episodes truncated mid-rollout."""
        return False

    def describe(self) -> str:
        """One line for the start-up banner."""
        c = self.cfg
        return f"algorithm {type(self).__name__}: advantages {c.adv_type}, policy loss {c.loss_type}"

    # ------------------------------------------------------------------ trajectory -> batch
    def advantages(self, traj: "Trajectory") -> Advantages:
        """Advantages, returns and loss mask of a trajectory."""
        raise NotImplementedError(f"{type(self).__name__} must implement advantages()")

    def build_batch(self, traj: "Trajectory", group: Any = None) -> tuple[TrainBatch, dict[str, float]]:
        """Advantages for ``traj`` (normalised across the ``group`` of actor ranks) and its
        flattening into samples; returns (batch, metrics)."""
        a = self.advantages(traj)
        adv, ret, mask = a.advantages, a.returns, a.mask
        if self.cfg.normalize_advantages:
            adv = normalize_advantages(adv, mask, group)
        logp = traj.logprobs  # [T, B] (chunk) or [T, B, C] (action)
        if adv.ndim == 3 and logp.ndim == 2:  # per-step advantages, chunk-level log-probs
            adv, mask = _chunk_view(adv, mask), mask.amax(-1)
            ret = _chunk_view(ret, traj.valid.float()) if ret is not None else None
        old_values = traj.values[:-1]  # [T, B] or [T, B, C]
        if ret is not None and ret.ndim == 3 and old_values.ndim == 2:
            ret = ret[..., 0]  # chunk critic: target = return at the chunk's first sub-step
        t, b = logp.shape[:2]
        flat = lambda x: x.reshape(t * b, *x.shape[2:])  # noqa: E731  [T, B, ...] -> [T*B, ...]
        batch = TrainBatch(
            forward_inputs={k: flat(v) for k, v in traj.forward_inputs.items()},
            old_logprobs=flat(logp), advantages=flat(adv.float()), mask=flat(mask.float()),
            old_values=flat(old_values) if ret is not None else None,
            returns=flat(ret.float()) if ret is not None else None,
        )
        metrics = {"rollout/advantages_mean": float(masked_mean(adv.float(), mask)),
                   "rollout/logprobs_mean": float(logp.mean())}
        if self.cfg.loss_agg_func == "seq-mean-token-mean":
            ends = (traj.terminated | traj.truncated).any(-1)  # [T, B]: an episode ends at this decision
            batch.policy_weights = flat(sequence_mean_weights(mask.float(), ends))
        if self.cfg.self_imitation_coef > 0:
            won = successful_episode_steps(traj.success, traj.terminated | traj.truncated, traj.valid)  # [T, B, C]
            batch.imitation_weights = flat(won)
            metrics["rollout/imitation_frac"] = float(won.sum() / traj.valid.float().sum().clamp(min=1))
        if ret is not None:
            metrics["rollout/returns_mean"] = float(masked_mean(ret, mask if ret.shape == mask.shape else None))
            metrics["rollout/values_mean"] = float(old_values.mean())
        return batch, metrics

    # ------------------------------------------------------------------ minibatch -> loss
    def loss(self, policy: Any, batch: TrainBatch, idx: torch.Tensor, step: int,
             gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of samples ``idx`` of ``batch`` at global step ``step`` (``gen``: the update's
        seeded generator) and its metrics."""
        loss, metrics, _, _ = self.policy_terms(policy, batch, idx, gen)
        return loss, {k: float(v) for k, v in metrics.items()}

    def policy_terms(self, policy: Any, batch: TrainBatch, idx: torch.Tensor, gen: torch.Generator):
        """Policy loss + entropy bonus + self-imitation of a minibatch.

        Returns (loss 0-dim, metrics, ``policy.evaluate`` outputs, mask [n] or [n, C])."""
        a = self.cfg
        fwd = {k: v[idx] for k, v in batch.forward_inputs.items()}
        imitation = None
        if batch.imitation_weights is not None:
            imitation = _imitation_draws(fwd, batch.imitation_weights[idx], gen)
        out = policy.evaluate(fwd, imitation=imitation)
        mask = batch.mask[idx].to(out["logprobs"].device)
        # the policy loss's weights: the mask (token-mean) or per-episode weights (seq-mean)
        pmask = mask if batch.policy_weights is None else batch.policy_weights[idx].to(mask.device)
        adv = batch.advantages[idx].to(mask.device)
        loss, metrics = self.policy_loss(
            out["logprobs"].float(), batch.old_logprobs[idx].to(mask.device), adv, pmask,
            clip_ratio_low=a.clip_ratio_low, clip_ratio_high=a.clip_ratio_high, clip_ratio_c=a.clip_ratio_c)
        if out.get("entropy") is not None:
            emask = pmask if pmask.shape == out["entropy"].shape else None
            ent_loss, emetrics = entropy_bonus(out["entropy"].float(), emask, coef=a.entropy_bonus)
            loss = loss + ent_loss
            metrics.update(emetrics)
        if imitation is not None:
            loss = loss + a.self_imitation_coef * out["imitation_loss"]
            metrics["actor/imitation_loss"] = out["imitation_loss"].detach()
        return loss, metrics, out, mask


def _imitation_draws(fwd: dict[str, torch.Tensor], weights: torch.Tensor,
                     gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Self-imitation inputs of a minibatch: its weights, flow times on the rollout's
    denoising grid {0, 1/K, .., (K-1)/K} and x_0 noise, drawn from the update's generator
    (so a resumed run draws the same)."""
    chain = fwd["chain"]  # [B, K+1, C_h, A_pad]
    k, b = chain.shape[1] - 1, chain.shape[0]
    t = torch.randint(k, (b,), generator=gen).float() / k
    noise = torch.randn(chain[:, -1].shape, generator=gen)
    return {"weights": weights, "t": t, "noise": noise}


def build_algorithm(cfg: "AlgorithmConfig") -> Algorithm:
    """The algorithm that feeds ``cfg.adv_type``, configured by ``cfg``."""
    return get_algorithm_class(advantage_algorithm(cfg.adv_type))(cfg)


def build_train_batch(traj: "Trajectory", cfg: "AlgorithmConfig", group: Any = None) -> tuple[TrainBatch, dict]:
    """``build_algorithm(cfg).build_batch(traj, group)``: advantages and samples of a trajectory."""
    return build_algorithm(cfg).build_batch(traj, group)
