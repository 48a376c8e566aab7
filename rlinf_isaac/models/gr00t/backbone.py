"""Eagle 2.5 vision-language backbone of GR00T N1.5: SigLIP -> ``mlp1`` -> Qwen3 (first layers).

Images go through SigLIP (one sequence of ``(S / patch)^2`` patch tokens per view: 256 for
224 px / patch 14, no pixel shuffle in N1.5), are projected by ``mlp1`` to the LM width and
replace the embeddings of the image-context tokens (``image_token_index``) in the prompt.
The LM is built with only its first ``select_layer`` layers; the features are its normed
last hidden state (= ``hidden_states[select_layer]`` of the truncated LM in GR00T's code).

Module names follow the public checkpoint: ``backbone.eagle_model.vision_model.vision_model.*``,
``backbone.eagle_model.mlp1.0.*``, ``backbone.eagle_model.language_model.model.layers.N.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from rlinf_isaac.models.gr00t.config import BackboneConfig
from rlinf_isaac.models.gr00t.cuda_graph import is_capturing

__all__ = ["SiglipTower", "EagleVLM", "EagleBackbone", "build_siglip_config", "build_qwen3_config"]


def build_siglip_config(cfg: BackboneConfig):
    """transformers ``SiglipVisionConfig`` of ``cfg.vision`` (no hub access)."""
    from transformers import SiglipVisionConfig

    v = cfg.vision
    sc = SiglipVisionConfig(hidden_size=v.hidden_size, intermediate_size=v.intermediate_size,
                            num_hidden_layers=v.num_hidden_layers, num_attention_heads=v.num_attention_heads,
                            image_size=v.image_size, patch_size=v.patch_size, num_channels=v.num_channels,
                            layer_norm_eps=v.layer_norm_eps, hidden_act=v.hidden_act, vision_use_head=v.use_head)
    sc._attn_implementation = cfg.attn_implementation
    return sc


def build_qwen3_config(cfg: BackboneConfig):
    """transformers ``Qwen3Config`` with only ``select_layer`` layers (no hub access)."""
    from transformers import Qwen3Config

    m = cfg.llm
    qc = Qwen3Config(vocab_size=m.vocab_size, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
                     num_hidden_layers=cfg.select_layer, num_attention_heads=m.num_attention_heads,
                     num_key_value_heads=m.num_key_value_heads, head_dim=m.head_dim, rms_norm_eps=m.rms_norm_eps,
                     max_position_embeddings=m.max_position_embeddings, tie_word_embeddings=m.tie_word_embeddings,
                     hidden_act=m.hidden_act, pad_token_id=cfg.pad_token_id, bos_token_id=m.bos_token_id,
                     eos_token_id=m.eos_token_id, use_cache=False,
                     rope_parameters={"rope_type": "default", "rope_theta": m.rope_theta})
    qc._attn_implementation = cfg.attn_implementation
    return qc


class SiglipTower(nn.Module):
    """Holds the transformers ``SiglipVisionModel`` as ``.vision_model`` (checkpoint naming)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        from transformers import SiglipVisionModel

        self.vision_model = SiglipVisionModel(build_siglip_config(cfg))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values: [N, 3, S, S] -> last hidden state (post-LayerNorm) [N, P, D_vit]."""
        return self.vision_model(pixel_values=pixel_values).last_hidden_state


class EagleVLM(nn.Module):
    """``eagle_model``: ``vision_model``, ``mlp1`` projector, ``language_model`` (Qwen3ForCausalLM)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        from transformers import Qwen3ForCausalLM

        self.cfg = cfg
        self.vision_model = SiglipTower(cfg)
        d_vit, d_llm = cfg.vision.hidden_size, cfg.llm.hidden_size
        d_in = d_vit * int(round(1 / cfg.downsample_ratio)) ** 2 if cfg.use_pixel_shuffle else d_vit
        if cfg.mlp_connector_layers == 1:
            self.mlp1 = nn.Sequential(nn.Linear(d_in, d_llm))
        else:
            self.mlp1 = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d_llm), nn.GELU(), nn.Linear(d_llm, d_llm))
        self.language_model = Qwen3ForCausalLM(build_qwen3_config(cfg))

    def pixel_shuffle(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, h, w, c] -> [N, h*r, w*r, c/r^2] (r = downsample_ratio), Eagle's space-to-depth."""
        n, w, h, c = x.shape
        r = self.cfg.downsample_ratio
        x = x.reshape(n, w, int(h * r), int(c / r))  # [N, W, H, C] -> [N, W, H*r, C/r]
        x = x.permute(0, 2, 1, 3)  # -> [N, H*r, W, C/r]
        x = x.reshape(n, int(h * r), int(w * r), int(c / (r * r)))  # -> [N, H*r, W*r, C/r^2]
        return x.permute(0, 2, 1, 3)  # -> [N, W*r, H*r, C/r^2]

    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values: [N, 3, S, S] -> image tokens [N, T_img, D_llm]."""
        vit = self.vision_model(pixel_values)  # [N, P, D_vit]
        if self.cfg.use_pixel_shuffle:
            side = int(vit.shape[1] ** 0.5)
            vit = self.pixel_shuffle(vit.reshape(vit.shape[0], side, side, -1))  # [N, P, D] -> [N, s, s, D]
            vit = vit.reshape(vit.shape[0], -1, vit.shape[-1])  # [N, s', s', D'] -> [N, s'^2, D']
        return self.mlp1(vit)


class EagleBackbone(nn.Module):
    """``backbone``: images + prompt tokens -> VL features [B, L, D_vl] and mask [B, L]."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        self.eagle_model = EagleVLM(cfg)
        self.eagle_linear = nn.Linear(cfg.llm.hidden_size, cfg.project_to_dim) if cfg.project_to_dim else nn.Identity()

    @property
    def language_model(self) -> nn.Module:
        """The (truncated) Qwen3ForCausalLM."""
        return self.eagle_model.language_model

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VL features.

        pixel_values: float [B, V, 3, S, S] (V views, SigLIP-normalised); input_ids: int64 [B, L] with
        exactly V * image_tokens_per_view ``image_token_index`` tokens per row; attention_mask: [B, L]
        (1 = valid). Returns (features float [B, L, D_vl], mask bool [B, L]).
        """
        b, v = pixel_values.shape[:2]
        per_view = self.cfg.image_tokens_per_view
        is_img = input_ids == self.cfg.image_token_index  # [B, L]
        counts = is_img.sum(dim=1)
        if not is_capturing() and bool((counts != v * per_view).any()):  # checked eagerly only
            raise ValueError(f"each prompt must hold V * image_tokens_per_view = {v} * {per_view} = {v * per_view} "
                             f"image tokens (id backbone_cfg.image_token_index={self.cfg.image_token_index}), "
                             f"got {counts.tolist()}")
        lm = self.eagle_model.language_model
        embeds = lm.get_input_embeddings()(input_ids)  # [B, L, D]
        pix = pixel_values.reshape(b * v, *pixel_values.shape[2:]).to(embeds.dtype)  # [B, V, 3, S, S] -> [B*V, 3, S, S]
        img = self.eagle_model.extract_feature(pix)  # [B*V, T, D], rows in (b, v) order
        embeds = embeds.masked_scatter(is_img.unsqueeze(-1), img.to(embeds.dtype))  # image tokens <- features
        out = lm.model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False)
        features = self.eagle_linear(out.last_hidden_state)  # normed output of layer select_layer
        return features, attention_mask.to(torch.bool)
