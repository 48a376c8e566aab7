"""GR00T N1.5 architecture: full-size structure on the meta device, tiny-model math on CPU."""

import json
import time
from pathlib import Path

import pytest
import torch

from rlinf_isaac.models.gr00t import GR00TN15, build_model, load_config
from rlinf_isaac.models.gr00t.summary import parameter_shapes

MANIFEST = Path(__file__).parent / "data" / "gr00t_n1_5_param_shapes.json"
FULL_PARAMS = 2_398_284_528

# Names and shapes checked against the public GR00T N1.5 code/config (Isaac-GR00T, lerobot port):
# Qwen3-1.7B attention (16 q heads x 128, 8 kv heads x 128), mlp1 = one Linear 1152 -> 2048,
# DiT inner 32 x 48 = 1536 with cross-attention from 2048-wide VL tokens on even blocks only.
PUBLIC_NAMES = {
    "backbone.eagle_model.vision_model.vision_model.embeddings.patch_embedding.weight": (1152, 3, 14, 14),
    "backbone.eagle_model.vision_model.vision_model.embeddings.position_embedding.weight": (256, 1152),
    "backbone.eagle_model.mlp1.0.weight": (2048, 1152),
    "backbone.eagle_model.language_model.model.embed_tokens.weight": (151680, 2048),
    "backbone.eagle_model.language_model.model.layers.0.self_attn.q_proj.weight": (2048, 2048),
    "backbone.eagle_model.language_model.model.layers.0.self_attn.k_proj.weight": (1024, 2048),
    "backbone.eagle_model.language_model.model.layers.11.mlp.down_proj.weight": (2048, 6144),
    "backbone.eagle_model.language_model.model.norm.weight": (2048,),
    "action_head.vlln.weight": (2048,),
    "action_head.vl_self_attention.transformer_blocks.3.attn1.to_q.weight": (2048, 2048),
    "action_head.model.timestep_encoder.timestep_embedder.linear_1.weight": (1536, 256),
    "action_head.model.transformer_blocks.0.norm1.linear.weight": (3072, 1536),
    "action_head.model.transformer_blocks.0.attn1.to_q.weight": (1536, 1536),
    "action_head.model.transformer_blocks.0.attn1.to_k.weight": (1536, 2048),
    "action_head.model.transformer_blocks.1.attn1.to_k.weight": (1536, 1536),
    "action_head.model.transformer_blocks.15.ff.net.0.proj.weight": (6144, 1536),
    "action_head.model.proj_out_2.weight": (1024, 1536),
    "action_head.state_encoder.layer1.W": (32, 64, 1024),
    "action_head.state_encoder.layer2.W": (32, 1024, 1536),
    "action_head.action_encoder.W1.W": (32, 32, 1536),
    "action_head.action_encoder.W2.W": (32, 3072, 1536),
    "action_head.action_decoder.layer2.W": (32, 1024, 32),
    "action_head.action_decoder.layer2.b": (32, 32),
    "action_head.future_tokens.weight": (32, 1536),
    "action_head.position_embedding.weight": (1024, 1536),
}


@pytest.fixture(scope="module")
def full_meta():
    with torch.device("meta"):
        return GR00TN15(load_config("gr00t_n1_5"))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("gr00t_tiny")


def tiny_inputs(batch=2, views=2, pad=3, seed=0):
    """Prompt: 3 text tokens, V*16 image tokens (id 6), text, ``pad`` trailing pads on row 0."""
    g = torch.Generator().manual_seed(seed)
    length = 3 + views * 16 + 7
    ids = torch.randint(10, 1024, (batch, length), generator=g)
    ids[:, 3:3 + views * 16] = 6
    mask = torch.ones(batch, length, dtype=torch.long)
    if pad:
        ids[0, -pad:], mask[0, -pad:] = 0, 0
    pix = torch.randn(batch, views, 3, 56, 56, generator=g)
    state = torch.randn(batch, 1, 64, generator=g)
    return pix, ids, mask, state, torch.zeros(batch, dtype=torch.long)


def test_full_parameter_count_and_manifest(full_meta):
    assert full_meta.num_parameters() == FULL_PARAMS
    manifest = json.loads(MANIFEST.read_text())
    shapes = {k: list(v) for k, v in parameter_shapes(full_meta).items()}
    assert manifest["num_params"] == FULL_PARAMS and manifest["shapes"] == shapes
    for name, shape in PUBLIC_NAMES.items():
        assert tuple(manifest["shapes"][name]) == shape, name


def test_full_lm_truncated_and_256_tokens_per_view(full_meta):
    lm = full_meta.backbone.eagle_model.language_model
    assert len(lm.model.layers) == 12  # select_layer of 28
    lm_names = [n for n, _ in full_meta.named_parameters() if n.startswith("backbone.eagle_model.language_model.")]
    assert not any(".layers.12." in n for n in lm_names)
    assert lm.lm_head.weight is lm.model.embed_tokens.weight  # tied, counted once
    tokens = full_meta.backbone.eagle_model.extract_feature(torch.empty(3, 3, 224, 224, device="meta"))
    assert tuple(tokens.shape) == (3, 256, 2048)


def test_dit_interleaves_cross_and_self_attention(full_meta):
    blocks = full_meta.action_head.model.transformer_blocks
    assert len(blocks) == 16
    for i, block in enumerate(blocks):
        assert block.attn1.to_k.in_features == (1536 if i % 2 else 2048)


def test_backbone_features_shape_and_image_injection(tiny):
    pix, ids, mask, _, _ = tiny_inputs()
    with torch.no_grad():
        feats, vmask = tiny.backbone(pix, ids, mask)
        feats2, _ = tiny.backbone(pix.flip(0), ids, mask)
    assert feats.shape == (2, ids.shape[1], 64) and vmask.dtype == torch.bool
    assert vmask[0, -3:].sum() == 0 and vmask[1].all()
    # swapping the images between rows changes the features (images reach the LM)
    assert not torch.allclose(feats, feats2)
    bad = ids.clone()
    bad[0, 3] = 11  # one image token missing in row 0
    with pytest.raises(ValueError, match="image tokens"):
        tiny.backbone(pix, bad, mask)


def _constant_velocity(model, c):
    """Zero the last decoder layer so v(x, t) = c exactly for every input."""
    dec = model.action_head.action_decoder.layer2
    with torch.no_grad():
        dec.W.zero_()
        dec.b.copy_(c.expand_as(dec.b))


def test_euler_sampler_pinned_with_constant_velocity():
    torch.manual_seed(1)
    model = build_model("gr00t_tiny")
    c = torch.linspace(-1.0, 1.0, 32)
    _constant_velocity(model, c)
    pix, ids, mask, state, emb = tiny_inputs()
    noise = torch.randn(2, 16, 32)
    with torch.no_grad():
        ctx = model.encode(pix, ids, mask, state, emb)
        out4 = model.action_head.sample(ctx, num_steps=4, noise=noise)
        out1 = model.action_head.sample(ctx, num_steps=1, noise=noise)
    # x_4 = x_0 + 4 * (1/4) * c = x_0 + c (dt = 0.25 exact in binary)
    assert torch.allclose(out4, noise + c, atol=1e-6)
    assert torch.allclose(out1, noise + c, atol=1e-6)


def test_flow_matching_loss_hand_computed():
    torch.manual_seed(2)
    model = build_model("gr00t_tiny")
    _constant_velocity(model, torch.full((32,), 0.5))
    pix, ids, mask, state, emb = tiny_inputs()
    ctx = model.encode(pix, ids, mask, state, emb)
    actions = torch.zeros(2, 16, 32)
    actions[:, 0, :7] = 2.0
    noise = torch.zeros(2, 16, 32)
    amask = torch.zeros(2, 16, 32, dtype=torch.bool)
    amask[:, 0, :7] = True
    amask[1, 1, :7] = True
    t = torch.tensor([0.3, 0.7])
    loss = model.action_head.flow_matching_loss(ctx, actions, amask, t=t, noise=noise)
    # target v = a - n: 2 on (step 0, dims 0..6), 0 elsewhere; prediction 0.5 everywhere.
    # masked: 2 rows x 7 entries of (0.5 - 2)^2 = 2.25 and 7 entries of (0.5 - 0)^2 = 0.25
    # -> (14 * 2.25 + 7 * 0.25) / 21 = (31.5 + 1.75) / 21 = 1.5833...
    assert loss.item() == pytest.approx(33.25 / 21, rel=1e-6)


def test_time_discretisation_and_beta_sampling(tiny):
    head = tiny.action_head
    t = torch.tensor([0.0, 0.2499, 0.25, 0.9999, 1.0])
    assert head.discretize_time(t).tolist() == [0, 249, 250, 999, 1000]
    torch.manual_seed(3)
    ts = head.sample_time(20000)
    # t = (s - u)/s, u ~ Beta(1.5, 1): t <= 1 and E[t] = (0.999 - 0.6) / 0.999 = 0.3994
    assert float(ts.max()) <= 1.0 and float(ts.min()) >= (0.999 - 1.0) / 0.999
    assert float(ts.mean()) == pytest.approx(0.399 / 0.999, abs=0.01)


def test_embodiment_slots_isolated(tiny):
    pix, ids, mask, state, _ = tiny_inputs()
    emb = torch.tensor([3, 3])
    tiny.zero_grad(set_to_none=True)
    ctx = tiny.encode(pix, ids, mask, state, emb)
    loss = tiny.action_head.flow_matching_loss(ctx, torch.randn(2, 16, 32), torch.ones(2, 16, 32))
    loss.backward()
    head = tiny.action_head
    for p in (head.state_encoder.layer1.W, head.action_encoder.W2.W, head.action_decoder.layer2.b):
        others = torch.cat([p.grad[:3], p.grad[4:]])
        assert torch.count_nonzero(others) == 0 and torch.count_nonzero(p.grad[3]) > 0
    tiny.zero_grad(set_to_none=True)


def test_padding_invariance_with_masked_vl_tokens(tiny):
    tiny.eval()
    torch.manual_seed(4)
    feats = torch.randn(2, 10, 64)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 7:] = False
    state, emb = torch.randn(2, 1, 64), torch.tensor([0, 1])
    x, t = torch.randn(2, 16, 32), torch.tensor([0.25, 0.5])
    changed = feats.clone()
    changed[0, 7:] = 100.0
    with torch.no_grad():
        v1 = tiny.action_head.velocity(tiny.action_head.prepare_context(feats, mask, state, emb), x, t)
        v2 = tiny.action_head.velocity(tiny.action_head.prepare_context(changed, mask, state, emb), x, t)
    assert torch.allclose(v1[0], v2[0], atol=1e-5) and torch.equal(v1[1], v2[1])


def test_set_trainable_follows_gr00t_switches(tiny):
    def trainable(prefix):
        return {p.requires_grad for n, p in tiny.named_parameters() if n.startswith(prefix)}

    assert trainable("backbone.") == {False} and trainable("action_head.") == {True}
    tiny.set_trainable(tune_visual=True, tune_llm=False, tune_projector=False, tune_diffusion_model=True)
    assert trainable("backbone.eagle_model.vision_model.") == trainable("backbone.eagle_model.mlp1.") == {True}
    assert trainable("backbone.eagle_model.language_model.") == {False}
    assert trainable("action_head.state_encoder.") == trainable("action_head.action_decoder.") == {False}
    assert trainable("action_head.position_embedding.") == {False}
    assert trainable("action_head.model.") == trainable("action_head.vl_self_attention.") == {True}
    tiny.set_trainable()  # defaults: backbone frozen, head trainable
    assert trainable("backbone.") == {False} and trainable("action_head.") == {True}


def test_dropout_switch_makes_train_mode_deterministic(tiny):
    tiny.train()
    pix, ids, mask, state, emb = tiny_inputs()
    x, t = torch.randn(2, 16, 32), torch.tensor([0.0, 0.5])
    with torch.no_grad():
        ctx = tiny.encode(pix, ids, mask, state, emb)
        assert not torch.equal(tiny.action_head.velocity(ctx, x, t), tiny.action_head.velocity(ctx, x, t))
        tiny.eval_dropout()
        ctx = tiny.encode(pix, ids, mask, state, emb)
        assert torch.equal(tiny.action_head.velocity(ctx, x, t), tiny.action_head.velocity(ctx, x, t))
        tiny.set_dropout(True)
    assert {m.p for m in tiny.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}
    tiny.eval()


def test_tiny_head_forward_backward_is_fast(tiny):
    """An RL update of 8 envs: prepare_context + loss + backward of the head well under 1 s."""
    torch.manual_seed(5)
    feats, mask = torch.randn(8, 42, 64), torch.ones(8, 42, dtype=torch.bool)
    state, emb = torch.randn(8, 1, 64), torch.zeros(8, dtype=torch.long)
    actions, amask = torch.randn(8, 16, 32), torch.ones(8, 16, 32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        ctx = tiny.action_head.prepare_context(feats, mask, state, emb)
        tiny.action_head.flow_matching_loss(ctx, actions, amask).backward()
        best = min(best, time.perf_counter() - start)
    tiny.zero_grad(set_to_none=True)
    assert best < 1.0, f"head forward+backward took {best:.3f} s"


def test_eager_and_sdpa_attention_agree():
    outs = []
    for impl in ("sdpa", "eager"):
        torch.manual_seed(6)
        model = build_model(load_config("gr00t_tiny", backbone_cfg={"attn_implementation": impl})).eval()
        assert model.config.backbone_cfg.attn_implementation == impl
        pix, ids, mask, state, emb = tiny_inputs()
        outs.append(model.get_action(pix, ids, mask, state, emb, noise=torch.ones(2, 16, 32)))
    assert torch.allclose(outs[0], outs[1], atol=1e-4)
