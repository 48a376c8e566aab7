"""Typed configuration of the GR00T N1.5-architecture policy.

One set of classes serves every scale: ``load_config("gr00t_n1_5")`` is the full 2.4 B model
(Eagle 2.5 backbone: SigLIP 27 x 1152 + Qwen3 truncated to 12 of 28 layers; flow-matching DiT
of 16 blocks at width 1536), ``load_config("gr00t_tiny")`` the same structure scaled down for
CPU tests and RL on a laptop.

The on-disk format is the one of NVIDIA's GR00T N1.5 checkpoints (``config.json`` with
``backbone_cfg`` and ``action_head_cfg``). Public checkpoints describe the Eagle VLM only by
name (``eagle_path``); the nested ``vision`` / ``llm`` blocks written by :meth:`GR00TConfig.to_dict`
are our addition, and when they are absent the Eagle 2.5 defaults below (the N1.5 VLM) apply.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rlinf_isaac.config.structured import ConfigError, from_dict

__all__ = [
    "VisionConfig",
    "LLMConfig",
    "BackboneConfig",
    "DiTConfig",
    "VLSelfAttentionConfig",
    "ActionHeadConfig",
    "GR00TConfig",
    "eagle25_llm",
    "load_config",
    "list_configs",
    "ATTN_IMPLEMENTATIONS",
]

ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
_CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _check_positive(prefix: str, obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{prefix}.{name} must be a positive int, got {value!r}")


def _check_unit(prefix: str, name: str, value: float, low: float = 0.0, high: float = 1.0) -> None:
    if not (low <= float(value) <= high):
        raise ConfigError(f"{prefix}.{name} must lie in [{low}, {high}], got {value!r}")


@dataclass
class VisionConfig:
    """SigLIP vision tower (transformers ``SiglipVisionConfig``); defaults = Eagle 2.5 / N1.5."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"
    use_head: bool = False  # the attention-pooling head is unused by GR00T (features are per patch)

    def __post_init__(self) -> None:
        p = "backbone_cfg.vision"
        _check_positive(p, self, ("hidden_size", "intermediate_size", "num_hidden_layers",
                                  "num_attention_heads", "image_size", "patch_size", "num_channels"))
        if self.image_size % self.patch_size:
            raise ConfigError(f"{p}.image_size={self.image_size} must be a multiple of "
                             f"{p}.patch_size={self.patch_size}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"{p}.hidden_size={self.hidden_size} must be divisible by "
                             f"{p}.num_attention_heads={self.num_attention_heads}")

    @property
    def num_patches(self) -> int:
        """Patches per image: (image_size / patch_size)^2, e.g. (224 / 14)^2 = 256."""
        return (self.image_size // self.patch_size) ** 2


@dataclass
class LLMConfig:
    """Qwen3 language model (transformers ``Qwen3Config``); defaults = Qwen3-1.7B in Eagle 2.5.

    ``num_hidden_layers`` is the depth of the source model (28); only the first
    ``backbone_cfg.select_layer`` layers are built.
    """

    vocab_size: int = 151680  # Eagle 2.5's Qwen3 (published embed_tokens: [151680, 2048])
    hidden_size: int = 2048
    intermediate_size: int = 6144
    num_hidden_layers: int = 28
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    max_position_embeddings: int = 40960
    tie_word_embeddings: bool = True
    hidden_act: str = "silu"
    # informational (GR00T generates no text); None: not stated. Eagle 2.5: 151643 / 151645
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self) -> None:
        p = "backbone_cfg.llm"
        _check_positive(p, self, ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                  "num_attention_heads", "num_key_value_heads", "head_dim",
                                  "max_position_embeddings"))
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 <= value < self.vocab_size):
                raise ConfigError(f"{p}.{name} must be null or lie in [0, {p}.vocab_size={self.vocab_size}), "
                                  f"got {value!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"{p}.num_attention_heads={self.num_attention_heads} must be a multiple "
                             f"of {p}.num_key_value_heads={self.num_key_value_heads}")


def eagle25_llm() -> LLMConfig:
    """The language model of GR00T N1.5's Eagle 2.5 VLM (Qwen3-1.7B): what applies when a
    checkpoint's ``backbone_cfg`` has no ``llm`` block, as in the published one."""
    return LLMConfig(bos_token_id=151643, eos_token_id=151645)


@dataclass
class BackboneConfig:
    """Eagle 2.5 VLM backbone: SigLIP -> ``mlp1`` projector -> Qwen3 truncated at ``select_layer``."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    llm: LLMConfig = field(default_factory=eagle25_llm)
    select_layer: int = 12
    image_token_index: int = 151669  # the ``<IMG_CONTEXT>`` token of the Eagle 2.5 tokenizer
    pad_token_id: int = 151643
    use_pixel_shuffle: bool = False  # N1.5's Eagle is "1mlp_nops": one linear, no pixel shuffle
    downsample_ratio: float = 0.5
    mlp_connector_layers: int = 1
    project_to_dim: int | None = None  # N1.5: None -> ``eagle_linear`` is the identity
    tune_llm: bool = False
    tune_visual: bool = True  # as published; the policy's own tune_* switches decide what trains
    reproject_vision: bool = False
    attn_implementation: str = "sdpa"
    # as published; informational: the attention kernel is attn_implementation (flash_attention_2
    # where the flash-attn package and a GPU are there)
    use_flash_attention: bool = True
    eagle_path: str | None = None  # informational (name of the source VLM); nothing is fetched

    # keys of public checkpoints' backbone_cfg that carry no architecture information
    IGNORED_KEYS: ClassVar[tuple[str, ...]] = ("load_bf16",)

    def __post_init__(self) -> None:
        p = "backbone_cfg"
        if not (1 <= self.select_layer <= self.llm.num_hidden_layers):
            raise ConfigError(f"{p}.select_layer must lie in [1, {p}.llm.num_hidden_layers="
                             f"{self.llm.num_hidden_layers}], got {self.select_layer!r}")
        for name in ("image_token_index", "pad_token_id"):
            value = getattr(self, name)
            if not (0 <= value < self.llm.vocab_size):
                raise ConfigError(f"{p}.{name} must lie in [0, {p}.llm.vocab_size="
                                 f"{self.llm.vocab_size}), got {value!r}")
        if self.image_token_index == self.pad_token_id:
            raise ConfigError(f"{p}.image_token_index and {p}.pad_token_id must differ, both are "
                             f"{self.pad_token_id}")
        if self.mlp_connector_layers not in (1, 2):
            raise ConfigError(f"{p}.mlp_connector_layers must be 1 or 2, got {self.mlp_connector_layers!r}")
        if self.use_pixel_shuffle:
            side = self.vision.image_size // self.vision.patch_size
            if self.downsample_ratio not in (0.5, 0.25) or (side * self.downsample_ratio) % 1:
                raise ConfigError(f"{p}.downsample_ratio={self.downsample_ratio} must be 0.5 or 0.25 and "
                                 f"divide the patch grid side {side}")
        if self.project_to_dim is not None and self.project_to_dim <= 0:
            raise ConfigError(f"{p}.project_to_dim must be null or a positive int, got {self.project_to_dim!r}")
        if self.reproject_vision:
            raise ConfigError(f"{p}.reproject_vision=True is not supported (N1.5 ships False)")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(f"{p}.attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, "
                             f"got {self.attn_implementation!r}")

    @property
    def image_tokens_per_view(self) -> int:
        """VL tokens per image: num_patches * ratio^2 with pixel shuffle, else num_patches (256)."""
        n = self.vision.num_patches
        return int(n * self.downsample_ratio**2) if self.use_pixel_shuffle else n

    @property
    def feature_dim(self) -> int:
        """Width D_vl of the backbone features (LM width, or ``project_to_dim``)."""
        return self.project_to_dim or self.llm.hidden_size


@dataclass
class DiTConfig:
    """Flow-matching DiT (``action_head.model``): AdaLN blocks, even blocks cross-attend to VL."""

    num_attention_heads: int = 32
    attention_head_dim: int = 48
    num_layers: int = 16
    output_dim: int = 1024
    cross_attention_dim: int | None = 2048
    dropout: float = 0.2
    final_dropout: bool = True
    interleave_self_attention: bool = True
    norm_type: str = "ada_norm"
    positional_embeddings: str | None = None
    attention_bias: bool = True
    activation_fn: str = "gelu-approximate"

    def __post_init__(self) -> None:
        p = "action_head_cfg.diffusion_model_cfg"
        _check_positive(p, self, ("num_attention_heads", "attention_head_dim", "num_layers", "output_dim"))
        _check_unit(p, "dropout", self.dropout)
        if self.norm_type != "ada_norm":
            raise ConfigError(f"{p}.norm_type must be 'ada_norm', got {self.norm_type!r}")
        if self.positional_embeddings is not None:
            raise ConfigError(f"{p}.positional_embeddings must be null (N1.5), got {self.positional_embeddings!r}")

    @property
    def inner_dim(self) -> int:
        """Token width of the DiT: heads * head_dim (32 * 48 = 1536)."""
        return self.num_attention_heads * self.attention_head_dim


@dataclass
class VLSelfAttentionConfig:
    """Self-attention stack over VL tokens (``action_head.vl_self_attention``)."""

    num_attention_heads: int = 32
    attention_head_dim: int = 64
    num_layers: int = 4
    dropout: float = 0.2
    final_dropout: bool = True
    positional_embeddings: str | None = None
    attention_bias: bool = True
    activation_fn: str = "gelu-approximate"

    def __post_init__(self) -> None:
        p = "action_head_cfg.vl_self_attention_cfg"
        _check_positive(p, self, ("num_attention_heads", "attention_head_dim", "num_layers"))
        _check_unit(p, "dropout", self.dropout)
        if self.positional_embeddings is not None:
            raise ConfigError(f"{p}.positional_embeddings must be null (N1.5), got {self.positional_embeddings!r}")

    @property
    def inner_dim(self) -> int:
        """Token width: heads * head_dim (32 * 64 = 2048); must equal the backbone feature width."""
        return self.num_attention_heads * self.attention_head_dim


@dataclass
class ActionHeadConfig:
    """Flow-matching action head (N1.5 names and defaults)."""

    action_dim: int = 32
    action_horizon: int = 16
    add_pos_embed: bool = True
    backbone_embedding_dim: int = 2048
    diffusion_model_cfg: DiTConfig = field(default_factory=DiTConfig)
    vl_self_attention_cfg: VLSelfAttentionConfig = field(default_factory=VLSelfAttentionConfig)
    hidden_size: int = 1024
    input_embedding_dim: int = 1536
    max_action_dim: int = 32
    max_state_dim: int = 64
    max_num_embodiments: int = 32
    max_seq_len: int = 1024
    noise_beta_alpha: float = 1.5
    noise_beta_beta: float = 1.0
    noise_s: float = 0.999
    num_inference_timesteps: int = 4
    num_target_vision_tokens: int = 32
    num_timestep_buckets: int = 1000
    tune_projector: bool = True
    tune_diffusion_model: bool = True
    use_vlln: bool = True
    # Public N1.5 ignores the VL padding mask inside the action head (attention over padded VL
    # tokens). True masks padded tokens out of vl_self_attention and the DiT cross-attention.
    mask_vl_tokens: bool = False
    model_dtype: str = "float32"

    def __post_init__(self) -> None:
        p = "action_head_cfg"
        _check_positive(p, self, ("action_dim", "action_horizon", "backbone_embedding_dim", "hidden_size",
                                  "input_embedding_dim", "max_action_dim", "max_state_dim",
                                  "max_num_embodiments", "max_seq_len", "num_inference_timesteps",
                                  "num_target_vision_tokens", "num_timestep_buckets"))
        if self.action_dim != self.max_action_dim:
            raise ConfigError(f"{p}.action_dim={self.action_dim} must equal {p}.max_action_dim="
                             f"{self.max_action_dim} (actions are padded to max_action_dim)")
        if self.noise_beta_alpha <= 0 or self.noise_beta_beta <= 0:
            raise ConfigError(f"{p}.noise_beta_alpha/noise_beta_beta must be > 0, got "
                             f"{self.noise_beta_alpha!r}/{self.noise_beta_beta!r}")
        _check_unit(p, "noise_s", self.noise_s)
        dit = self.diffusion_model_cfg
        if dit.inner_dim != self.input_embedding_dim:
            raise ConfigError(f"{p}.diffusion_model_cfg heads*head_dim={dit.inner_dim} must equal "
                             f"{p}.input_embedding_dim={self.input_embedding_dim}")
        if dit.output_dim != self.hidden_size:
            raise ConfigError(f"{p}.diffusion_model_cfg.output_dim={dit.output_dim} must equal "
                             f"{p}.hidden_size={self.hidden_size} (input of action_decoder)")
        if dit.cross_attention_dim not in (None, self.backbone_embedding_dim):
            raise ConfigError(f"{p}.diffusion_model_cfg.cross_attention_dim={dit.cross_attention_dim} must be "
                             f"null or {p}.backbone_embedding_dim={self.backbone_embedding_dim}")
        if self.use_vlln and self.vl_self_attention_cfg.inner_dim != self.backbone_embedding_dim:
            raise ConfigError(f"{p}.vl_self_attention_cfg heads*head_dim={self.vl_self_attention_cfg.inner_dim} "
                             f"must equal {p}.backbone_embedding_dim={self.backbone_embedding_dim}")
        if self.add_pos_embed and self.action_horizon > self.max_seq_len:
            raise ConfigError(f"{p}.action_horizon={self.action_horizon} exceeds {p}.max_seq_len={self.max_seq_len}")


@dataclass
class GR00TConfig:
    """The whole policy: ``backbone_cfg`` + ``action_head_cfg`` (GR00T N1.5 ``config.json`` layout)."""

    backbone_cfg: BackboneConfig = field(default_factory=BackboneConfig)
    action_head_cfg: ActionHeadConfig = field(default_factory=ActionHeadConfig)
    name: str = "gr00t_n1_5"
    model_type: str = "gr00t_n1_5"
    compute_dtype: str = "float32"

    # top-level keys of public checkpoints that we accept and rewrite on save
    IGNORED_KEYS: ClassVar[tuple[str, ...]] = ("action_dim", "action_horizon", "architectures", "attn_implementation", "hidden_size",
                    "model_dtype", "torch_dtype", "transformers_version")

    def __post_init__(self) -> None:
        if self.model_type != "gr00t_n1_5":
            raise ConfigError(f"model_type must be 'gr00t_n1_5', got {self.model_type!r}")
        if self.compute_dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"compute_dtype must be float32, bfloat16 or float16, got {self.compute_dtype!r}")
        if self.backbone_cfg.feature_dim != self.action_head_cfg.backbone_embedding_dim:
            raise ConfigError(
                f"action_head_cfg.backbone_embedding_dim={self.action_head_cfg.backbone_embedding_dim} must "
                f"equal the backbone feature width {self.backbone_cfg.feature_dim} "
                f"(backbone_cfg.project_to_dim or backbone_cfg.llm.hidden_size)")

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GR00TConfig":
        """Build from a ``config.json`` dict (ours or a public GR00T N1.5 checkpoint's)."""
        return from_dict(cls, json.loads(json.dumps(data)))  # a deep copy, read strictly

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` dict: public N1.5 keys plus our nested ``vision`` / ``llm`` blocks."""
        out = dataclasses.asdict(self)
        ah = self.action_head_cfg
        out.update(action_dim=ah.action_dim, action_horizon=ah.action_horizon, architectures=["GR00T_N1_5"],
                   hidden_size=self.backbone_cfg.feature_dim, model_dtype="float32")
        return out

    def to_json(self, path: str | os.PathLike) -> None:
        """Write ``to_dict()`` as indented JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def list_configs() -> list[str]:
    """Names of the shipped configs (``configs/*.json``), sorted."""
    return sorted(p.stem for p in _CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | os.PathLike, **overrides: Any) -> GR00TConfig:
    """Load a shipped config by name (``"gr00t_tiny"``), a JSON file, or a checkpoint directory.

    ``overrides`` patch sections with dicts (merged one level deep) or replace top-level values,
    e.g. ``load_config("gr00t_tiny", backbone_cfg={"attn_implementation": "eager"})``.
    """
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    elif not path.suffix and not path.exists():
        path = _CONFIG_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise ConfigError(f"unknown model config {str(name_or_path)!r}; shipped configs: "
                              f"{list_configs()}, or pass a path to a config.json / checkpoint dir")
    if not path.exists():
        raise ConfigError(f"model config file {path} does not exist (config.json is written by "
                          f"save_pretrained / the SFT trainer, or ships with a GR00T checkpoint)")
    data = json.loads(path.read_text())
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section].update(values)
        else:
            data[section] = values
    cfg = GR00TConfig.from_dict(data)
    if "name" not in data:
        cfg.name = path.parent.name if path.name == "config.json" else path.stem
    return cfg
