"""Critic for PPO: value from pooled vision-language features and the robot state.

``V = MLP([masked_mean(features); state])``: the VL tokens are averaged over valid
positions only (padding masked out, so padded positions never change the value) and
concatenated with the (normalised, padded) state. Output: one value per chunk ``[B]`` or
one per action step ``[B, C]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["ValueHeadConfig", "ValueHead", "masked_mean_pool"]

_GRANULARITIES = ("chunk", "action")


@dataclass
class ValueHeadConfig:
    """Value head sizes. ``granularity`` ``chunk`` -> [B], ``action`` -> [B, num_actions]."""

    vl_dim: int
    state_dim: int = 64
    hidden_dim: int = 256
    num_layers: int = 2
    granularity: str = "chunk"
    num_actions: int = 16

    def __post_init__(self) -> None:
        for key in ("vl_dim", "state_dim", "hidden_dim", "num_layers", "num_actions"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"value_head.{key} must be a positive int, got {value!r}")
        if self.granularity not in _GRANULARITIES:
            raise ValueError(
                f"value_head.granularity must be one of {_GRANULARITIES}, got {self.granularity!r}"
            )


def masked_mean_pool(features: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid tokens. features float [B, L, D], mask bool [B, L] -> [B, D].

    Padded positions are replaced by 0 before summing, so even NaN/inf there is ignored;
    rows without any valid token pool to 0.
    """
    valid = mask.to(torch.bool)[..., None]  # [B, L] -> [B, L, 1]
    summed = torch.where(valid, features, torch.zeros_like(features)).sum(dim=1)  # [B, D]
    count = valid.sum(dim=1).clamp(min=1).to(summed.dtype)  # [B, 1]
    return summed / count  # mean = sum_valid(f) / n_valid


class ValueHead(nn.Module):
    """MLP critic on ``[LayerNorm(pool(features)); state]``."""

    def __init__(self, cfg: ValueHeadConfig):
        super().__init__()
        self.cfg = cfg
        self.vl_norm = nn.LayerNorm(cfg.vl_dim)
        layers: list[nn.Module] = []
        width = cfg.vl_dim + cfg.state_dim
        for _ in range(cfg.num_layers):
            layers += [nn.Linear(width, cfg.hidden_dim), nn.GELU()]
            width = cfg.hidden_dim
        out = cfg.num_actions if cfg.granularity == "action" else 1
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(width, out)
        nn.init.normal_(self.out.weight, std=0.01)  # start near V = 0
        nn.init.zeros_(self.out.bias)

    def forward(self, features: Tensor, mask: Tensor, state: Tensor) -> Tensor:
        """features float [B, L, D], mask bool [B, L], state float [B, S] or [B, 1, S].

        Returns float32 [B] (chunk) or [B, C] (action).
        """
        state = state.reshape(state.shape[0], -1)  # [B, 1, S] -> [B, S]
        if state.shape[1] != self.cfg.state_dim:
            raise ValueError(
                f"value head expects state of dim value_head.state_dim={self.cfg.state_dim}, "
                f"got {state.shape[1]}"
            )
        dtype = self.out.weight.dtype
        pooled = self.vl_norm(masked_mean_pool(features.to(dtype), mask))  # [B, D]
        hidden = self.mlp(torch.cat([pooled, state.to(dtype)], dim=-1))  # [B, D + S] -> [B, hidden]
        values = self.out(hidden).float()  # [B, 1] or [B, C]
        return values.squeeze(-1) if self.cfg.granularity == "chunk" else values
