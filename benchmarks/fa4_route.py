"""FlashAttention 4 under the policy's attention calls, for measuring it against PyTorch's SDPA.

Every attention call of the GR00T policy goes through
``torch.nn.functional.scaled_dot_product_attention`` (Hugging Face's SDPA path for SigLIP and
Qwen3, diffusers' ``AttnProcessor2_0`` and the cached cross-attention for the DiT and the VL
self-attention). :class:`Fa4Route` stands in for that function while installed: a call that
FlashAttention 4's ``flash_attn.cute.flash_attn_func`` can run (CUDA, bf16 or fp16, no mask, no
dropout, head dim a multiple of 8 up to 256, grouped heads only where SDPA would take them; a
call that needs gradients only at a head dim whose backward was checked) goes to it, transposed
from SDPA's [B, H, L, d] to its [B, L, H, d]; every other call goes to SDPA as before. It
counts both, with the reason for each call left to SDPA, so a measurement says how much of the
attention FA4 actually ran. Install the package (``pip install flash-attn-4``, with
its ``nvidia-cutlass-dsl`` kernels) on the GPU machine; without it :func:`load_fa4` says so.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

# attend(q, k, v, softmax_scale=None, causal=False) on [B, L, H, d] -> out or (out, lse)
Attend = Callable[..., Any]

# Head dims whose FA4 gradients matched SDPA's on an H200 (flash-attn-4 4.0.0b36, bf16; relative
# error of dQ, dK, dV <= 4e-3). At 72 (SigLIP's) and 80 its Hopper backward returns a wrong dQ
# (relative error ~1.1) while its forward and dK, dV are right, so a call that needs gradients at
# any other head dim goes to SDPA. tests/benchmarks/test_fa4_route.py checks each on the GPU.
BACKWARD_CHECKED_HEAD_DIMS = (48, 64, 96, 128)


def load_fa4() -> Attend:
    """FlashAttention 4's ``flash_attn_func``, or a RuntimeError naming the package to install."""
    try:
        from flash_attn.cute import flash_attn_func
    except ImportError as err:
        raise RuntimeError(f"FlashAttention 4 is not installed ({err}): pip install flash-attn-4") from err
    return flash_attn_func


def error_line(err: BaseException) -> str:
    """``Type: first line of the message`` (the type alone when the message is empty)."""
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd will ask this call for gradients."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


@dataclass
class Fa4Route:
    """SDPA's signature; FA4 (``attend``) for the calls it can run, SDPA for the rest.

    ``calls`` counts ``"fa4"`` and, per reason, ``"sdpa: <reason>"``; a call shape FA4 raised
    on goes to SDPA from then on, its error kept in ``refused``."""

    attend: Attend
    devices: tuple[str, ...] = ("cuda",)
    dtypes: tuple[torch.dtype, ...] = (torch.bfloat16, torch.float16)
    calls: Counter = field(default_factory=Counter)
    sdpa: Callable[..., torch.Tensor] = field(default=F.scaled_dot_product_attention, repr=False)  # the fallback
    refused: dict[tuple, str] = field(default_factory=dict)  # call shapes FA4 raised on -> the error
    backward_head_dims: tuple[int, ...] | None = BACKWARD_CHECKED_HEAD_DIMS  # None: any head dim

    def why_not(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: Any, dropout_p: float,
                is_causal: bool, enable_gqa: bool) -> str | None:
        """Why FA4 cannot run this call (None: it can). q: [B, H, Lq, d]; k, v: [B, Hkv, Lk, d]."""
        if q.dim() != 4:
            return "not 4-D"
        if q.device.type not in self.devices or q.dtype not in self.dtypes:
            return f"{q.device.type} {str(q.dtype).removeprefix('torch.')}"
        if attn_mask is not None:
            return "mask"
        if dropout_p:
            return "dropout"
        d = q.shape[-1]
        if d % 8 or d > 256 or v.shape[-1] != d:
            return f"head dim {d}"
        if self.backward_head_dims is not None and d not in self.backward_head_dims and needs_grad(q, k, v):
            return f"backward at head dim {d}"
        if q.shape[1] != k.shape[1] and not (enable_gqa and q.shape[1] % k.shape[1] == 0):
            return "heads"  # SDPA refuses these too; let it say so
        if is_causal and q.shape[2] != k.shape[2]:
            return "causal, Lq != Lk"  # SDPA aligns the mask top-left, FlashAttention bottom-right
        return None

    def __call__(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: Any = None,
                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                 enable_gqa: bool = False) -> torch.Tensor:
        shape = (tuple(query.shape), tuple(key.shape), is_causal)
        reason = self.why_not(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa)
        if reason is None and shape in self.refused:
            reason = "FA4 refused the shape"
        if reason is None:
            try:
                out = self.attend(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                  softmax_scale=scale, causal=is_causal)
            except Exception as err:  # e.g. a head dim this GPU's kernels lack: SDPA takes that shape
                self.refused[shape], reason = error_line(err), "FA4 refused the shape"
            else:
                self.calls["fa4"] += 1
                out = out[0] if isinstance(out, tuple) else out  # (out [B, L, H, d], lse)
                return out.transpose(1, 2)  # -> [B, H, L, d]
        self.calls[f"sdpa: {reason}"] += 1
        return self.sdpa(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                         scale=scale, enable_gqa=enable_gqa)

    @contextmanager
    def installed(self) -> Iterator[Fa4Route]:
        """``F.scaled_dot_product_attention`` is this route inside the block (the callers look the
        function up at call time), the original again after it."""
        self.sdpa = F.scaled_dot_product_attention
        F.scaled_dot_product_attention = self
        try:
            yield self
        finally:
            F.scaled_dot_product_attention = self.sdpa
