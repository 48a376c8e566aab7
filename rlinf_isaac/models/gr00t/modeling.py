"""The GR00T N1.5-architecture policy: ``backbone`` (Eagle 2.5 VLM) + ``action_head`` (flow-matching DiT).

The same class builds the full 2.4 B model (``load_config("gr00t_n1_5")``) and the tiny CPU one
(``load_config("gr00t_tiny")``); build the full one on the meta device to inspect it for free::

    with torch.device("meta"):
        model = GR00TN15(load_config("gr00t_n1_5"))
"""

from __future__ import annotations

import torch
from torch import nn

from rlinf_isaac.models.gr00t.action_head import ActionContext, FlowMatchingActionHead
from rlinf_isaac.models.gr00t.backbone import EagleBackbone
from rlinf_isaac.models.gr00t.config import GR00TConfig, load_config

__all__ = ["GR00TN15", "build_model"]


class GR00TN15(nn.Module):
    """GR00T N1.5: ``.backbone`` (VL features) and ``.action_head`` (actions by flow matching).

    Trainable parts follow GR00T's switches (:meth:`set_trainable`), at construction those of the
    config (``gr00t_n1_5``: the vision tower and projector train, the LM is frozen, as published);
    the policy then applies ``actor.model``'s own ``tune_*`` switches.
    """

    def __init__(self, config: GR00TConfig):
        super().__init__()
        self.config = config
        attn = config.backbone_cfg.attn_implementation
        self.backbone = EagleBackbone(config.backbone_cfg)
        self.action_head = FlowMatchingActionHead(config.action_head_cfg, attn)
        self._dropout_p: dict[str, float] = {}
        bb, ah = config.backbone_cfg, config.action_head_cfg
        self.set_trainable(bb.tune_visual, bb.tune_llm, ah.tune_projector, ah.tune_diffusion_model)

    # ------------------------------------------------------------------ trainable parts
    def set_trainable(self, tune_visual: bool = False, tune_llm: bool = False, tune_projector: bool = True,
                      tune_diffusion_model: bool = True) -> None:
        """GR00T's switches: ``tune_visual`` -> SigLIP + ``mlp1``; ``tune_llm`` -> the LM;
        ``tune_projector`` -> state/action encoders, action decoder, position embedding;
        ``tune_diffusion_model`` -> the DiT. ``vlln``, ``vl_self_attention`` and ``future_tokens``
        always train (as in GR00T); ``eagle_linear`` (if any) trains with the backbone."""
        self.requires_grad_(True)
        eagle, head = self.backbone.eagle_model, self.action_head
        eagle.vision_model.requires_grad_(tune_visual)
        eagle.mlp1.requires_grad_(tune_visual)
        eagle.language_model.requires_grad_(tune_llm)
        for part in (head.state_encoder, head.action_encoder, head.action_decoder):
            part.requires_grad_(tune_projector)
        if self.config.action_head_cfg.add_pos_embed:
            head.position_embedding.requires_grad_(tune_projector)
        head.model.requires_grad_(tune_diffusion_model)
        self.tune = dict(tune_visual=tune_visual, tune_llm=tune_llm, tune_projector=tune_projector,
                         tune_diffusion_model=tune_diffusion_model)

    def set_dropout(self, enabled: bool) -> None:
        """Switch every ``nn.Dropout`` off (p = 0, for RL: log-probs must not depend on dropout masks)
        or back to its configured rate. Independent of ``train()`` / ``eval()``."""
        for name, mod in self.named_modules():
            if isinstance(mod, nn.Dropout):
                self._dropout_p.setdefault(name, mod.p)
                mod.p = self._dropout_p[name] if enabled else 0.0

    def eval_dropout(self) -> None:
        """Shorthand for ``set_dropout(False)``."""
        self.set_dropout(False)

    # ------------------------------------------------------------------ forward helpers
    def encode(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               state: torch.Tensor, embodiment_id: torch.Tensor) -> ActionContext:
        """Backbone + ``prepare_context``. pixel_values [B, V, 3, S, S], input_ids/attention_mask [B, L],
        state [B, 1, 64], embodiment_id int64 [B]. Returns the :class:`ActionContext`."""
        features, mask = self.backbone(pixel_values, input_ids, attention_mask)
        return self.action_head.prepare_context(features, mask, state, embodiment_id)

    def compute_loss(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     state: torch.Tensor, embodiment_id: torch.Tensor, actions: torch.Tensor,
                     action_mask: torch.Tensor, **unused) -> torch.Tensor:
        """Flow-matching BC loss (scalar) for processed inputs; actions/action_mask [B, C, A]."""
        ctx = self.encode(pixel_values, input_ids, attention_mask, state, embodiment_id)
        return self.action_head.flow_matching_loss(ctx, actions, action_mask)

    @torch.no_grad()
    def get_action(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   state: torch.Tensor, embodiment_id: torch.Tensor, num_steps: int | None = None,
                   noise: torch.Tensor | None = None, **unused) -> torch.Tensor:
        """Deterministic-ODE action chunk [B, C, A] (normalised, padded) for processed inputs."""
        ctx = self.encode(pixel_values, input_ids, attention_mask, state, embodiment_id)
        return self.action_head.sample(ctx, num_steps, noise)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of (unique) parameters; tied weights count once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def build_model(config: GR00TConfig | str, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> GR00TN15:
    """Build a randomly initialised model from a config object or name/path (``"meta"`` device ok)."""
    cfg = load_config(config) if not isinstance(config, GR00TConfig) else config
    with torch.device(device or "cpu"):
        model = GR00TN15(cfg)
    return model.to(dtype=dtype) if dtype is not None else model
