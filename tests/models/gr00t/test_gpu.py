"""GR00T policy on a CUDA GPU (``@pytest.mark.gpu``, skipped without one) + the throughput script's contract.

GPU tests: the full 2.4 B model in bf16 gives finite actions of the right shape; log-prob
recomputation on the GPU gives PPO ratio exactly 1 before an update (tiny model, Flow-SDE and
Flow-Noise); the tiny model in bf16 agrees with fp32 within the bf16 tolerance stated below.
The one CPU test runs ``benchmarks/policy_throughput.py`` on the tiny model and checks its
result arithmetic.
"""

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

from rlinf_isaac.models.gr00t.config import load_config
from rlinf_isaac.models.gr00t.modeling import build_model
from rlinf_isaac.models.gr00t.policy import GR00TPolicy, GR00TPolicyConfig

B = 4
_ROOT = Path(__file__).resolve().parents[3]


def _processed_inputs(cfg, batch: int, device: str, text_tokens: int = 24, pad: int = 40, seed: int = 0) -> dict:
    """Backbone inputs laid out like the processor's: per row V=2 blocks of ``image_tokens_per_view``
    image-context ids, ``text_tokens`` text ids, then ``pad`` padding positions (mask 0).

    pixel_values float32 [B, 2, 3, S, S] in [-1, 1]; input_ids / attention_mask int64 [B, L];
    state float32 [B, 1, 64]; embodiment_id int64 [B] (slot 31, ``new_embodiment``)."""
    g = torch.Generator().manual_seed(seed)
    bb, s = cfg.backbone_cfg, cfg.backbone_cfg.vision.image_size
    n_img = 2 * bb.image_tokens_per_view
    text = torch.randint(10, 1000, (batch, text_tokens), generator=g)  # below both models' special ids
    ids = torch.cat([torch.full((batch, n_img), bb.image_token_index), text,
                     torch.full((batch, pad), bb.pad_token_id)], dim=1)  # [B, L]
    mask = torch.cat([torch.ones(batch, n_img + text_tokens), torch.zeros(batch, pad)], dim=1).long()
    state = torch.zeros(batch, 1, cfg.action_head_cfg.max_state_dim)
    state[:, 0, :8] = torch.rand(batch, 8, generator=g) * 2 - 1
    out = {"pixel_values": torch.rand(batch, 2, 3, s, s, generator=g) * 2 - 1, "input_ids": ids,
           "attention_mask": mask, "state": state, "embodiment_id": torch.full((batch,), 31, dtype=torch.int64)}
    return {k: v.to(device) for k, v in out.items()}


@pytest.mark.gpu
def test_full_model_bf16_forward_on_cuda_gives_finite_actions():
    cfg = load_config("gr00t_n1_5")
    model = build_model(cfg, device="cuda", dtype=torch.bfloat16)
    model.eval_dropout()
    assert model.num_parameters() == 2_398_284_528  # the full GR00T N1.5 as built
    inputs = _processed_inputs(cfg, B, "cuda")
    with torch.no_grad():
        features, mask = model.backbone(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        noise = torch.randn(B, 16, 32, device="cuda", dtype=torch.bfloat16)
        actions = model.get_action(**inputs, noise=noise)
    length = 2 * 256 + 24 + 40  # two views x 256 image tokens + text + padding
    assert features.shape == (B, length, 2048) and features.dtype == torch.bfloat16
    assert mask.sum(dim=1).tolist() == [2 * 256 + 24] * B
    assert actions.shape == (B, 16, 32) and actions.dtype == torch.bfloat16
    assert torch.isfinite(actions).all() and torch.isfinite(features).all()
    assert not torch.equal(actions, noise)  # 4 Euler steps moved x_0


def _obs(batch: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"main_images": torch.randint(0, 256, (batch, 84, 84, 3), generator=g, dtype=torch.uint8),
            "wrist_images": torch.randint(0, 256, (batch, 84, 84, 3), generator=g, dtype=torch.uint8),
            "states": torch.rand(batch, 8, generator=g) * 2 - 1,
            "task_descriptions": ["Stack the red cube on the blue cube."] * batch}


@pytest.mark.gpu
@pytest.mark.parametrize("granularity", ["chunk", "action"])
@pytest.mark.parametrize("method", ["flow_sde", "flow_noise"])
def test_logprob_recomputation_on_cuda_gives_ratio_exactly_one(method, granularity):
    cfg = GR00TPolicyConfig(noise_method=method, num_action_chunks=8, value_hidden_dim=32, noise_hidden_dim=16,
                            tune_projector=True)
    policy = GR00TPolicy.from_config("gr00t_tiny", cfg, seed=0, logprob_granularity=granularity,
                                     value_granularity=granularity).to("cuda")
    gen = torch.Generator(device="cuda").manual_seed(3)
    _, extras = policy.predict(_obs(B, 1), mode="train", generator=gen)
    assert extras["chain"].is_cuda and extras["chain"].shape == (B, 5, 16, 32)  # [B, K+1, C_h, A_pad]
    out = policy.evaluate(extras)
    ratio = torch.exp(out["logprobs"] - extras["prev_logprobs"])
    assert ratio.shape == ((B,) if granularity == "chunk" else (B, 8))
    assert torch.equal(ratio, torch.ones_like(ratio))  # exactly 1 before any update
    assert torch.equal(out["values"], extras["prev_values"])
    out["logprobs"].sum().backward()
    grad = policy.model.action_head.model.proj_out_2.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def _rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    """||x - ref|| / ||ref|| in float32 (Frobenius)."""
    return float((x.float() - ref.float()).norm() / ref.float().norm())


@pytest.mark.gpu
def test_tiny_bf16_matches_fp32_within_tolerance():
    """bf16 keeps 8 mantissa bits (unit roundoff 2^-9 ~ 2e-3 per rounding); through the tiny
    model's ~10 sequential blocks (2 SigLIP + 2 LM + 1 VL + 4 DiT x 4 Euler steps) errors add
    roughly as sqrt(#roundings), so we allow 3e-2 relative error on the features and 5e-2 on the
    actions (the four Euler steps re-feed the error). A wrong dtype path (e.g. a bf16 LayerNorm
    statistic or a lost mask) shows up as O(1) errors."""
    cfg = load_config("gr00t_tiny")
    torch.manual_seed(0)
    model32 = build_model(cfg, device="cuda", dtype=torch.float32)
    model16 = copy.deepcopy(model32).to(torch.bfloat16)
    inputs = _processed_inputs(cfg, 8, "cuda", seed=2)
    noise = torch.randn(8, 16, 32, device="cuda", generator=torch.Generator(device="cuda").manual_seed(0))
    with torch.no_grad():
        f32, _ = model32.backbone(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        f16, _ = model16.backbone(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        a32 = model32.get_action(**inputs, noise=noise)
        a16 = model16.get_action(**inputs, noise=noise.bfloat16())
    valid = inputs["attention_mask"].bool()
    assert _rel_err(f16[valid], f32[valid]) < 3e-2
    assert _rel_err(a16, a32) < 5e-2
    assert a16.dtype == torch.bfloat16 and torch.isfinite(a16).all()


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_cached_cross_attention_kv_matches_per_step_projection(attn):
    """The DiT's cross-attention K/V, projected once per observation (``ActionContext.cross_kv``),
    give the velocity of the per-step diffusers path (padding masked, tiny model, fp32)."""
    cfg = load_config("gr00t_tiny", backbone_cfg={"attn_implementation": attn})
    torch.manual_seed(0)
    model = build_model(cfg)
    model.eval_dropout()
    inputs = _processed_inputs(cfg, 3, "cpu", seed=4)
    x, t = torch.randn(3, 16, 32), torch.tensor([0.0, 0.25, 0.75])
    with torch.no_grad():
        ctx = model.encode(**{k: inputs[k] for k in ("pixel_values", "input_ids", "attention_mask", "state",
                                                     "embodiment_id")})
        assert [kv is None for kv in ctx.cross_kv] == [False, True, False, True]  # even blocks cross-attend
        assert ctx.cross_kv[0][0].shape == (3, inputs["input_ids"].shape[1], 64)  # [B, L, H*d]
        cached = model.action_head.velocity(ctx, x, t)
        ctx.cross_kv = None
        per_step = model.action_head.velocity(ctx, x, t)
    assert cached.shape == (3, 16, 32)
    assert torch.allclose(cached, per_step, atol=1e-5, rtol=1e-5)


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("policy_throughput", _ROOT / "benchmarks" / "policy_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_result(result: dict, batch: int) -> None:
    rows = [r for r in result["results"] if "samples_per_s" in r]
    assert {(r["variant"], r["phase"]) for r in rows} == {(v, p) for v in ("baseline", "optimised")
                                                        for p in ("rollout", "train")}
    for r in rows:
        sec = r["ms_per_iter"] / 1e3
        assert r["samples_per_s"] == pytest.approx(batch / sec, rel=1e-3)  # samples/s = B / median time
        assert r["flops_per_iter"] > 0
        assert r["tflops"] == pytest.approx(r["flops_per_iter"] / sec / 1e12, rel=1e-3)  # FLOP/s = FLOPs / time
    base = {r["phase"]: r for r in rows if r["variant"] == "baseline"}
    assert base["rollout"]["attn"] == "eager" and base["train"]["optimizer"] == "AdamW(foreach)"


def test_benchmark_runs_on_tiny_cpu(tmp_path):
    """The CPU smoke configuration of the benchmark: one timed step, both variants, JSON written."""
    bench = _load_benchmark()
    out = tmp_path / "bench.json"
    result = bench.main(["--config", "gr00t_tiny", "--device", "cpu", "--dtype", "fp32", "--batch-sizes", "2",
                         "--steps", "1", "--warmup", "0", "--image-size", "56", "--json", str(out)])
    assert out.exists() and result["params"] == 1_662_657
    _check_result(result, 2)
    opt = [r for r in result["results"] if r["variant"] == "optimised"]
    assert all(r["attn"] == "sdpa" and r["compile"] is None for r in opt)


@pytest.mark.gpu
def test_benchmark_runs_on_tiny_cuda_with_compile():
    bench = _load_benchmark()
    result = bench.main(["--config", "gr00t_tiny", "--device", "cuda", "--dtype", "bf16", "--batch-sizes", "4",
                         "--steps", "2", "--warmup", "2", "--compile", "--time-budget-s", "300"])
    _check_result(result, 4)
    assert all(r["peak_mem_gib"] > 0 for r in result["results"] if "samples_per_s" in r)


@pytest.mark.gpu
def test_random_init_on_cuda_is_seeded_and_leaves_the_global_generators_alone():
    """``from_config(device="cuda")`` initialises on the GPU: the same seed gives the same weights
    (what rollout and actor workers rely on), another seed others, and neither the CPU's nor the
    GPU's global random stream moves."""
    cpu_state, gpu_state = torch.get_rng_state(), torch.cuda.get_rng_state()
    a, b, c = (GR00TPolicy.from_config("gr00t_tiny", GR00TPolicyConfig(), seed=s, device="cuda") for s in (0, 0, 1))
    assert torch.equal(cpu_state, torch.get_rng_state()) and torch.equal(gpu_state, torch.cuda.get_rng_state())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(v.is_cuda for v in sa.values())
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
