"""The frozen backbone's linear layers in FP8 (``actor.model.backbone_fp8``).

Each ``nn.Linear`` of the SigLIP tower and the language model whose sizes FP8 matrix products
take (both multiples of 16) becomes an :class:`Fp8Linear`: weights quantised per output channel
to ``float8_e4m3fn``, activations per row (token) at every call, the product by
``torch._scaled_mm`` (FP8 tensor cores on Hopper; a reference kernel on the CPU) with both
scales applied to its float32 accumulator and the result rounded to bfloat16. The layer keeps
its ``weight`` and ``bias`` parameters under their names, so checkpoints, weight sync and
``state_dict`` are unchanged. The FP8 copy of the weight lives in two non-persistent buffers,
re-made whenever the weight changes (loaded, synced, moved): an eager call checks the weight
itself; inside ``torch.compile`` or a CUDA graph nothing runs Python per call, so the caller
refreshes first (:func:`refresh_fp8`, as ``GR00TPolicy.predict`` does). The refresh writes into
the same buffers, so compiled code and captured graphs read the new values.

Only rollouts run the backbone when ``reuse_backbone_features`` is on: the update trains on the
features the rollout stored, so the PPO ratio stays exactly 1 however far FP8 moves them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FP8_DTYPE", "FP8_MAX", "Fp8Linear", "quantize_rows", "fp8_linears", "fp8_matmul", "refresh_fp8"]

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
ALIGN = 16  # FP8 matrix products need every dimension a multiple of 16 on the GPU


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row absmax scaling: ``x`` [M, K] -> (``q`` [M, K] float8_e4m3fn, ``scale`` [M, 1]
    float32) with ``x ~ q * scale`` and each row's largest magnitude at 448. A zero row gets a
    tiny scale (its ``q`` is zero)."""
    x32 = x.float()
    scale = x32.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / FP8_MAX
    q = (x32 / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return q, scale


def fp8_matmul(x: torch.Tensor, wq: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """``x`` [M, K] (float) @ W.T in FP8, W ~ ``wq`` [N, K] * ``w_scale`` [N, 1]; -> [M, N] bfloat16
    (the only output type of the GPU's row-wise scaled kernel).

    ``x`` is quantised per row; M is padded to a multiple of 16 with zero rows for the GPU
    kernel and the padding dropped again."""
    m = x.shape[0]
    pad = -m % ALIGN
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
    xq, x_scale = quantize_rows(x)
    out = torch._scaled_mm(xq, wq.t(), scale_a=x_scale, scale_b=w_scale.t().contiguous(),
                           out_dtype=torch.bfloat16)
    return out[:m]


class Fp8Linear(nn.Module):
    """An ``nn.Linear`` that multiplies in FP8 at inference (see the module docstring).

    It takes over the linear's ``weight`` [N, K] and ``bias`` [N] parameters and keeps the FP8
    copy in the buffers ``weight_fp8`` [N, K] float8_e4m3fn and ``weight_scale`` [N, 1] float32
    (not in the state dict). With gradients wanted (an input or the weight requiring grad) it
    falls back to the plain float product: ``_scaled_mm`` has no backward."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self._fp8_key: tuple | None = None
        self.register_buffer("weight_fp8", torch.empty(0, dtype=FP8_DTYPE), persistent=False)
        self.register_buffer("weight_scale", torch.empty(0), persistent=False)
        self.refresh()

    def refresh(self) -> None:
        """Re-make the FP8 copy if the weight's storage, device or in-place version changed, or
        the buffers were cast away from their types (``module.to(dtype)``). In place when the
        buffers still fit, so that compiled code and CUDA graphs see the new values."""
        w = self.weight
        key = (w.data_ptr(), w.device, w._version)
        fits = (self.weight_fp8.shape == w.shape and self.weight_fp8.dtype == FP8_DTYPE
                and self.weight_fp8.device == w.device and self.weight_scale.dtype == torch.float32)
        if fits and key == self._fp8_key:
            return
        with torch.no_grad():
            q, scale = quantize_rows(w)
            if fits:
                self.weight_fp8.copy_(q)
                self.weight_scale.copy_(scale)
            else:
                self.weight_fp8, self.weight_scale = q, scale
        self._fp8_key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [..., K] -> [..., N] in ``x``'s dtype."""
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return F.linear(x, self.weight, self.bias)
        if not torch.compiler.is_compiling():
            self.refresh()
        out = fp8_matmul(x.reshape(-1, self.in_features), self.weight_fp8, self.weight_scale).float()
        if self.bias is not None:
            out = out + self.bias.float()
        return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def refresh_fp8(layers: list[Fp8Linear]) -> None:
    """:meth:`Fp8Linear.refresh` of each layer: before calls that compiled code or a CUDA graph
    runs, where the layers cannot check their weights themselves."""
    for layer in layers:
        layer.refresh()


def fp8_linears(module: nn.Module) -> tuple[int, int]:
    """Replace, in place, every ``nn.Linear`` under ``module`` whose sizes are multiples of 16
    by an :class:`Fp8Linear`; -> (converted, left in float)."""
    converted = kept = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            if child.in_features % ALIGN == 0 and child.out_features % ALIGN == 0:
                setattr(module, name, Fp8Linear(child))
                converted += 1
            else:
                kept += 1
        else:
            c, k = fp8_linears(child)
            converted, kept = converted + c, kept + k
    return converted, kept
