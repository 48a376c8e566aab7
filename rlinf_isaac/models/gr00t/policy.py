"""``GR00TPolicy``: the GR00T N1.5 flow-matching model as an RL policy (the policy contract).

``predict(obs, mode) -> (actions float[B, C, 7], rollout_extras)`` runs processor -> backbone
-> action-head context -> denoising (deterministic Euler ODE in ``eval`` mode; Flow-SDE or
Flow-Noise in ``train`` mode, see :mod:`flow_rl`) -> un-normalisation. ``rollout_extras``
holds exactly what ``evaluate`` needs to recompute the log-probs of the stored chain:
the processed inputs (or, with a frozen backbone and ``reuse_backbone_features``, the
backbone features themselves), the chain ``[B, K+1, C_h, A_pad]``, the stochastic step index
(Flow-SDE), the rollout's log-probs and values.

``evaluate(forward_inputs) -> {"logprobs", "values", "entropy"}`` recomputes them with
gradients. The model runs with dropout off (all submodules stay in eval mode), so a
recomputation with unchanged weights and inputs gives ratio exactly 1.

Dimension names: B envs, C actions per env chunk (``num_action_chunks`` <= horizon C_h = 16),
A = 7 env action dims, A_pad = 32 padded model action dims, K denoising steps, L VL tokens,
D VL feature width.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Optional

import torch
from torch import Tensor, nn

from rlinf_isaac.models.gr00t import flow_rl
from rlinf_isaac.models.gr00t.cuda_graph import GraphCache
from rlinf_isaac.models.gr00t.fp8 import Fp8Linear, fp8_linears, refresh_fp8
from rlinf_isaac.models.gr00t.policy_config import GR00TPolicyConfig
from rlinf_isaac.models.gr00t.value_head import ValueHead, ValueHeadConfig

__all__ = ["GR00TPolicyConfig", "GR00TPolicy", "INPUT_KEYS", "FEATURE_KEYS", "build_gr00t_policy"]

logger = logging.getLogger(__name__)

INPUT_KEYS = ("pixel_values", "input_ids", "attention_mask")  # backbone inputs
FEATURE_KEYS = ("vl_features", "vl_mask")  # reused backbone outputs
_MODES = ("train", "eval")


class _Velocity:
    """``v(x, t)`` of an action head for one context (kept as ``.ctx`` for its other losses)."""

    def __init__(self, head: nn.Module, ctx: Any):
        self.head, self.ctx = head, ctx

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        return self.head.velocity(self.ctx, x, t)


def _tree_to(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _tree_to(v, device) for k, v in value.items()}
    return value


def _obs_to(obs: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Observation tensors (uint8 images, states) -> ``device`` before processing: the
    processor's resizing then runs there, and uint8 images are 4x smaller to move than floats.
    Anything else (instructions, arrays from a direct caller) is processed where it is."""
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in obs.items()}


class GR00TPolicy(nn.Module):
    """RL wrapper around a ``GR00TN15`` model and its ``GR00TProcessor``."""

    def __init__(self, model: nn.Module, processor: Any, cfg: Optional[GR00TPolicyConfig] = None,
                 logprob_granularity: str = "chunk", value_granularity: str = "chunk"):
        """cfg: ``actor.model``; logprob_granularity / value_granularity: "chunk" (one log-prob /
        value per decision, [B]) or "action" (one per executed action, [B, C])."""
        super().__init__()
        self.cfg = cfg or GR00TPolicyConfig()
        for key, value in (("logprob_granularity", logprob_granularity), ("value_granularity", value_granularity)):
            if value not in flow_rl.GRANULARITIES:
                raise ValueError(f"{key} must be one of {flow_rl.GRANULARITIES}, got {value!r}")
        self.logprob_granularity, self.value_granularity = logprob_granularity, value_granularity
        self.model = model
        self.processor = processor
        head_cfg = model.config.action_head_cfg
        self.horizon, self.pad_action_dim = head_cfg.action_horizon, head_cfg.max_action_dim
        if self.cfg.num_action_chunks > self.horizon:
            raise ValueError(f"actor.model.num_action_chunks must be <= the model's action_horizon "
                             f"{self.horizon}, got {self.cfg.num_action_chunks}")
        if self.cfg.action_dim > self.pad_action_dim:
            raise ValueError(f"actor.model.action_dim must be <= action_head_cfg.max_action_dim "
                             f"{self.pad_action_dim}, got {self.cfg.action_dim}")
        if hasattr(model, "set_dropout"):
            model.set_dropout(False)  # p = 0 even if someone switches the model to train()
        model.set_trainable(tune_visual=self.cfg.tune_visual, tune_llm=self.cfg.tune_llm,
                            tune_projector=self.cfg.tune_projector,
                            tune_diffusion_model=self.cfg.tune_diffusion_model)
        self.value_head = self._build_value_head(head_cfg) if self.cfg.add_value_head else None
        self.noise_net = (
            flow_rl.NoiseStdNet(self.pad_action_dim, self.cfg.noise_hidden_dim,
                                self.cfg.noise_min_std, self.cfg.noise_max_std)
            if self.cfg.noise_method == "flow_noise" else None
        )
        self._graphs = GraphCache(self._graph_tensors)
        self._fp8_layers: list[Fp8Linear] = []  # use_fp8_backbone()
        self.train()

    def use_fp8_backbone(self) -> tuple[int, int]:
        """The frozen backbone's linear layers in FP8, in place (:func:`fp8_backbone`); every
        later ``predict`` first refreshes their FP8 weights if a weight changed, outside any
        compiled code or CUDA graph. -> (layers converted, left in float)."""
        counts = fp8_backbone(self.model)
        self._fp8_layers = [m for m in self.model.modules() if isinstance(m, Fp8Linear)]
        return counts

    @property
    def cuda_graph_fallback(self) -> str | None:
        """Why ``predict`` runs eagerly although ``cuda_graph`` is on (a capture failed), else None."""
        return self._graphs.disabled_reason

    def clear_cuda_graphs(self) -> None:
        """Free the captured graphs (e.g. before offloading the weights to the host)."""
        self._graphs.clear()

    def _graph_tensors(self):
        yield from self.parameters()
        yield from self.buffers()

    def _build_value_head(self, head_cfg: Any) -> ValueHead:
        return ValueHead(ValueHeadConfig(
            vl_dim=head_cfg.backbone_embedding_dim, state_dim=head_cfg.max_state_dim,
            hidden_dim=self.cfg.value_hidden_dim, granularity=self.value_granularity,
            num_actions=self.cfg.num_action_chunks,
        ))

    # ------------------------------------------------------------------ module state
    def train(self, mode: bool = True) -> "GR00TPolicy":
        """Set the training flag but keep every submodule in eval mode: dropout off in RL."""
        super().train(mode)
        for module in self.children():
            module.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def logprob_mask(self) -> Tensor:
        """bool [C_h, A_pad]: True on the C executed steps and A real action dims (without the
        gripper dims when ``explore_gripper`` is off)."""
        mask = torch.zeros(self.horizon, self.pad_action_dim, dtype=torch.bool, device=self.device)
        mask[: self.cfg.num_action_chunks, : self.cfg.action_dim] = True
        if not self.cfg.explore_gripper:
            mask[:, list(self.processor.cfg.gripper_dims)] = False
        return mask

    def _env_steps(self, x: Tensor) -> Tensor:
        """Action-granularity [B, C_h] -> [B, C] (the executed steps); [B] unchanged."""
        return x[:, : self.cfg.num_action_chunks] if x.ndim == 2 else x

    # ------------------------------------------------------------------ model pieces
    def _features(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Backbone features float [B, L, D] and mask bool [B, L] (reused when present)."""
        if all(k in inputs for k in FEATURE_KEYS):
            return inputs["vl_features"], inputs["vl_mask"]
        missing = [k for k in INPUT_KEYS if k not in inputs]
        if missing:
            raise KeyError(f"forward_inputs lack {missing}: pass either {FEATURE_KEYS} or {INPUT_KEYS}")
        features, mask = self.model.backbone(
            inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        return features, mask.to(torch.bool)

    def _velocity_fn(self, features: Tensor, mask: Tensor, inputs: dict[str, Tensor]) -> "_Velocity":
        """The velocity v(x_t [B, C_h, A_pad], t [B]) of the action head for these inputs."""
        head = self.model.action_head
        return _Velocity(head, head.prepare_context(features, mask, inputs["state"], inputs["embodiment_id"]))

    def _values(self, features: Tensor, mask: Tensor, state: Tensor) -> Optional[Tensor]:
        """float32 [B] or [B, C]; None without a value head."""
        if self.value_head is None:
            return None
        return self.value_head(features, mask, state)

    def _process(self, obs: dict[str, Any]) -> dict[str, Tensor]:
        """Env observation -> model inputs on the policy's device (processed there)."""
        device = self.device
        return self.processor(_obs_to(obs, device), device=device)

    def _draw(self, batch: int, mode: str, generator, dtype: torch.dtype) -> dict[str, Tensor]:
        """Every random number of one predict call, drawn up front (so that the model part is
        a pure function, replayable from a CUDA graph): ``noise`` x_0 [B, C_h, A_pad]; in train
        mode ``eps`` float32 [K, B, C_h, A_pad] and, for Flow-SDE, ``step_idx`` int64 [B]."""
        k = self.cfg.num_denoise_steps
        noise = torch.randn((batch, self.horizon, self.pad_action_dim), generator=generator,
                            device=self.device, dtype=dtype)
        out = {"noise": noise}
        if mode == "train":
            if self.cfg.noise_method == "flow_sde":
                out["step_idx"] = torch.randint(k, (batch,), generator=generator, device=self.device)
            out["eps"] = flow_rl.draw_step_noise(noise, k, generator)
            if not self.cfg.explore_gripper:  # the gripper dims take the deterministic step
                out["eps"][..., list(self.processor.cfg.gripper_dims)] = 0.0
        return out

    def _infer(self, mode: str, t: dict[str, Tensor]) -> dict[str, Tensor]:
        """The model part of ``predict``: processed inputs + drawn noise -> chain, features,
        log-probs and values (a pure tensor function: no random draws, no host syncs)."""
        features, mask = self._features(t)
        velocity_fn = self._velocity_fn(features, mask, t)
        k = self.cfg.num_denoise_steps
        out: dict[str, Tensor] = {}
        if mode == "eval":
            out["chain"] = flow_rl.ode_sample(velocity_fn, t["noise"], k)
        else:
            if self.cfg.noise_method == "flow_sde":
                roll = flow_rl.flow_sde_sample(velocity_fn, t["noise"], k, self.cfg.noise_level,
                                               step_idx=t["step_idx"], eps=t["eps"])
            else:
                roll = flow_rl.flow_noise_sample(velocity_fn, self.noise_net, t["noise"], k, eps=t["eps"])
            out["chain"] = roll.chain
            out["prev_logprobs"] = self._env_steps(flow_rl.reduce_granularity(
                roll.logprob_elem, self.logprob_granularity, self.logprob_mask()))
        if self.cfg.reuse_backbone_features:
            out.update(vl_features=features, vl_mask=mask)
        values = self._values(features, mask, t["state"])
        if values is not None:
            out["prev_values"] = values
        return out

    # ------------------------------------------------------------------ policy contract
    @torch.no_grad()
    def predict(
        self, obs: dict[str, Any], mode: str = "train", generator: Optional[torch.Generator] = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Act on a batched observation (env contract ``Obs``).

        Returns ``actions`` float32 [B, C, 7] (un-normalised, gripper +-1) and
        ``rollout_extras``: ``state`` [B, 1, 64], ``embodiment_id`` [B], either ``vl_features``
        [B, L, D] + ``vl_mask`` [B, L] (reuse) or ``pixel_values`` [B, V, 3, S, S] +
        ``input_ids`` [B, L] + ``attention_mask`` [B, L]; ``chain`` [B, K+1, C_h, A_pad];
        ``step_idx`` int64 [B] (Flow-SDE, train mode); ``prev_logprobs`` [B] or [B, C];
        ``prev_values`` [B] or [B, C] (value head). In eval mode the chain is the
        deterministic ODE chain and no log-probs are returned.

        With ``cfg.cuda_graph`` on a GPU the model part replays from a CUDA graph (one per
        mode and batch shape); the results are the same as eager up to float rounding.
        """
        if mode not in _MODES:
            raise ValueError(f"predict mode must be one of {_MODES}, got {mode!r}")
        device = self.device
        refresh_fp8(self._fp8_layers)
        inputs = self._process(obs)
        batch = inputs["state"].shape[0]
        dtype = next(self.model.parameters()).dtype  # x_0 in the model's compute dtype
        t = {k: inputs[k] for k in (*INPUT_KEYS, "state", "embodiment_id")}
        t.update(self._draw(batch, mode, generator, dtype))
        if self.cfg.cuda_graph and device.type == "cuda":
            out = self._graphs(mode, partial(self._infer, mode), t)
        else:
            out = self._infer(mode, t)
        env_actions = self.processor.unnormalize_actions(out["chain"][:, -1].float())  # [B, C_h, 7]
        actions = env_actions[:, : self.cfg.num_action_chunks, : self.cfg.action_dim]
        extras = {"state": inputs["state"], "embodiment_id": inputs["embodiment_id"], **out}
        if not self.cfg.reuse_backbone_features:
            extras.update({k: inputs[k] for k in INPUT_KEYS})
        if "step_idx" in t:  # drawn in train mode (Flow-SDE)
            extras["step_idx"] = t["step_idx"]
        return actions.float(), extras

    @torch.no_grad()
    def predict_values(self, obs: dict[str, Any]) -> Tensor:
        """Values float32 [B] (chunk) or [B, C] (action) of observations, without sampling
        actions (e.g. to bootstrap at truncation). Needs the value head."""
        if self.value_head is None:
            raise RuntimeError("predict_values needs a value head: set actor.model.add_value_head=true")
        refresh_fp8(self._fp8_layers)
        inputs = self._process(obs)
        features, mask = self._features(inputs)
        return self.value_head(features, mask, inputs["state"])

    def evaluate(self, forward_inputs: dict[str, Tensor],
                 imitation: Optional[dict[str, Tensor]] = None) -> dict[str, Optional[Tensor]]:
        """Recompute log-probs, values and entropy of stored rollouts (with gradients).

        forward_inputs: the ``rollout_extras`` of :meth:`predict` (any batch of them).
        Returns ``logprobs`` and ``entropy`` float32 [B] (chunk) or [B, C] (action) and
        ``values`` float32 [B] / [B, C] (None without a value head).

        imitation (self-imitation): ``weights`` float [B, C] per executed action step (0: not
        imitated), ``t`` float [B] flow times and ``noise`` [B, C_h, A_pad] x_0 draws; adds
        ``imitation_loss``, the flow-matching (SFT) loss of the executed actions (the chain's
        end) weighted by ``weights`` (0 when every weight is 0).
        """
        inputs = _tree_to(forward_inputs, self.device)
        if self.cfg.noise_method == "flow_sde" and "step_idx" not in inputs:
            raise KeyError("forward_inputs lack 'step_idx' (Flow-SDE): pass predict(mode='train') extras")
        features, mask = self._features(inputs)
        velocity_fn = self._velocity_fn(features, mask, inputs)
        logprobs, entropy = flow_rl.recompute_logprob(
            velocity_fn, inputs["chain"], self.cfg.noise_method, self.logprob_granularity,
            step_idx=inputs.get("step_idx"), noise_level=self.cfg.noise_level,
            noise_std_fn=self.noise_net, mask=self.logprob_mask(),
        )
        values = self._values(features, mask, inputs["state"])
        out = {"logprobs": self._env_steps(logprobs), "values": values, "entropy": self._env_steps(entropy)}
        if imitation is not None:
            out["imitation_loss"] = self._imitation_loss(velocity_fn.ctx, inputs["chain"][:, -1], imitation)
        return out

    def _imitation_loss(self, ctx, actions: Tensor, imitation: dict[str, Tensor]) -> Tensor:
        """The action head's flow-matching loss with x_1 = ``actions`` [B, C_h, A_pad]
        (normalised), masked by the weights on the executed steps' real dims."""
        w = imitation["weights"].to(actions.device, torch.float32)  # [B, C]
        if w.shape != (actions.shape[0], self.cfg.num_action_chunks):
            raise ValueError(f"imitation weights must be [B, C] = {[actions.shape[0], self.cfg.num_action_chunks]}, "
                             f"got {list(w.shape)}")
        mask = torch.zeros(actions.shape, dtype=torch.float32, device=actions.device)
        mask[:, : self.cfg.num_action_chunks, : self.cfg.action_dim] = w[:, :, None]
        return self.model.action_head.flow_matching_loss(
            ctx, actions, mask, t=imitation["t"].to(actions.device, torch.float32),
            noise=imitation["noise"].to(actions.device, actions.dtype))

    # ------------------------------------------------------------------ weight sync
    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Only the trainable tensors (``requires_grad``), detached: actor -> rollout sync."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def load_trainable_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Copy trainable tensors in place; names must match ``trainable_state_dict`` exactly."""
        params = dict(self.named_parameters())
        expected = {n for n, p in params.items() if p.requires_grad}
        missing, unexpected = sorted(expected - state_dict.keys()), sorted(state_dict.keys() - expected)
        if missing or unexpected:
            raise KeyError(f"trainable state dict mismatch: missing {missing[:10]} "
                           f"({len(missing)} in all), unexpected {unexpected[:10]} ({len(unexpected)} in all)")
        for name, value in state_dict.items():
            if params[name].shape != value.shape:
                raise ValueError(f"trainable tensor {name!r}: expected shape "
                                 f"{tuple(params[name].shape)}, got {tuple(value.shape)}")
            params[name].copy_(value)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pretrained(
        cls, local_dir: str | os.PathLike, cfg: Optional[GR00TPolicyConfig] = None,
        device: str | torch.device = "cpu", dtype: Optional[torch.dtype] = None, seed: int = 0,
        logprob_granularity: str = "chunk", value_granularity: str = "chunk", **processor_kwargs: Any,
    ) -> "GR00TPolicy":
        """Load model + processor from a LOCAL checkpoint directory (never the network); the
        parts the checkpoint lacks (a new value head) are initialised from ``seed``."""
        from rlinf_isaac.models.gr00t.checkpoint import load_pretrained
        from rlinf_isaac.models.gr00t.processor import GR00TProcessor

        model, metadata = load_pretrained(local_dir, device=device, dtype=dtype)
        processor = GR00TProcessor.from_pretrained(local_dir, model.config, metadata, **processor_kwargs)
        with torch.random.fork_rng(devices=[]):  # seeded new parts without touching the global RNG
            torch.manual_seed(seed)
            policy = cls(model, processor, cfg, logprob_granularity, value_granularity)
        return policy.to(device)

    @classmethod
    def from_config(
        cls, name: str, cfg: Optional[GR00TPolicyConfig] = None, metadata: Optional[dict] = None,
        device: str | torch.device = "cpu", seed: int = 0, logprob_granularity: str = "chunk",
        value_granularity: str = "chunk", **processor_kwargs: Any,
    ) -> "GR00TPolicy":
        """Randomly initialised model of a shipped config (``gr00t_tiny``) + its processor.

        The model is initialised on ``device`` itself (a full-size one takes ~40 s on one CPU
        thread, milliseconds on a GPU); the same seed gives the same weights on the same kind of
        device, not across a CPU and a GPU."""
        from rlinf_isaac.models.gr00t.config import load_config
        from rlinf_isaac.models.gr00t.modeling import GR00TN15
        from rlinf_isaac.models.gr00t.processor import GR00TProcessor

        device = torch.device(device)
        gpus = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus):  # seeded init without touching the global RNGs
            torch.manual_seed(seed)
            with device:
                model = GR00TN15(load_config(name))
            processor = GR00TProcessor.for_model(model.config, metadata, **processor_kwargs)
            policy = cls(model, processor, cfg, logprob_granularity, value_granularity)
        return policy.to(device)


def build_gr00t_policy(cfg: GR00TPolicyConfig, *, device: str = "cpu", seed: int = 0,
                       logprob_granularity: str = "chunk", value_granularity: str = "chunk") -> GR00TPolicy:
    """``actor.model`` -> the policy on ``device``: from ``checkpoint_path`` (a local directory),
    or randomly initialised from ``seed`` (gr00t_tiny, benchmarks)."""
    from pathlib import Path

    from rlinf_isaac.models.registry import resolve_checkpoint_path

    dtype = torch.bfloat16 if cfg.precision == "bf16" else None
    kwargs: dict[str, Any] = dict(device=device, seed=seed, logprob_granularity=logprob_granularity,
                                  value_granularity=value_granularity, embodiment_tag=cfg.embodiment_tag)
    if cfg.tokenizer_path is not None:
        from rlinf_isaac.models.gr00t.tokenizer import load_tokenizer

        kwargs["tokenizer"] = load_tokenizer(Path(cfg.tokenizer_path).expanduser())
    ckpt = resolve_checkpoint_path(cfg.checkpoint_path)
    if ckpt is not None:
        policy = GR00TPolicy.from_pretrained(ckpt, cfg, dtype=dtype, **kwargs).to(device)
    else:
        policy = GR00TPolicy.from_config(cfg.config_name, cfg, **kwargs)
        policy = (policy.to(dtype) if dtype is not None else policy).to(device)
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()  # the float32 initialisation's blocks, for the workers sharing this GPU
    if cfg.compile_backbone:
        compile_parts(policy.model, BACKBONE_PARTS)
    if cfg.backbone_fp8:
        policy.use_fp8_backbone()
    if cfg.compile_action_head:
        compile_parts(policy.model, ACTION_HEAD_PARTS)
    return policy


BACKBONE_PARTS = ("backbone.eagle_model.vision_model", "backbone.eagle_model.language_model.model")
ACTION_HEAD_PARTS = ("action_head.vl_self_attention", "action_head.model")


def compile_parts(model: nn.Module, names: tuple[str, ...], mode: Optional[str] = None) -> list[nn.Module]:
    """``nn.Module.compile`` (in place; names and state dict unchanged) of a GR00T model's
    submodules ``names`` (BACKBONE_PARTS: the frozen SigLIP tower and language model;
    ACTION_HEAD_PARTS: the trainable VL self-attention and DiT); returns them."""
    parts = [model.get_submodule(name) for name in names]
    for part in parts:
        part.compile(mode=mode)
    return parts


def fp8_backbone(model: nn.Module) -> tuple[int, int]:
    """The SigLIP tower's and the language model's linear layers in FP8, in place (names and
    state dict unchanged; :mod:`rlinf_isaac.models.gr00t.fp8`); -> (converted, left in float)."""
    counts = [fp8_linears(model.get_submodule(name)) for name in BACKBONE_PARTS]
    converted, kept = sum(c for c, _ in counts), sum(k for _, k in counts)
    logger.info("backbone in FP8: %d linear layers converted, %d left in float (sizes not multiples of 16)",
                converted, kept)
    return converted, kept
