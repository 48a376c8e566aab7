"""Rollout worker: serves action chunks (+ log-probs, values, what the actor needs) to env workers."""

from __future__ import annotations

import logging
import time

import torch

from rlinf_isaac.cluster import cuda_ipc
from rlinf_isaac.cluster.worker_group import WorkerBase
from rlinf_isaac.config.schema import AlgorithmConfig
from rlinf_isaac.data.features import FeatureStore
from rlinf_isaac.data.weights import PackedWeights, unpack_into
from rlinf_isaac.envs.base import Obs
from rlinf_isaac.models.registry import PolicyConfig, build_policy
from rlinf_isaac.seeding import derive_seed

__all__ = ["RolloutWorker", "reply"]

log = logging.getLogger(__name__)

_OUTPUT_KEYS = ("prev_logprobs", "prev_values")


def reply(actions: torch.Tensor, extras: dict[str, torch.Tensor], mode: str, store: FeatureStore) -> tuple:
    """What a rollout worker sends back for one policy call: (actions float32 [B, C, 7] on the
    CPU, extras). In train mode the inputs ``evaluate`` needs go into ``store`` (they stay on
    this device until an actor fetches them, features.py) and extras =
    {"forward_inputs": their FeatureRef, "logprobs" [B] or [B, C], "values" [B] or [B, C] (zeros
    without a value head)}, on the CPU; in eval mode extras = None (nothing is trained on an
    evaluation). ``actions.cpu()`` waits for the GPU."""
    if mode != "train":
        return actions.cpu(), None
    ref = store.put({k: v for k, v in extras.items() if k not in _OUTPUT_KEYS})
    logprobs = extras["prev_logprobs"].detach().float().cpu()
    values = extras.get("prev_values")
    return actions.cpu(), {
        "forward_inputs": ref,
        "logprobs": logprobs,
        "values": values.detach().float().cpu() if values is not None else torch.zeros(logprobs.shape[0]),
    }


class RolloutWorker(WorkerBase):
    """Holds an inference copy of the policy; weights arrive from the actor, versioned."""

    def __init__(self, model_cfg: PolicyConfig, algo_cfg: AlgorithmConfig, rank: int,
                 device: str = "cpu", seed: int = 0, enable_offload: bool = False):
        """seed: the run seed (``runner.seed``); the policy's random initialisation derives from it
        as in the actor workers, so both start from the same weights."""
        super().__init__()
        self.rank, self.device, self.enable_offload = rank, device, enable_offload
        self.policy = build_policy(model_cfg, algo_cfg, device=device, seed=derive_seed(seed, "init"))
        self.policy.eval()
        self.version = -1
        self.infer_seconds = 0.0  # model time spent in predict/values since the last timing()
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(derive_seed(seed, "policy_noise", 0, rank))  # the runner reseeds it per step
        self.features = FeatureStore(rank)  # train calls' stored inputs, until the actors fetch them
        self.start_memory_count()

    def reseed(self, seed: int) -> None:
        """Restart the sampling noise from ``seed`` (the controller does this every global step and
        before every evaluation, with seeds from ``rlinf_isaac.seeding``: exact resume)."""
        self.generator.manual_seed(seed)

    @torch.no_grad()
    def predict(self, obs: Obs, mode: str = "train"):
        """obs of B envs -> :func:`reply` (actions on the CPU; extras in train mode only, whose
        stored inputs stay here until :meth:`export_features`)."""
        t0 = time.perf_counter()
        obs = cuda_ipc.open_tree(obs)  # observations an env worker on this GPU shared
        actions, extras = self.policy.predict(obs, mode=mode, generator=self.generator)
        out = reply(actions, extras, mode, self.features)
        self.infer_seconds += time.perf_counter() - t0
        return out

    def export_features(self, segments: list[tuple[int, int, int]], via: str) -> dict:
        """Rows of stored calls for an actor (features.py, ``FeatureStore.export``)."""
        return self.features.export(segments, via)

    def release_features(self) -> int:
        """Drop the stored inputs once every actor fetched its rows (every global step)."""
        return self.features.release()

    def timing(self) -> tuple[float, str | None]:
        """(seconds of model inference since the last call, resetting the counter; why the policy
        infers eagerly although CUDA graphs are on, or None)."""
        t, self.infer_seconds = self.infer_seconds, 0.0
        return t, getattr(self.policy, "cuda_graph_fallback", None)

    @torch.no_grad()
    def values(self, obs: Obs, per_action: bool = False) -> torch.Tensor:
        """Value estimates float [B] of observations (for bootstrapping at truncation), or with
        ``per_action`` the value head's output as :meth:`predict` returns it ([B] or [B, C]; the
        bootstrap at the end of a rollout).

        No actions are sampled and no random numbers drawn, so bootstrapping leaves the
        sampling stream (and exact resume) untouched.
        """
        if self.policy.value_head is None:
            return torch.zeros(len(obs["task_descriptions"]))
        t0 = time.perf_counter()
        obs = cuda_ipc.open_tree(obs)
        v = self.policy.predict_values(obs)
        out = (v[:, 0] if v.ndim == 2 and not per_action else v).float().cpu()
        self.infer_seconds += time.perf_counter() - t0
        return out

    def sync_weights(self, weights: PackedWeights | dict, version: int, via: str = "host") -> int:
        """Load the actor's trainable tensors (a newer version only); returns the loaded version.

        ``weights``: the actor's ``packed_weights()`` (``{"ipc": ..., "host": ...}``; ``via``
        picks one: "ipc" when this worker sits on the actor's GPU), one ``PackedWeights``, or
        a state dict of trainable tensors."""
        if version <= self.version:
            return self.version
        if isinstance(weights, dict) and set(weights) == {"ipc", "host"}:
            weights = weights["ipc"] if via == "ipc" and weights["ipc"] is not None else weights["host"]
            if weights is None:
                raise ValueError("the actor sent only an IPC handle to a rollout worker off its GPU")
        if isinstance(weights, PackedWeights):
            params = {n: p for n, p in self.policy.named_parameters() if p.requires_grad}
            unpack_into(weights, params, self.device)
        else:
            self.policy.load_trainable_state_dict({k: v.to(self.device) for k, v in weights.items()})
        self.version = version
        return version

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """This worker's copy of the trainable tensors, on the CPU (to check a sync)."""
        return {k: v.cpu() for k, v in self.policy.trainable_state_dict().items()}

    def offload(self) -> None:
        """Move weights to host memory while colocated actors train (enable_offload)."""
        if self.enable_offload and self.device != "cpu":
            self.policy.clear_cuda_graphs()  # they read the GPU copies of the weights
            self.policy.to("cpu")
            torch.cuda.empty_cache()

    def reload(self) -> None:
        if self.enable_offload and self.device != "cpu":
            self.policy.to(self.device)
