"""Build the RL policy from the run config (one place for rollout and actor workers)."""

from __future__ import annotations

from pathlib import Path

import torch

from rlinf_isaac.config.schema import AlgorithmConfig, ModelConfig

__all__ = ["build_policy", "policy_config", "resolve_checkpoint_path"]

_GRANULARITY = {"chunk_level": "chunk", "action_level": "action"}


def policy_config(model: ModelConfig, algo: AlgorithmConfig):
    """Map ``actor.model`` + ``algorithm`` keys to the policy wrapper's config."""
    from rlinf_isaac.models.gr00t.policy import GR00TPolicyConfig

    return GR00TPolicyConfig(
        noise_method=model.noise_method,
        noise_level=model.noise_level,
        logprob_granularity=_GRANULARITY[algo.logprob_type],
        value_granularity=_GRANULARITY[algo.reward_type],
        num_denoise_steps=model.num_denoise_steps,
        num_action_chunks=model.num_action_chunks,
        action_dim=model.action_dim,
        add_value_head=model.add_value_head,
        reuse_backbone_features=model.reuse_backbone_features,
        tune_visual=model.tune_visual,
        tune_llm=model.tune_llm,
        tune_projector=model.tune_projector,
        tune_diffusion_model=model.tune_diffusion_model,
        cuda_graph=model.cuda_graph,
        explore_gripper=model.explore_gripper,
    )


def resolve_checkpoint_path(path: str | None) -> Path | None:
    """A relative checkpoint path is taken from the repository root when not found as given."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists() and not p.is_absolute():
        repo = Path(__file__).resolve().parents[2] / p
        if repo.exists():
            return repo
    if not p.exists():
        raise FileNotFoundError(
            f"actor.model.checkpoint_path = {path!r}: no such directory. Point it at a local GR00T "
            f"checkpoint (config.json + safetensors); the tiny SFT checkpoints are made by "
            f"scripts/make_tiny_sft.sh"
        )
    return p


def build_policy(model: ModelConfig, algo: AlgorithmConfig, device: str = "cpu", seed: int = 0):
    """The policy named by ``actor.model.model_name`` on ``device``."""
    try:
        builder = _BUILDERS[model.model_name]
    except KeyError:
        raise ValueError(f"actor.model.model_name = {model.model_name!r}: expected one of {sorted(_BUILDERS)}") from None
    return builder(model, algo, device, seed)


def _build_gr00t(model: ModelConfig, algo: AlgorithmConfig, device: str, seed: int):
    """GR00T from a local checkpoint, or randomly initialised (gr00t_tiny, benchmarks)."""
    from rlinf_isaac.models.gr00t.policy import GR00TPolicy

    cfg = policy_config(model, algo)
    dtype = torch.bfloat16 if model.precision == "bf16" else None
    ckpt = resolve_checkpoint_path(model.checkpoint_path)
    processor_kwargs: dict = {"embodiment_tag": model.embodiment_tag}
    if model.tokenizer_path is not None:
        from rlinf_isaac.models.gr00t.tokenizer import load_tokenizer

        processor_kwargs["tokenizer"] = load_tokenizer(Path(model.tokenizer_path).expanduser())
    if ckpt is not None:
        policy = GR00TPolicy.from_pretrained(ckpt, cfg, device=device, dtype=dtype, **processor_kwargs)
    else:
        policy = GR00TPolicy.from_config(model.config_name, cfg, device=device, seed=seed, **processor_kwargs)
        if dtype is not None:
            policy = policy.to(dtype)
    return policy.to(device)


_BUILDERS = {"gr00t": _build_gr00t}  # model_name -> builder; a new policy family adds one line
