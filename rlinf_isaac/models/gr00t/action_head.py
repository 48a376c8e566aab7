"""GR00T N1.5 flow-matching action head: VL self-attention, embodiment-specific encoders, DiT.

Flow-matching convention (GR00T): x_0 = noise, x_1 = actions,
``x_t = (1 - t) * x_0 + t * x_1``, target velocity ``v = x_1 - x_0``, Euler integration
``x_{k+1} = x_k + dt * v(x_k, t_k)`` with ``t_k = k / K`` (Lipman et al. 2023, "Flow Matching
for Generative Modeling"; GR00T N1, arXiv:2503.14734). Training times follow
``t = (s - u) / s`` with ``u ~ Beta(1.5, 1.0)``, s = 0.999, so small t (noisy) is emphasised.
The continuous time is discretised into ``num_timestep_buckets`` buckets before embedding.

Parameter names match the public checkpoint (``action_head.model.transformer_blocks.0.attn1.to_q.weight``,
``action_head.state_encoder.layer1.W``, ...). Dimension names: B envs/batch, L VL tokens,
C action horizon (16), A padded action dim (32), S padded state dim (64), K denoising steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rlinf_isaac.models.gr00t.config import ActionHeadConfig, DiTConfig, VLSelfAttentionConfig
from rlinf_isaac.models.gr00t.cuda_graph import is_capturing

__all__ = [
    "ActionContext",
    "CategorySpecificLinear",
    "CategorySpecificMLP",
    "MultiEmbodimentActionEncoder",
    "TransformerBlock",
    "DiT",
    "SelfAttentionTransformer",
    "FlowMatchingActionHead",
    "sinusoidal_encoding",
]


# log(10000) rounded to float32 (as GR00T N1.5 computes it), held as a Python float: a host
# constant, so neither a CUDA graph capture (no host-to-device copy) nor torch.compile (no
# tensor to read back) sees it. Its quotient by dim/2, cast to float32 by the multiply, equals
# the float32 quotient (checked for every dim/2 up to 8192 in the tests).
LOG_10000_F32 = float(torch.log(torch.tensor(10000.0)))


def sinusoidal_encoding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sin/cos encoding of (bucketed) timesteps.

    timesteps: [B, C] (any numeric dtype). Returns float32 [B, C, dim]: the first dim/2 channels
    are sin(t * 10000^(-i / (dim/2))), the last dim/2 the matching cos. The frequencies are
    computed in GR00T N1.5's order, ``exp(-i * (log(10000) / (dim/2)))`` in float32, which rounds
    differently from ``exp(-log(10000) * i / (dim/2))`` (by one unit in the last place at a third
    of the frequencies at dim 1536).
    """
    half = dim // 2
    step = LOG_10000_F32 / half  # Python float; the float32 quotient once the multiply casts it
    freqs = torch.exp(-torch.arange(half, dtype=torch.float32, device=timesteps.device) * step)  # [dim/2]
    angles = timesteps.float().unsqueeze(-1) * freqs  # [B, C, 1] * [dim/2] -> [B, C, dim/2]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # [B, C, dim]


class CategorySpecificLinear(nn.Module):
    """One linear layer per embodiment slot: ``y = x @ W[k] + b[k]`` for slot k of each sample."""

    def __init__(self, num_categories: int, input_dim: int, output_dim: int):
        super().__init__()
        self.W = nn.Parameter(0.02 * torch.randn(num_categories, input_dim, output_dim))
        self.b = nn.Parameter(torch.zeros(num_categories, output_dim))

    def forward(self, x: torch.Tensor, cat_ids: torch.Tensor) -> torch.Tensor:
        """x: [B, N, in], cat_ids: int64 [B]. Returns [B, N, out]."""
        return torch.bmm(x, self.W[cat_ids]) + self.b[cat_ids].unsqueeze(1)  # y = x W_k + b_k


class CategorySpecificMLP(nn.Module):
    """Two category-specific linears with a ReLU between (state encoder, action decoder)."""

    def __init__(self, num_categories: int, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.layer1 = CategorySpecificLinear(num_categories, input_dim, hidden_dim)
        self.layer2 = CategorySpecificLinear(num_categories, hidden_dim, output_dim)

    def forward(self, x: torch.Tensor, cat_ids: torch.Tensor) -> torch.Tensor:
        """x: [B, N, in], cat_ids: int64 [B]. Returns [B, N, out]."""
        return self.layer2(F.relu(self.layer1(x, cat_ids)), cat_ids)


class MultiEmbodimentActionEncoder(nn.Module):
    """Noisy action chunk + bucketed time -> tokens: W3(swish(W2([W1 a, sincos(t)])))."""

    def __init__(self, action_dim: int, hidden_size: int, num_embodiments: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.W1 = CategorySpecificLinear(num_embodiments, action_dim, hidden_size)
        self.W2 = CategorySpecificLinear(num_embodiments, 2 * hidden_size, hidden_size)
        self.W3 = CategorySpecificLinear(num_embodiments, hidden_size, hidden_size)

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, cat_ids: torch.Tensor) -> torch.Tensor:
        """actions: [B, C, A]; timesteps: int64 [B] buckets; cat_ids: int64 [B]. Returns [B, C, D]."""
        b, c, _ = actions.shape
        a_emb = self.W1(actions, cat_ids)  # [B, C, D]
        tau = sinusoidal_encoding(timesteps[:, None].expand(b, c), self.hidden_size).to(a_emb.dtype)  # [B, C, D]
        x = self.W2(torch.cat([a_emb, tau], dim=-1), cat_ids)  # [B, C, 2D] -> [B, C, D]
        return self.W3(x * torch.sigmoid(x), cat_ids)  # swish(x) = x * sigmoid(x)


class TimestepEncoder(nn.Module):
    """Bucketed time -> embedding [B, D] (diffusers ``Timesteps`` 256 ch + ``TimestepEmbedding``)."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        self.time_proj = Timesteps(num_channels=256, flip_sin_to_cos=True, downscale_freq_shift=1)
        self.timestep_embedder = TimestepEmbedding(in_channels=256, time_embed_dim=embedding_dim)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        """timesteps: int64 [B]. Returns [B, D]."""
        proj = self.time_proj(timesteps).to(self.timestep_embedder.linear_1.weight.dtype)  # [B, 256]
        return self.timestep_embedder(proj)


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine, modulated by the time embedding: norm(x) * (1 + scale) + shift."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, eps, elementwise_affine=False)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x: [B, N, D], temb: [B, D]. Returns [B, N, D]."""
        scale, shift = self.linear(F.silu(temb)).chunk(2, dim=1)  # [B, 2D] -> 2 x [B, D]
        return self.norm(x) * (1 + scale[:, None]) + shift[:, None]


def _set_attn_processor(attn: nn.Module, attn_implementation: str) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    # flash_attention_2 for diffusers blocks means SDPA (which dispatches to flash kernels on GPU)
    attn.set_processor(AttnProcessor() if attn_implementation == "eager" else AttnProcessor2_0())


def _attend_cached(attn: nn.Module, h: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attn_bias: torch.Tensor | None) -> torch.Tensor:
    """Cross-attention of a diffusers ``Attention`` with its key/value projections precomputed.

    h: [B, N, D] queries; key, value: [B, L, H*d] (= ``attn.to_k(context)``, ``attn.to_v(context)``);
    attn_bias: additive [B, 1, L] or None. Same math as the block's processor (eager softmax or
    SDPA). Returns [B, N, D]."""
    b, n, _ = h.shape
    heads = attn.heads
    q = attn.to_q(h).view(b, n, heads, -1).transpose(1, 2)  # [B, N, H*d] -> [B, H, N, d]
    k = key.view(b, key.shape[1], heads, -1).transpose(1, 2)  # [B, L, H*d] -> [B, H, L, d]
    v = value.view(b, value.shape[1], heads, -1).transpose(1, 2)  # [B, L, H*d] -> [B, H, L, d]
    mask = None if attn_bias is None else attn_bias[:, None]  # [B, 1, L] -> [B, 1, 1, L]
    if type(attn.processor).__name__ == "AttnProcessor":  # eager
        scores = q @ k.transpose(-1, -2) * attn.scale  # softmax(q k^T / sqrt(d) + bias) v
        out = torch.softmax(scores if mask is None else scores + mask, dim=-1) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.transpose(1, 2).reshape(b, n, -1).to(q.dtype)  # [B, H, N, d] -> [B, N, H*d]
    return attn.to_out[1](attn.to_out[0](out))


class TransformerBlock(nn.Module):
    """Pre-norm block: x += attn(norm1(x) [, context]); x += ff(norm3(x)). Names as in GR00T."""

    # methods other than forward that compute with the block's weights: FSDP gathers its shards
    # around them too (distributed/fsdp.py)
    fsdp_forward_methods = ("context_kv",)

    def __init__(self, dim: int, heads: int, head_dim: int, *, dropout: float, final_dropout: bool,
                 cross_attention_dim: int | None, ada_norm: bool, attention_bias: bool = True,
                 activation_fn: str = "gelu-approximate", attn_implementation: str = "sdpa"):
        super().__init__()
        from diffusers.models.attention import Attention, FeedForward

        self.ada_norm = ada_norm
        self.norm1 = AdaLayerNorm(dim) if ada_norm else nn.LayerNorm(dim, eps=1e-5)
        self.attn1 = Attention(query_dim=dim, heads=heads, dim_head=head_dim, dropout=dropout,
                               bias=attention_bias, cross_attention_dim=cross_attention_dim, out_bias=True)
        _set_attn_processor(self.attn1, attn_implementation)
        # DiT blocks: no affine on norm3 (norm_elementwise_affine=False); VL blocks: affine
        self.norm3 = nn.LayerNorm(dim, 1e-5, elementwise_affine=not ada_norm)
        self.ff = FeedForward(dim, dropout=dropout, activation_fn=activation_fn, final_dropout=final_dropout,
                              bias=True)
        self.final_dropout = nn.Dropout(dropout) if final_dropout else None

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Key and value projections of a cross-attention context [B, L, D_ctx] -> 2 x [B, L, H*d]."""
        return self.attn1.to_k(context), self.attn1.to_v(context)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None, context: torch.Tensor | None = None,
                attn_bias: torch.Tensor | None = None,
                context_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x: [B, N, D]; temb: [B, D] (AdaLN blocks); context: [B, L, D_ctx] or None (self-attention);
        attn_bias: additive float [B, 1, L_kv] (0 keep, dtype-min drop) or None; context_kv: the
        :meth:`context_kv` of ``context`` (reused across denoising steps) or None. Returns [B, N, D]."""
        h = self.norm1(x, temb) if self.ada_norm else self.norm1(x)
        if context_kv is not None:
            h = _attend_cached(self.attn1, h, context_kv[0], context_kv[1], attn_bias)
        else:
            h = self.attn1(h, encoder_hidden_states=context, attention_mask=attn_bias)
        if self.final_dropout is not None:
            h = self.final_dropout(h)
        x = x + h
        return x + self.ff(self.norm3(x))


class DiT(nn.Module):
    """Diffusion transformer over [state, future tokens, action tokens]; even blocks cross-attend to
    the VL tokens, odd blocks self-attend (``interleave_self_attention``); AdaLN from the time."""

    def __init__(self, cfg: DiTConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        self.cfg = cfg
        d = cfg.inner_dim
        self.timestep_encoder = TimestepEncoder(d)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(d, cfg.num_attention_heads, cfg.attention_head_dim, dropout=cfg.dropout,
                             final_dropout=cfg.final_dropout,
                             cross_attention_dim=None if self.is_self_block(i) else cfg.cross_attention_dim,
                             ada_norm=True, attention_bias=cfg.attention_bias, activation_fn=cfg.activation_fn,
                             attn_implementation=attn_implementation)
            for i in range(cfg.num_layers))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.proj_out_1 = nn.Linear(d, 2 * d)
        self.proj_out_2 = nn.Linear(d, cfg.output_dim)

    def is_self_block(self, idx: int) -> bool:
        """True where block ``idx`` self-attends (odd blocks when interleaving)."""
        return self.cfg.interleave_self_attention and idx % 2 == 1

    def context_kv(self, context: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Per block: the cross-attention key/value of ``context`` [B, L, D_vl] (None for self blocks).

        They depend on the VL tokens only, so one observation computes them once for all K
        denoising steps instead of K times (8 blocks x 2 x 2048 x 1536 x L MACs per step)."""
        return [None if self.is_self_block(i) else block.context_kv(context)
                for i, block in enumerate(self.transformer_blocks)]

    def forward(self, x: torch.Tensor, context: torch.Tensor, timesteps: torch.Tensor,
                attn_bias: torch.Tensor | None = None,
                context_kv: list[tuple[torch.Tensor, torch.Tensor] | None] | None = None) -> torch.Tensor:
        """x: [B, N, D]; context: [B, L, D_vl]; timesteps: int64 [B]; attn_bias: [B, 1, L] or None;
        context_kv: :meth:`context_kv` of ``context`` or None (computed inside). Returns [B, N, output_dim]."""
        temb = self.timestep_encoder(timesteps)  # [B, D]
        for i, block in enumerate(self.transformer_blocks):
            if self.is_self_block(i):
                x = block(x, temb)
            else:
                kv = context_kv[i] if context_kv is not None else None
                x = block(x, temb, context, attn_bias, kv)
        shift, scale = self.proj_out_1(F.silu(temb)).chunk(2, dim=1)  # [B, 2D] -> 2 x [B, D]
        x = self.norm_out(x) * (1 + scale[:, None]) + shift[:, None]
        return self.proj_out_2(x)


class SelfAttentionTransformer(nn.Module):
    """Plain pre-LN self-attention stack over the VL tokens (``vl_self_attention``)."""

    def __init__(self, cfg: VLSelfAttentionConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(cfg.inner_dim, cfg.num_attention_heads, cfg.attention_head_dim, dropout=cfg.dropout,
                             final_dropout=cfg.final_dropout, cross_attention_dim=None, ada_norm=False,
                             attention_bias=cfg.attention_bias, activation_fn=cfg.activation_fn,
                             attn_implementation=attn_implementation)
            for _ in range(cfg.num_layers))

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, L, D]; attn_bias: [B, 1, L] or None. Returns [B, L, D]."""
        for block in self.transformer_blocks:
            x = block(x, attn_bias=attn_bias)
        return x


@dataclass
class ActionContext:
    """Everything the denoising steps reuse: computed once per observation by ``prepare_context``.

    vl_tokens: [B, L, D_vl] after vlln + vl_self_attention.
    vl_attn_bias: additive float [B, 1, L] (0 = valid, dtype-min = padding) or None (no masking).
    state_features: [B, 1, D] encoded state.
    embodiment_id: int64 [B].
    cross_kv: per DiT block, the cross-attention (key, value) [B, L, H*d] of ``vl_tokens`` (None
        for self-attention blocks), or None to let the DiT project them at every step.
    """

    vl_tokens: torch.Tensor
    vl_attn_bias: torch.Tensor | None
    state_features: torch.Tensor
    embodiment_id: torch.Tensor
    cross_kv: list[tuple[torch.Tensor, torch.Tensor] | None] | None = None

    @property
    def batch_size(self) -> int:
        """B."""
        return self.vl_tokens.shape[0]

    def detach(self) -> "ActionContext":
        """A copy whose tensors are detached from the autograd graph."""
        bias = None if self.vl_attn_bias is None else self.vl_attn_bias.detach()
        kv = None if self.cross_kv is None else [
            None if pair is None else (pair[0].detach(), pair[1].detach()) for pair in self.cross_kv]
        return ActionContext(self.vl_tokens.detach(), bias, self.state_features.detach(), self.embodiment_id, kv)


class FlowMatchingActionHead(nn.Module):
    """GR00T N1.5 action head: ``prepare_context`` once, then ``velocity`` per denoising step."""

    def __init__(self, cfg: ActionHeadConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        self.cfg = cfg
        d_in = cfg.input_embedding_dim
        self.model = DiT(cfg.diffusion_model_cfg, attn_implementation)
        self.state_encoder = CategorySpecificMLP(cfg.max_num_embodiments, cfg.max_state_dim, cfg.hidden_size, d_in)
        self.action_encoder = MultiEmbodimentActionEncoder(cfg.action_dim, d_in, cfg.max_num_embodiments)
        self.action_decoder = CategorySpecificMLP(cfg.max_num_embodiments, cfg.hidden_size, cfg.hidden_size,
                                                  cfg.action_dim)
        self.future_tokens = nn.Embedding(cfg.num_target_vision_tokens, d_in)
        nn.init.normal_(self.future_tokens.weight, std=0.02)
        self.vlln = nn.LayerNorm(cfg.backbone_embedding_dim) if cfg.use_vlln else nn.Identity()
        self.vl_self_attention = (SelfAttentionTransformer(cfg.vl_self_attention_cfg, attn_implementation)
                                  if cfg.use_vlln else nn.Identity())
        if cfg.add_pos_embed:
            self.position_embedding = nn.Embedding(cfg.max_seq_len, d_in)
            nn.init.normal_(self.position_embedding.weight, std=0.02)

    # ------------------------------------------------------------------ context
    def prepare_context(self, features: torch.Tensor, mask: torch.Tensor, state: torch.Tensor,
                        embodiment_id: torch.Tensor) -> ActionContext:
        """Encode what stays fixed over the denoising steps.

        features: [B, L, D_vl] backbone features; mask: bool [B, L] (True = valid token);
        state: [B, 1, S] normalised, zero-padded state (S = 64); embodiment_id: int64 [B] in
        [0, max_num_embodiments). Returns an :class:`ActionContext`.
        """
        self._check_embodiment(embodiment_id)
        if state.dim() != 3 or state.shape[-1] != self.cfg.max_state_dim:
            raise ValueError(f"state must be [B, N, {self.cfg.max_state_dim}] (padded to "
                             f"action_head_cfg.max_state_dim), got {tuple(state.shape)}")
        bias = None
        if self.cfg.mask_vl_tokens:
            keep = mask.to(torch.bool)[:, None, :]  # [B, L] -> [B, 1, L]
            bias = torch.zeros(keep.shape, dtype=features.dtype, device=features.device)
            bias = bias.masked_fill(~keep, torch.finfo(features.dtype).min)
        vl = self.vlln(features)
        vl = self.vl_self_attention(vl, bias) if self.cfg.use_vlln else vl
        state_features = self.state_encoder(state.to(vl.dtype), embodiment_id)  # [B, 1, D]
        return ActionContext(vl, bias, state_features, embodiment_id, self.model.context_kv(vl))

    def _check_embodiment(self, embodiment_id: torch.Tensor) -> None:
        n = self.cfg.max_num_embodiments
        if embodiment_id.dtype != torch.int64 or embodiment_id.dim() != 1:
            raise ValueError(f"embodiment_id must be int64 [B], got {embodiment_id.dtype} {tuple(embodiment_id.shape)}")
        if is_capturing():  # value checks read the tensor on the host; done in the eager warm-up
            return
        if embodiment_id.numel() and (int(embodiment_id.min()) < 0 or int(embodiment_id.max()) >= n):
            raise ValueError(f"embodiment_id values must lie in [0, action_head_cfg.max_num_embodiments={n}), "
                             f"got {embodiment_id.tolist()}")

    # ------------------------------------------------------------------ velocity
    def discretize_time(self, t: torch.Tensor) -> torch.Tensor:
        """t: float [B] in [0, 1] -> int64 [B] bucket = floor(t * num_timestep_buckets)."""
        return (t * self.cfg.num_timestep_buckets).long()

    def velocity(self, ctx: ActionContext, noisy_actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted velocity v(x_t, t).

        noisy_actions: [B, C, A] (C = action_horizon, A = 32); t: float [B] in [0, 1] (0 = noise).
        Returns [B, C, A].
        """
        b, c, _ = noisy_actions.shape
        buckets = self.discretize_time(t.reshape(b))
        dtype = ctx.vl_tokens.dtype
        action_tokens = self.action_encoder(noisy_actions.to(dtype), buckets, ctx.embodiment_id)  # [B, C, D]
        if self.cfg.add_pos_embed:
            action_tokens = action_tokens + self.position_embedding.weight[:c].unsqueeze(0)  # [1, C, D]
        future = self.future_tokens.weight.unsqueeze(0).expand(b, -1, -1)  # [B, F, D]
        tokens = torch.cat([ctx.state_features, future, action_tokens], dim=1)  # [B, 1 + F + C, D]
        out = self.model(tokens, ctx.vl_tokens, buckets, ctx.vl_attn_bias, ctx.cross_kv)  # [B, 1 + F + C, hidden]
        return self.action_decoder(out, ctx.embodiment_id)[:, -c:]  # [B, C, A]

    # ------------------------------------------------------------------ sampling / loss
    def sample(self, ctx: ActionContext, num_steps: int | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """Euler ODE from noise (t = 0) to actions (t = 1). noise: [B, C, A] or None (standard normal).

        Returns [B, C, A]. With K = ``num_steps`` (default ``num_inference_timesteps``):
        x_{k+1} = x_k + (1/K) * v(x_k, k/K).
        """
        k_steps = num_steps or self.cfg.num_inference_timesteps
        b, cfg = ctx.batch_size, self.cfg
        x = noise if noise is not None else torch.randn(
            b, cfg.action_horizon, cfg.action_dim, device=ctx.vl_tokens.device, dtype=ctx.vl_tokens.dtype)
        dt = 1.0 / k_steps
        for k in range(k_steps):
            t = torch.full((b,), k / k_steps, device=x.device, dtype=torch.float32)
            x = x + dt * self.velocity(ctx, x, t)  # x_{k+1} = x_k + dt * v(x_k, t_k)
        return x

    def sample_time(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Training times float32 [B]: t = (s - u) / s, u ~ Beta(alpha, beta)."""
        beta = torch.distributions.Beta(torch.tensor(self.cfg.noise_beta_alpha, device=device),
                                        torch.tensor(self.cfg.noise_beta_beta, device=device))
        u = beta.sample((batch_size,))
        return (self.cfg.noise_s - u) / self.cfg.noise_s  # t = (s - u) / s

    def flow_matching_loss(self, ctx: ActionContext, actions: torch.Tensor, action_mask: torch.Tensor,
                           t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Masked flow-matching MSE (scalar).

        actions: [B, C, A] normalised, padded; action_mask: bool/float [B, C, A]; t: float [B]
        (default: Beta sampling); noise: [B, C, A] (default: standard normal).
        loss = sum(mask * (v_pred - (x_1 - x_0))^2) / sum(mask).
        """
        b = actions.shape[0]
        t = self.sample_time(b, actions.device) if t is None else t
        noise = torch.randn_like(actions) if noise is None else noise
        tt = t.to(actions.dtype)[:, None, None]  # [B] -> [B, 1, 1]
        x_t = (1 - tt) * noise + tt * actions  # x_t = (1 - t) x_0 + t x_1
        target = actions - noise  # v = x_1 - x_0
        pred = self.velocity(ctx, x_t, t)
        mask = action_mask.to(pred.dtype)
        return ((pred.float() - target.float()) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)
