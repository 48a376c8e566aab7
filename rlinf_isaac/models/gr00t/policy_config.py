"""``actor.model`` of the GR00T N1.5-architecture policy (``model_name: gr00t``): which model,
from where, and its RL options. The one config from YAML to :class:`GR00TPolicy`; importing it
imports no model code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from rlinf_isaac.config.structured import check
from rlinf_isaac.models.registry import PolicyConfig, register_policy

__all__ = ["GR00TPolicyConfig", "NOISE_METHODS"]

NOISE_METHODS = ("flow_sde", "flow_noise")


@register_policy("gr00t", build="rlinf_isaac.models.gr00t.policy:build_gr00t_policy",
                 check="rlinf_isaac.models.gr00t.check:check_checkpoint")
@dataclass
class GR00TPolicyConfig(PolicyConfig):
    """``actor.model`` for ``model_name: gr00t``."""

    model_name: Literal["gr00t"] = "gr00t"
    config_name: str = "gr00t_tiny"  # shipped architecture name or a config.json path (random init only)
    tokenizer_path: Optional[str] = None  # local tokenizer dir; None: the checkpoint's (tiny: built in)
    embodiment_tag: str = "new_embodiment"  # metadata statistics and projector slot to use
    noise_method: Literal["flow_sde", "flow_noise"] = "flow_sde"  # exploration noise of the flow's steps
    noise_level: float = 0.5  # Flow-SDE a in g(t) = a sqrt((1 - t) / t)
    num_denoise_steps: int = 4  # K Euler steps of the flow per decision
    add_value_head: bool = True  # a value head on the backbone features (the critic of PPO)
    value_hidden_dim: int = 256
    # rollouts store the frozen backbone's features for the update instead of its inputs
    reuse_backbone_features: bool = True
    tune_visual: bool = False
    tune_llm: bool = False
    tune_projector: bool = False
    tune_diffusion_model: bool = True
    noise_min_std: float = 0.08  # Flow-Noise std range
    noise_max_std: float = 0.16
    noise_hidden_dim: int = 128
    precision: Literal["fp32", "bf16"] = "fp32"
    # rollout/eval inference replayed from CUDA graphs on a GPU (no effect on the CPU), one graph
    # (and its activations) per mode and batch shape: the tiny policy's calls are launch-bound,
    # the full-size one's 13% shorter at 32 envs per call; combines with the compile_* options
    # (compiled before the capture, then captured); both model configs turn it on
    cuda_graph: bool = False
    # torch.compile of the frozen backbone's SigLIP tower and language model (compiled at the
    # first call of each input shape): with reuse_backbone_features only rollouts run it, so
    # the training path is unchanged and the PPO ratio stays exactly 1 before an update
    compile_backbone: bool = False
    # the frozen backbone's linear layers (SigLIP tower, language model) multiply in FP8:
    # weights per output channel, activations per token (FP8 tensor cores on Hopper); rollouts
    # only, as with compile_backbone, so the PPO ratio stays exactly 1; combines with
    # compile_backbone and cuda_graph; opt-in: it moves the features and so the actions
    # (docs/PERFORMANCE.md#the-backbone-in-fp8)
    backbone_fp8: bool = False
    # torch.compile of the trainable action head's VL self-attention and DiT, in rollouts and in
    # the update; the actor then recomputes the rollout's log-probs with its own compiled
    # training graph before the first epoch (the decoupled objective of rollout.overlap_update,
    # its weights ~1), so the first ratio is exactly 1 although the two graphs round differently;
    # that recompute costs more than the compiled update saves (docs/PERFORMANCE.md#the-whole-ppo-step-on-one-gpu)
    compile_action_head: bool = False
    allow_random_init: bool = False  # benchmarks only: a full-size model without a checkpoint
    # false: the binarised gripper dims get no exploration noise and no log-prob term (the gripper
    # follows the flow's mean); true explores them (docs/RESULTS.md#what-matters)
    explore_gripper: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        p = "actor.model"
        check(self.noise_method in NOISE_METHODS, f"{p}.noise_method", self.noise_method, f"one of {NOISE_METHODS}")
        for key in ("num_denoise_steps", "value_hidden_dim", "noise_hidden_dim"):
            v = getattr(self, key)
            check(isinstance(v, int) and v >= 1, f"{p}.{key}", v, "an integer >= 1")
        check(self.noise_level > 0, f"{p}.noise_level", self.noise_level, "a positive number")
        check(0 < self.noise_min_std < self.noise_max_std, f"{p}.noise_min_std", (self.noise_min_std, self.noise_max_std),
              "0 < noise_min_std < noise_max_std")
        check(not (self.reuse_backbone_features and (self.tune_visual or self.tune_llm)),
              f"{p}.reuse_backbone_features", self.reuse_backbone_features,
              "false when the backbone trains (tune_visual / tune_llm): reused features need a frozen backbone")
        check(not self.compile_backbone or self.reuse_backbone_features, f"{p}.compile_backbone", self.compile_backbone,
              "false unless reuse_backbone_features=true (then only rollouts run the compiled backbone)")
        check(not self.backbone_fp8 or self.reuse_backbone_features, f"{p}.backbone_fp8", self.backbone_fp8,
              "false unless reuse_backbone_features=true (then only rollouts run the FP8 backbone)")
        check(self.checkpoint_path is not None or self.config_name == "gr00t_tiny" or self.allow_random_init,
              f"{p}.checkpoint_path", self.checkpoint_path,
              f"a local checkpoint directory for actor.model.config_name = {self.config_name!r} (only gr00t_tiny "
              f"may start from random weights; benchmarks set actor.model.allow_random_init=true)")
