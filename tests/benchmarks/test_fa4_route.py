"""benchmarks/fa4_route.py: FlashAttention 4 in place of SDPA for the calls it can run. On the CPU a
reference ``attend`` in FlashAttention's [B, L, H, d] layout stands in for the GPU kernel, so the
route's own work (which calls go where, the layout, scale, causal and grouped heads) is what the
tests check."""

import sys
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
from fa4_route import BACKWARD_CHECKED_HEAD_DIMS, Fa4Route, load_fa4  # noqa: E402

SDPA = F.scaled_dot_product_attention


def reference_attend(q, k, v, softmax_scale=None, causal=False):
    """softmax(q k^T * scale [+ causal mask]) v on [B, L, H, d], grouped heads by repetition;
    returns (out, lse) as flash_attn_func does (lse unused here)."""
    rep = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
    scale = q.shape[-1] ** -0.5 if softmax_scale is None else softmax_scale
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if causal:
        scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v), None


def cpu_route(**kw):
    return Fa4Route(reference_attend, devices=("cpu",), dtypes=(torch.float32,), **kw)


def test_routed_calls_equal_sdpa_layout_scale_causal_and_grouped_heads():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 5, 8, generator=g)  # [B, H, L, d]
    k, v = torch.randn(2, 4, 7, 8, generator=g), torch.randn(2, 4, 7, 8, generator=g)
    route = cpu_route()
    with route.installed():
        plain = F.scaled_dot_product_attention(q, k, v)
        scaled = F.scaled_dot_product_attention(q, k, v, scale=0.3)
        causal = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        kg, vg = k[:, :2], v[:, :2]  # 2 key/value heads for 4 query heads
        grouped = F.scaled_dot_product_attention(q, kg, vg, enable_gqa=True)
    assert F.scaled_dot_product_attention is SDPA  # restored
    assert route.calls == {"fa4": 4}
    torch.testing.assert_close(plain, SDPA(q, k, v))
    torch.testing.assert_close(scaled, SDPA(q, k, v, scale=0.3))
    torch.testing.assert_close(causal, SDPA(q, q, q, is_causal=True))
    torch.testing.assert_close(grouped, SDPA(q, kg, vg, enable_gqa=True))


def test_calls_fa4_cannot_run_go_to_sdpa_with_the_reason():
    q = torch.randn(1, 2, 3, 8)
    kv = torch.randn(1, 2, 4, 8)
    mask = torch.zeros(1, 1, 3, 4)
    route = cpu_route()
    with route.installed():
        masked = F.scaled_dot_product_attention(q, kv, kv, attn_mask=mask)
        F.scaled_dot_product_attention(q, kv, kv, is_causal=True)  # Lq != Lk: the masks align differently
        F.scaled_dot_product_attention(q.double(), kv.double(), kv.double())
        F.scaled_dot_product_attention(q[..., :6], kv[..., :6], kv[..., :6])
    torch.testing.assert_close(masked, SDPA(q, kv, kv, attn_mask=mask))
    assert route.calls == {"sdpa: mask": 1, "sdpa: causal, Lq != Lk": 1, "sdpa: cpu float64": 1, "sdpa: head dim 6": 1}
    assert Fa4Route(reference_attend).why_not(q, kv, kv, None, 0.0, False, False) == "cpu float32"  # GPU only by default


def test_gradients_go_through_fa4_only_at_head_dims_whose_backward_was_checked():
    """At a head dim outside the checked list a call that needs gradients goes to SDPA; the same
    call without gradients (no_grad, or inputs that need none: a frozen backbone) runs FA4."""
    route = cpu_route(backward_head_dims=(16,))
    q8 = torch.randn(1, 2, 3, 8, requires_grad=True)
    q16 = torch.randn(1, 2, 3, 16, requires_grad=True)
    with route.installed():
        out = F.scaled_dot_product_attention(q8, q8, q8)
        F.scaled_dot_product_attention(q16, q16, q16)
        F.scaled_dot_product_attention(q8.detach(), q8.detach(), q8.detach())
        with torch.no_grad():
            F.scaled_dot_product_attention(q8, q8, q8)
    assert route.calls == {"sdpa: backward at head dim 8": 1, "fa4": 3}
    (grad,) = torch.autograd.grad(out.sum(), q8)
    torch.testing.assert_close(grad, torch.autograd.grad(SDPA(q8, q8, q8).sum(), q8)[0])
    assert cpu_route(backward_head_dims=None).why_not(q8, q8, q8, None, 0.0, False, False) is None
    assert 72 not in BACKWARD_CHECKED_HEAD_DIMS and Fa4Route(reference_attend).backward_head_dims == BACKWARD_CHECKED_HEAD_DIMS


def test_a_shape_fa4_raises_on_goes_to_sdpa_from_then_on():
    tried = []

    def picky(q, k, v, softmax_scale=None, causal=False):
        tried.append(q.shape)
        if q.shape[-1] == 16:
            raise AssertionError("head_dim 16 is not supported on SM90")
        return reference_attend(q, k, v, softmax_scale, causal)

    route = Fa4Route(picky, devices=("cpu",), dtypes=(torch.float32,))
    q16, q8 = torch.randn(1, 2, 3, 16), torch.randn(1, 2, 3, 8)
    with route.installed():
        out = [F.scaled_dot_product_attention(q16, q16, q16, is_causal=True) for _ in range(3)]
        F.scaled_dot_product_attention(q8, q8, q8)
    assert len(tried) == 2  # the refused shape is not tried again
    assert route.calls == {"sdpa: FA4 refused the shape": 3, "fa4": 1}
    assert list(route.refused.values()) == ["AssertionError: head_dim 16 is not supported on SM90"]
    torch.testing.assert_close(out[2], SDPA(q16, q16, q16, is_causal=True))


def test_the_route_is_undone_when_the_block_raises():
    with pytest.raises(ValueError), cpu_route().installed():
        raise ValueError("inside")
    assert F.scaled_dot_product_attention is SDPA


def test_missing_package_is_named():
    try:
        import flash_attn.cute  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install flash-attn-4"):
            load_fa4()
    else:
        pytest.skip("FlashAttention 4 is installed")


def test_attention_backends_fa4_order_runs_the_policy_through_the_route(monkeypatch):
    """The fa4 order on the tiny policy (CPU, the reference attend): same actions and loss as
    PyTorch's own kernels, and the calls FA4 ran are counted."""
    import attention_backends

    monkeypatch.setattr(attention_backends, "load_fa4", lambda: reference_attend)
    monkeypatch.setattr(attention_backends, "Fa4Route", partial(Fa4Route, devices=("cpu",), dtypes=(torch.float32,),
                                                                backward_head_dims=None))
    r = attention_backends.main(["--config", "gr00t_tiny", "--device", "cpu", "--dtype", "fp32", "--batch-sizes", "2",
                                 "--image-size", "56", "--steps", "1", "--warmup", "0", "--orders", "fa4"])
    row = r["rows"]["2"]["fa4"]
    assert row["arm_max_abs_diff"] < 1e-4 and row["gripper_flip_share"] == 0.0 and row["loss_abs_diff"] < 1e-4
    assert row["rollout_calls"]["fa4"] > 0 and row["train_calls"]["fa4"] > 0
    assert attention_backends.fa4_share(row["rollout_calls"]) > 0
    assert attention_backends.fa4_share({"fa4": 1, "sdpa: mask": 3}) == 0.25


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


@pytest.mark.gpu
def test_fa4_on_the_gpu_matches_sdpa_forward_and_backward():
    """The real kernel through the route, bf16: at every head dim of the checked list (the
    policy's DiT 48, VL self-attention 64, language model 128 with grouped heads and causal) the
    output and the gradients of q, k, v match SDPA's within bf16 rounding (relative error 1e-2;
    measured <= 4e-3). At SigLIP's 72 the forward runs FA4 and matches, and a call that needs
    gradients goes to SDPA (FA4's dQ is wrong there)."""
    pytest.importorskip("flash_attn.cute", reason="FlashAttention 4 is not installed (pip install .[fa4])")
    g = torch.Generator("cuda").manual_seed(0)

    def inputs(heads, kv_heads, length, dim):
        return [torch.randn(4, h, length, dim, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
                for h in (heads, kv_heads, kv_heads)]

    cases = [(32, 32, 49, 48, False), (32, 32, 300, 64, False), (16, 16, 256, 96, False), (16, 8, 300, 128, True)]
    assert sorted({case[3] for case in cases}) == sorted(BACKWARD_CHECKED_HEAD_DIMS)
    for heads, kv_heads, length, dim, causal in cases:
        q, k, v = inputs(heads, kv_heads, length, dim)
        route = Fa4Route(load_fa4())
        with route.installed():
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=kv_heads != heads)
        assert route.calls == {"fa4": 1}, (route.calls, route.refused)
        ref = SDPA(q, k, v, is_causal=causal, enable_gqa=kv_heads != heads)
        grads = torch.autograd.grad(out.float().square().sum(), (q, k, v))
        ref_grads = torch.autograd.grad(ref.float().square().sum(), (q, k, v))
        assert _relative_error(out, ref) < 1e-2, dim
        for name, got, want in zip("qkv", grads, ref_grads):
            assert _relative_error(got, want) < 1e-2, (dim, name, _relative_error(got, want))
    q, k, v = inputs(16, 16, 256, 72)
    route = Fa4Route(load_fa4())
    with route.installed():
        with torch.no_grad():
            fwd = F.scaled_dot_product_attention(q, k, v)
        F.scaled_dot_product_attention(q, k, v)
    assert route.calls == {"fa4": 1, "sdpa: backward at head dim 72": 1}, route.calls
    assert _relative_error(fwd, SDPA(q, k, v)) < 1e-2
