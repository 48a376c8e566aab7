"""Typed schema of a training / evaluation run.

Keys follow RLinf's embodied configs where they mean the same thing, so RLinf users feel at
home. Static checks live in ``__post_init__``; checks that need the machine or several
sections at once live in :func:`validate`. Every message names the dotted key, the value
and what would be valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from rlinf_isaac.config.structured import check
from rlinf_isaac.models.registry import PolicyConfig, default_policy_config

__all__ = [
    "ClusterConfig",
    "LoggerConfig",
    "RunnerConfig",
    "AlgorithmConfig",
    "VideoConfig",
    "EnvConfig",
    "IsaacLabOptions",
    "EnvGroupConfig",
    "RolloutConfig",
    "OptimConfig",
    "ActorConfig",
    "Config",
    "validate",
]


@dataclass
class ClusterConfig:
    """Where workers run. ``component_placement`` maps component names to GPU ranges."""

    component_placement: dict[str, Union[str, int]]  # YAML reads `env: 0` as an int
    num_nodes: int = 1
    gpus_per_node: Optional[int] = None  # None: detect (0 on a CPU machine)
    ray_address: Optional[str] = None  # None: start a local Ray; "auto" or host:port: attach
    worker_timeout_s: float = 900.0  # a worker call that takes longer is reported as hung
    # GPU tensors between workers on the same GPU (weight sync, stored rollout inputs) go by CUDA
    # IPC handle instead of through the host; false: the host path everywhere. RLINF_CUDA_IPC overrides
    cuda_ipc: bool = True
    # how tensors travel between Ray workers: bytes (raw bytes in one numpy array, read in place)
    # or pickle (Ray's own torch pickling). RLINF_TENSOR_TRANSPORT overrides
    tensor_transport: Literal["bytes", "pickle"] = "bytes"

    def __post_init__(self):
        check(self.num_nodes >= 1, "cluster.num_nodes", self.num_nodes, "an integer >= 1")
        g = self.gpus_per_node
        check(g is None or g >= 0, "cluster.gpus_per_node", g, "null (detect) or >= 0")
        check(bool(self.component_placement), "cluster.component_placement", {}, "a mapping such as {env: 0-3, rollout: 4-7, actor: 0-7}")
        t = self.worker_timeout_s
        check(t > 0, "cluster.worker_timeout_s", t, "a positive number of seconds")
        self.component_placement = {str(k): str(v) for k, v in self.component_placement.items()}


@dataclass
class LoggerConfig:
    log_path: str = "logs"
    project_name: str = "rlinf_isaac"
    experiment_name: str = "default"
    logger_backends: list[str] = field(default_factory=lambda: ["tensorboard"])

    def __post_init__(self):
        valid = {"tensorboard", "wandb"}
        bad = [b for b in self.logger_backends if b not in valid]
        check(not bad, "runner.logger.logger_backends", self.logger_backends, f"a list drawn from {sorted(valid)}")


@dataclass
class RunnerConfig:
    max_steps: int
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    save_interval: int = -1  # global steps between checkpoints; -1: only at the end
    val_check_interval: int = -1  # global steps between evaluations (and at the end); -1: never
    # true: every evaluation during training plays the episodes eval_embodiment.sh plays (env
    # resets and policy noise drawn from env.eval.seed), so the curve moves only when the policy
    # does; false: new episodes each time
    val_fixed_seed: bool = False
    # evaluate once before the first global step (logged at step 0: the starting point of the curve)
    val_before_train: bool = False
    resume_dir: Optional[str] = None  # a run's checkpoint dir, or one global_step_N dir
    only_eval: bool = False
    eval_episodes: int = 200  # episodes of an evaluation (eval_embodiment.sh, val checks)
    keep_checkpoints: int = 3  # newest checkpoints kept on disk (the final one is always kept)
    # the run seed: every random stream of training (policy initialisation, env resets, policy
    # noise, minibatch order, evaluations without val_fixed_seed) derives from it (rlinf_isaac/seeding.py)
    seed: int = 1234
    # stop after the global step during which this many seconds of training (evals included,
    # summed over resumed runs) have passed; that step evaluates and checkpoints. null: no limit
    max_time_s: Optional[float] = None

    def __post_init__(self):
        check(self.max_steps >= 0, "runner.max_steps", self.max_steps, "an integer >= 0")
        for k in ("save_interval", "val_check_interval"):
            v = getattr(self, k)
            check(v == -1 or v >= 1, f"runner.{k}", v, "-1 (off) or a positive number of global steps")
        check(self.eval_episodes >= 1, "runner.eval_episodes", self.eval_episodes, "an integer >= 1")
        check(self.seed >= 0, "runner.seed", self.seed, "an integer >= 0")
        check(self.keep_checkpoints >= 1, "runner.keep_checkpoints", self.keep_checkpoints, "an integer >= 1")
        check(self.max_time_s is None or self.max_time_s > 0, "runner.max_time_s", self.max_time_s,
              "null (no limit) or a positive number of seconds")


@dataclass
class AlgorithmConfig:
    # registered names (rlinf_isaac/algorithms/registry.py): the advantage estimator (it picks the
    # algorithm that feeds it: gae -> ppo, grpo -> grpo), the policy loss and the value loss
    adv_type: str = "gae"
    loss_type: str = "ppo"
    value_loss_type: str = "clipped"  # used by algorithms with a critic (ppo)
    # user modules whose import registers estimators, losses or algorithms (imported in the driver
    # and in every actor worker), e.g. [my_lab.rloo]
    modules: list[str] = field(default_factory=list)
    group_size: int = 1  # GRPO: envs per group sharing one reset state
    rollout_epoch: int = 1  # rollouts collected per global step
    update_epochs: int = 4  # PPO epochs over the collected batch
    gamma: float = 0.99
    gae_lambda: float = 0.95
    # GAE bootstraps from V(final obs) at a time-limit truncation (an infinite-horizon task cut
    # for resets). false: the time limit is part of the task (success within max_episode_steps,
    # the value head does not see time), so truncation ends the return like a termination.
    bootstrap_on_truncation: bool = True
    clip_ratio_low: float = 0.2
    clip_ratio_high: float = 0.2
    clip_ratio_c: Optional[float] = None  # dual clip (e.g. 3.0); null: off
    value_clip: Optional[float] = 0.2  # null: unclipped value loss
    huber_delta: Optional[float] = None  # null: squared error
    value_loss_coef: float = 0.5
    entropy_bonus: float = 0.0
    normalize_advantages: bool = True
    # how the policy loss averages over decisions: token-mean (every decision weighs the same,
    # so longer episodes weigh more) or seq-mean-token-mean (each episode's mean, then the mean
    # over episodes; algorithms/losses.py sequence_mean_weights). The value loss is a token-mean.
    loss_agg_func: Literal["token-mean", "seq-mean-token-mean"] = "token-mean"
    grpo_normalize_std: bool = True  # divide by the group std (Dr. GRPO turns this off)
    grpo_success_filter: Optional[tuple[float, float]] = None  # keep groups with mean success in [low, high]
    reward_type: Literal["chunk_level", "action_level"] = "chunk_level"  # GAE over chunk steps or env steps
    logprob_type: Literal["chunk_level", "action_level"] = "chunk_level"
    # self-imitation: + coef x the flow-matching (SFT) loss of the executed actions of the
    # step's successful episodes (algorithms/losses.py successful_episode_steps); 0: off
    self_imitation_coef: float = 0.0
    # global steps at the start in which only the value head learns (the policy terms of the
    # loss are computed and logged, not applied); 0: off
    critic_warmup_steps: int = 0
    # with rollout.overlap_update: the cap of the importance weight pi_prox / pi_behaviour by
    # which each decision's loss is weighted (the policy that acted is one update behind)
    behavior_weight_cap: float = 2.0

    def __post_init__(self):
        check(self.group_size >= 1, "algorithm.group_size", self.group_size, "an integer >= 1")
        check(self.rollout_epoch >= 1, "algorithm.rollout_epoch", self.rollout_epoch, "an integer >= 1")
        check(self.update_epochs >= 1, "algorithm.update_epochs", self.update_epochs, "an integer >= 1")
        check(0.0 <= self.gamma <= 1.0, "algorithm.gamma", self.gamma, "a number in [0, 1]")
        check(0.0 <= self.gae_lambda <= 1.0, "algorithm.gae_lambda", self.gae_lambda, "a number in [0, 1]")
        for k in ("clip_ratio_low", "clip_ratio_high"):
            check(0.0 < getattr(self, k) < 1.0, f"algorithm.{k}", getattr(self, k), "a number in (0, 1)")
        c = self.clip_ratio_c
        check(c is None or c > 1.0, "algorithm.clip_ratio_c", c, "null (off) or a number > 1")
        check(self.self_imitation_coef >= 0.0, "algorithm.self_imitation_coef", self.self_imitation_coef,
              "a number >= 0 (0: off)")
        check(self.critic_warmup_steps >= 0, "algorithm.critic_warmup_steps", self.critic_warmup_steps,
              "an integer >= 0 (0: off)")
        check(self.behavior_weight_cap >= 1.0, "algorithm.behavior_weight_cap", self.behavior_weight_cap,
              "a number >= 1")
        f = self.grpo_success_filter
        check(f is None or 0.0 <= f[0] <= f[1] <= 1.0, "algorithm.grpo_success_filter", f, "null or [low, high] with 0 <= low <= high <= 1")
        from rlinf_isaac.algorithms import registry

        registry.import_modules(self.modules)
        registry.get_policy_loss(self.loss_type)  # unknown names: an error listing the registered ones
        registry.get_value_loss(self.value_loss_type)
        registry.get_algorithm_class(registry.advantage_algorithm(self.adv_type)).check_static(self)


@dataclass
class VideoConfig:
    """Rollout videos (logging/video.py): per env the table and wrist views side by side."""

    save_video: bool = False
    info_on_video: bool = True  # overlay step, reward, success and the instruction
    video_base_dir: str = "video"
    max_envs: int = 16  # envs tiled in one video (the first ones of env worker 0, stage 0)
    fps: int = 20
    interval: int = 1  # record every N-th rollout (train) / evaluation
    frame_size: int = 256  # px of each view in the video, whatever image_size the policy sees

    def __post_init__(self):
        check(16 <= self.frame_size <= 1024, "video_cfg.frame_size", self.frame_size, "an integer in [16, 1024] (px per view)")
        check(self.max_envs >= 1, "video_cfg.max_envs", self.max_envs, "an integer >= 1")


@dataclass
class IsaacLabOptions:
    """``env.<group>.isaaclab``: settings of the Isaac Lab backend (ignored by other backends)."""

    # interpreter of the simulator process, e.g. Isaac Lab's python.sh; null: the env worker's own.
    # RLINF_ISAACLAB_PYTHON overrides
    python: Optional[str] = None
    # the simulator stack: isaac_sim (Kit, PhysX, RTX cameras), newton (Isaac Lab 3.0 kit-less:
    # MuJoCo-Warp physics, Warp cameras; no Isaac Sim) or auto (Isaac Sim when it is installed)
    stack: Literal["auto", "newton", "isaac_sim"] = "auto"


@dataclass
class EnvConfig:
    """One env group (``env.train`` or ``env.eval``)."""

    task_id: str
    total_num_envs: int  # across all env worker ranks
    max_episode_steps: int = 200
    reward_type: Literal["sparse", "staged", "shaped"] = "sparse"
    image_size: int = 84
    action_scale: float = 0.5  # like Isaac Lab's IK-Rel action scale
    # the episodes an evaluation on this group plays (env resets and policy noise derive from it:
    # env.eval.seed is eval_embodiment.sh's episode set); training rollouts derive from runner.seed
    seed: int = 0
    auto_reset: bool = True
    num_workers: int = 0  # simulator subprocesses per env worker (MuJoCo); 0: in-process
    render_backend: Optional[Literal["egl", "osmesa", "glfw"]] = None  # None: auto
    video_cfg: VideoConfig = field(default_factory=VideoConfig)
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific factory arguments
    task_modules: list[str] = field(default_factory=list)  # user modules that register task_id (RLINF_TASK_MODULES adds)
    isaaclab: IsaacLabOptions = field(default_factory=IsaacLabOptions)

    def __post_init__(self):
        check(self.total_num_envs >= 1, "total_num_envs", self.total_num_envs, "an integer >= 1")
        check(self.max_episode_steps >= 1, "max_episode_steps", self.max_episode_steps, "an integer >= 1")
        check(16 <= self.image_size <= 512, "image_size", self.image_size, "an integer in [16, 512]")
        check(self.num_workers >= 0, "num_workers", self.num_workers, "an integer >= 0")
        check(self.seed >= 0, "seed", self.seed, "an integer >= 0")


@dataclass
class EnvGroupConfig:
    train: EnvConfig
    eval: Optional[EnvConfig] = None  # None: evaluate on a copy of train with fresh seeds


@dataclass
class RolloutConfig:
    pipeline_stage_num: int = 1  # env batch split into S stages: simulate one while inferring another
    enable_offload: bool = False  # move rollout weights off the GPU while the actor trains
    # collect the next global step's rollout while the actor trains on this one: one-step
    # off-policy (the rollout's weights are one update behind) with the decoupled PPO objective
    # (algorithm.behavior_weight_cap; algorithms/decoupled.py). Needs no offloading.
    overlap_update: bool = False

    def __post_init__(self):
        s = self.pipeline_stage_num
        check(s >= 1, "rollout.pipeline_stage_num", s, "an integer >= 1")


@dataclass
class OptimConfig:
    lr: float = 1e-4
    value_lr: float = 1e-3
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    clip_grad: float = 1.0
    lr_scheduler: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    # AdamW's fused implementation (one kernel for all parameters per step, torch's fused=True):
    # the same update up to float rounding
    fused: bool = False


@dataclass
class ActorConfig:
    micro_batch_size: int
    global_batch_size: int
    # the policy's registered config (models/registry.py), chosen by actor.model.model_name
    model: PolicyConfig = field(default_factory=default_policy_config)
    optim: OptimConfig = field(default_factory=OptimConfig)
    training_backend: Literal["ddp", "fsdp"] = "ddp"  # fsdp: trainable layers sharded (distributed/fsdp.py)
    enable_offload: bool = False
    # torch threads of a CPU actor rank while it updates (the env and rollout workers idle
    # then): null = the cores this process may run on / actor ranks; ignored on a GPU
    num_threads: Optional[int] = None

    def __post_init__(self):
        check(self.num_threads is None or self.num_threads >= 1, "actor.num_threads", self.num_threads,
              "null (the process's cores / actor ranks) or an integer >= 1")
        check(self.micro_batch_size >= 1, "actor.micro_batch_size", self.micro_batch_size, "an integer >= 1")
        g = self.global_batch_size
        check(g >= self.micro_batch_size, "actor.global_batch_size", g, f"an integer >= actor.micro_batch_size ({self.micro_batch_size})")
        check(not (self.training_backend == "fsdp" and self.enable_offload), "actor.enable_offload",
              self.enable_offload, "false with actor.training_backend=fsdp (sharded weights are not "
              "offloaded; FSDP already keeps 1/N of them per rank)")


@dataclass
class Config:
    cluster: ClusterConfig
    runner: RunnerConfig
    env: EnvGroupConfig
    actor: ActorConfig
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)


def validate(cfg: Config, *, env_ranks: int, actor_ranks: int) -> None:
    """Cross-section checks that need the resolved placement (rank counts).

    Raises ConfigError naming the key and the fix. Called before any worker starts.
    """
    tr = cfg.env.train
    if cfg.rollout.overlap_update:
        for key, on in (("rollout.enable_offload", cfg.rollout.enable_offload),
                        ("actor.enable_offload", cfg.actor.enable_offload)):
            check(not on, key, on, "false with rollout.overlap_update=true (the rollout and the update "
                  "run at the same time, so neither can give the GPU to the other)")
    compiled_head = getattr(cfg.actor.model, "compile_action_head", False)
    check(not (compiled_head and cfg.actor.training_backend == "fsdp" and actor_ranks > 1),
          "actor.model.compile_action_head", compiled_head,
          f"false with actor.training_backend=fsdp over {actor_ranks} actor workers (not supported: the "
          "recompute of the old log-probs runs sharded layers forward without a backward), or use ddp")
    n_env = tr.total_num_envs
    check(n_env % env_ranks == 0, "env.train.total_num_envs", n_env,
          f"a multiple of the number of env workers ({env_ranks}, from cluster.component_placement.env)")
    per_rank = n_env // env_ranks
    s = cfg.rollout.pipeline_stage_num
    check(per_rank % s == 0, "rollout.pipeline_stage_num", s,
          f"a divisor of the envs per env worker ({per_rank} = env.train.total_num_envs / {env_ranks} workers)")
    from rlinf_isaac.algorithms.base import build_algorithm

    build_algorithm(cfg.algorithm).check(cfg, env_ranks=env_ranks, actor_ranks=actor_ranks)
    c = cfg.actor.model.num_action_chunks
    steps = tr.max_episode_steps
    check(steps % c == 0, "env.train.max_episode_steps", steps, f"a multiple of actor.model.num_action_chunks ({c})")
    mb, gb = cfg.actor.micro_batch_size, cfg.actor.global_batch_size
    check(gb % (mb * actor_ranks) == 0, "actor.global_batch_size", gb,
          f"a multiple of actor.micro_batch_size x actor workers ({mb} x {actor_ranks} = {mb * actor_ranks})")
    samples = n_env * (steps // c) * cfg.algorithm.rollout_epoch
    check(samples % gb == 0, "actor.global_batch_size", gb,
          f"a divisor of the samples per global step ({samples} = envs {n_env} x chunk steps {steps // c} "
          f"x rollout_epoch {cfg.algorithm.rollout_epoch})")
    ev = cfg.env.eval or tr
    check(ev.total_num_envs % env_ranks == 0, "env.eval.total_num_envs", ev.total_num_envs,
          f"a multiple of the number of env workers ({env_ranks})")
    if cfg.runner.val_check_interval != -1 or cfg.runner.only_eval:
        check(ev.max_episode_steps % c == 0, "env.eval.max_episode_steps", ev.max_episode_steps,
              f"a multiple of actor.model.num_action_chunks ({c})")
