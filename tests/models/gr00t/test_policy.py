"""GR00TPolicy on the real tiny GR00T model: shapes, exact log-prob recomputation, weight sync."""

import dataclasses

import pytest
import torch

from rlinf_isaac.models.gr00t.policy import GR00TPolicy, GR00TPolicyConfig
from tests.fresh_interpreter import run_json_script

B = 3


def _obs(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "main_images": torch.randint(0, 256, (B, 84, 84, 3), generator=g, dtype=torch.uint8),
        "wrist_images": torch.randint(0, 256, (B, 84, 84, 3), generator=g, dtype=torch.uint8),
        "states": torch.rand(B, 8, generator=g) * 2 - 1,
        "task_descriptions": ["Stack the red cube on the blue cube."] * (B - 1) + ["pick up the cube"],
    }


_BASE: dict = {}


def _policy(**kw) -> GR00TPolicy:
    """Tiny policy with identical weights for every config (seeded init)."""
    gran = {k: kw.pop(k) for k in ("logprob_granularity", "value_granularity") if k in kw}
    cfg = GR00TPolicyConfig(**{"value_hidden_dim": 32, "noise_hidden_dim": 16, "tune_projector": True, **kw})
    return GR00TPolicy.from_config("gr00t_tiny", cfg, seed=0, **gran)


@pytest.fixture(scope="module")
def sde_policy():
    return _policy(num_action_chunks=8)


def test_predict_shapes_and_extras(sde_policy):
    actions, extras = sde_policy.predict(_obs(), mode="train", generator=torch.Generator().manual_seed(0))
    assert actions.shape == (B, 8, 7) and actions.dtype == torch.float32
    assert set(actions[..., 6].unique().tolist()) <= {-1.0, 1.0}  # gripper binarised
    assert extras["chain"].shape == (B, 5, 16, 32)  # [B, K+1, C_h, A_pad]
    assert extras["step_idx"].shape == (B,) and extras["step_idx"].dtype == torch.int64
    assert extras["prev_logprobs"].shape == (B,) and extras["prev_values"].shape == (B,)
    assert extras["vl_features"].shape[0] == B and extras["vl_mask"].dtype == torch.bool
    assert "pixel_values" not in extras  # features are reused, inputs not stored


def test_predict_values_equals_rollout_values(sde_policy):
    _, extras = sde_policy.predict(_obs(), mode="eval", generator=torch.Generator().manual_seed(0))
    assert torch.equal(sde_policy.predict_values(_obs()), extras["prev_values"])


def test_eval_mode_is_the_deterministic_ode(sde_policy):
    a1, e1 = sde_policy.predict(_obs(), mode="eval", generator=torch.Generator().manual_seed(5))
    a2, e2 = sde_policy.predict(_obs(), mode="eval", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a1, a2) and torch.equal(e1["chain"], e2["chain"])
    assert "prev_logprobs" not in e1 and "step_idx" not in e1
    # the chain is exactly the model's own Euler sampler from the same x_0
    model = sde_policy.model
    inputs = sde_policy.processor(_obs())
    with torch.no_grad():
        ctx = model.encode(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"],
                           inputs["state"], inputs["embodiment_id"])
        ref = model.action_head.sample(ctx, 4, e1["chain"][:, 0])
    assert torch.allclose(e1["chain"][:, -1], ref, atol=1e-6)
    # train mode from the same seed injects noise: a different chain
    _, e3 = sde_policy.predict(_obs(), mode="train", generator=torch.Generator().manual_seed(5))
    assert not torch.equal(e3["chain"][:, -1], e1["chain"][:, -1])


@pytest.mark.parametrize("reuse", [True, False])
@pytest.mark.parametrize("granularity", ["chunk", "action"])
@pytest.mark.parametrize("method", ["flow_sde", "flow_noise"])
def test_evaluate_recomputes_rollout_logprobs_exactly(method, granularity, reuse):
    policy = _policy(noise_method=method, logprob_granularity=granularity, value_granularity=granularity,
                     reuse_backbone_features=reuse, num_action_chunks=8)
    _, extras = policy.predict(_obs(1), mode="train", generator=torch.Generator().manual_seed(2))
    assert ("vl_features" in extras) == reuse and ("pixel_values" in extras) != reuse
    out = policy.evaluate(extras)
    shape = (B,) if granularity == "chunk" else (B, 8)
    assert out["logprobs"].shape == shape == out["entropy"].shape == out["values"].shape
    ratio = torch.exp(out["logprobs"] - extras["prev_logprobs"])
    assert torch.equal(ratio, torch.ones_like(ratio))  # exactly 1 before any update
    assert torch.equal(out["values"], extras["prev_values"])
    # gradients reach the action head (and the noise net for Flow-Noise)
    (out["logprobs"].sum() + out["values"].sum()).backward()
    dit = policy.model.action_head.model
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in dit.parameters())
    if method == "flow_noise":
        assert policy.noise_net.mlp[-1].weight.grad.abs().sum() > 0


def test_logprobs_change_after_an_update():
    policy = _policy(num_action_chunks=4)
    _, extras = policy.predict(_obs(), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in policy.model.action_head.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    assert not torch.equal(policy.evaluate(extras)["logprobs"], extras["prev_logprobs"])


def test_dropout_is_off_in_train_mode():
    policy = _policy()
    policy.train()
    assert all(not m.training for m in policy.model.modules())
    _, extras = policy.predict(_obs(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(policy.evaluate(extras)["logprobs"], policy.evaluate(extras)["logprobs"])


def test_trainable_state_dict_round_trip():
    policy = _policy(noise_method="flow_noise")
    sd = policy.trainable_state_dict()
    assert sd and all(not k.startswith("model.backbone.") for k in sd)  # frozen backbone not synced
    assert any(k.startswith("value_head.") for k in sd) and any(k.startswith("noise_net.") for k in sd)
    n_trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    assert sum(v.numel() for v in sd.values()) == n_trainable
    other = _policy(noise_method="flow_noise")
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    other.load_trainable_state_dict({k: v.clone() for k, v in policy.trainable_state_dict().items()})
    for k, v in other.trainable_state_dict().items():
        assert torch.equal(v, policy.trainable_state_dict()[k])
    with pytest.raises(KeyError, match="missing"):
        other.load_trainable_state_dict({})


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="actor.model.noise_method"):
        GR00TPolicyConfig(noise_method="ddpm")
    with pytest.raises(ValueError, match="reuse_backbone_features"):
        GR00TPolicyConfig(tune_visual=True)
    with pytest.raises(ValueError, match="num_action_chunks"):
        _policy(num_action_chunks=17)


def test_from_pretrained_local_dir_matches(tmp_path):
    from rlinf_isaac.models.gr00t.checkpoint import save_pretrained
    from rlinf_isaac.models.gr00t.processor import identity_metadata

    policy = _policy()
    save_pretrained(policy.model, tmp_path / "ckpt", metadata=identity_metadata())
    policy.processor.tokenizer.save_pretrained(str(tmp_path / "ckpt"))
    loaded = GR00TPolicy.from_pretrained(tmp_path / "ckpt", dataclasses.replace(policy.cfg))
    a1, _ = policy.predict(_obs(), mode="eval", generator=torch.Generator().manual_seed(3))
    a2, _ = loaded.predict(_obs(), mode="eval", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)


@pytest.mark.parametrize("granularity", ["chunk", "action"])
def test_ppo_moves_actions_toward_a_rewarded_target(granularity):
    """The whole policy-gradient path learns: Flow-SDE rollouts of the real tiny policy, a
    reward that grows with the first action dim, batch-normalised advantages, the PPO loss
    and Adam. The deterministic (eval) actions must move up, by a clear margin."""
    from rlinf_isaac.algorithms import get_policy_loss

    torch.manual_seed(0)
    policy = _policy(num_action_chunks=4, add_value_head=False, logprob_granularity=granularity)
    n = 24
    one = _obs(3)
    obs = {k: (v[:1].expand(n, *v.shape[1:]).contiguous() if torch.is_tensor(v) else v[:1] * n)
           for k, v in one.items()}
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(1)

    def eval_x() -> float:
        actions, _ = policy.predict(obs, mode="eval", generator=torch.Generator().manual_seed(2))
        return float(actions[..., 0].mean())

    start = eval_x()
    for _ in range(6):
        actions, extras = policy.predict(obs, mode="train", generator=gen)
        reward = actions[..., 0].mean(-1)  # [n]
        adv = (reward - reward.mean()) / (reward.std() + 1e-8)
        if granularity == "action":
            adv = adv[:, None].expand(-1, actions.shape[1])  # [n] -> [n, C]
        fwd = {k: v for k, v in extras.items() if k not in ("prev_logprobs", "prev_values")}
        for _epoch in range(3):
            loss, _ = get_policy_loss("ppo")(policy.evaluate(fwd)["logprobs"], extras["prev_logprobs"],
                                             adv, None, clip_ratio_low=0.2, clip_ratio_high=0.28)
            opt.zero_grad()
            loss.backward()
            opt.step()
    end = eval_x()
    assert end > start + 0.1, (start, end)


def test_imitation_loss_is_the_heads_flow_matching_loss_on_the_weighted_executed_steps():
    policy = _policy(num_action_chunks=4)
    _, extras = policy.predict(_obs(), mode="train", generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    draws = {"t": torch.tensor([0.0, 0.25, 0.75]), "noise": torch.randn(B, 16, 32, generator=g)}
    weights = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    out = policy.evaluate(extras, imitation={"weights": weights, **draws})
    mask = torch.zeros(B, 16, 32)
    mask[:, :4, :7] = weights[:, :, None]
    ctx = policy.model.action_head.prepare_context(extras["vl_features"], extras["vl_mask"], extras["state"],
                                                   extras["embodiment_id"])
    expected = policy.model.action_head.flow_matching_loss(ctx, extras["chain"][:, -1], mask, **draws)
    torch.testing.assert_close(out["imitation_loss"], expected)
    # a zero-weight sample does not count (the steps past the executed ones are still inputs
    # of the velocity at x_t, so they are not independent of the loss)
    chain = extras["chain"].clone()
    chain[1, -1] += 5.0
    moved = policy.evaluate({**extras, "chain": chain}, imitation={"weights": weights, **draws})
    torch.testing.assert_close(moved["imitation_loss"], out["imitation_loss"])
    nothing = policy.evaluate(extras, imitation={"weights": torch.zeros(B, 4), **draws})
    assert float(nothing["imitation_loss"]) == 0.0
    with pytest.raises(ValueError, match=r"\[B, C\]"):
        policy.evaluate(extras, imitation={"weights": torch.ones(B, 16), **draws})


def test_imitation_pulls_the_deterministic_actions_toward_the_imitated_chunk():
    """Self-imitation learns: the imitation loss alone on stored chunks of the shipped SFT
    policy (moved by +0.5 in normalised units on the executed steps) brings its deterministic
    (eval) chunk from another x_0 most of the way there."""
    from pathlib import Path

    ckpt = Path(__file__).resolve().parents[3] / "checkpoints" / "gr00t_tiny_sft_stack2"
    policy = GR00TPolicy.from_pretrained(ckpt, GR00TPolicyConfig(num_action_chunks=4, add_value_head=False))
    _, extras = policy.predict(_obs(3), mode="train", generator=torch.Generator().manual_seed(1))
    target = extras["chain"][:, -1].clone()
    target[:, :4, :7] += 0.5
    extras["chain"] = torch.cat([extras["chain"][:, :-1], target[:, None]], dim=1)

    def distance() -> float:
        _, ev = policy.predict(_obs(3), mode="eval", generator=torch.Generator().manual_seed(2))
        return float((ev["chain"][:, -1, :4, :7] - target[:, :4, :7]).abs().mean())

    start = distance()
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=3e-4)
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        draws = {"t": torch.randint(4, (B,), generator=g).float() / 4, "noise": torch.randn(B, 16, 32, generator=g)}
        loss = policy.evaluate(extras, imitation={"weights": torch.ones(B, 4), **draws})["imitation_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = distance()
    assert start > 0.4 and end < 0.4 * start, (start, end)


def test_explore_gripper_off_takes_the_gripper_out_of_noise_and_log_prob():
    on, off = _policy(num_action_chunks=4), _policy(num_action_chunks=4, explore_gripper=False)
    assert on.logprob_mask()[:4, 6].all() and not off.logprob_mask()[:, 6].any()
    assert off.logprob_mask()[:4, :6].all()
    for policy, counts in ((on, True), (off, False)):
        _, extras = policy.predict(_obs(), mode="train", generator=torch.Generator().manual_seed(0))
        out = policy.evaluate(extras)
        assert torch.equal(out["logprobs"], extras["prev_logprobs"])  # still exact
        # move the gripper entries of the sampled (stochastic) transition's result
        chain = extras["chain"].clone()
        rows = torch.arange(B)
        chain[rows, extras["step_idx"] + 1, :, 6] += 0.3
        moved = policy.evaluate({**extras, "chain": chain})["logprobs"]
        assert (not torch.equal(moved, out["logprobs"])) == counts


_COMPILE_CHECK = """
import json, sys, torch
from rlinf_isaac.models.gr00t.policy import GR00TPolicyConfig, build_gr00t_policy
from tests.models.gr00t.test_policy import _obs

device, graph, head = sys.argv[1], sys.argv[2] == "graph", sys.argv[3] == "head"
eager = build_gr00t_policy(GR00TPolicyConfig(num_action_chunks=4), seed=0).to(device)
compiled = build_gr00t_policy(GR00TPolicyConfig(num_action_chunks=4, compile_backbone=True, cuda_graph=graph,
                                                compile_action_head=head), seed=0).to(device)
errs = {"features_err": 0.0, "actions_err": 0.0}
for seed in (1, 2):  # with a graph: compiled and captured on the first call, replayed on the second
    a_e, e_e = eager.predict(_obs(seed), mode="train", generator=torch.Generator(device).manual_seed(seed))
    a_c, e_c = compiled.predict(_obs(seed), mode="train", generator=torch.Generator(device).manual_seed(seed))
    errs["features_err"] = max(errs["features_err"], (e_c["vl_features"] - e_e["vl_features"]).abs().max().item())
    errs["actions_err"] = max(errs["actions_err"], (a_c - a_e).abs().max().item())
recomputed = compiled.evaluate(e_c)["logprobs"]
print(json.dumps({
    "compiled": compiled.model.backbone.eagle_model.vision_model._compiled_call_impl is not None,
    "same_names": list(compiled.state_dict()) == list(eager.state_dict()),
    "captures": compiled._graphs.captures, "fallback": compiled.cuda_graph_fallback, **errs,
    "ratio_err": (recomputed - e_c["prev_logprobs"]).abs().max().item(),
    "ratio_exact": torch.equal(recomputed, e_c["prev_logprobs"]),
}))
"""


def _check_compiled_backbone(device: str, tol: float, graph: bool = False, head: bool = False) -> dict:
    r = run_json_script(_COMPILE_CHECK, device, "graph" if graph else "eager", "head" if head else "-", timeout=600)
    assert r["compiled"] and r["same_names"]  # weight sync and checkpoints unchanged
    assert r["features_err"] < tol and r["actions_err"] < tol, r
    # PPO ratio exactly 1 before an update; a compiled action head's training graph rounds unlike
    # the rollout's, so the actor recomputes the old log-probs (tests/algorithms/test_decoupled.py)
    assert r["ratio_exact"] if not head else r["ratio_err"] < tol, r
    return r


def test_compiled_backbone_infers_like_eager_and_leaves_the_training_path_exact():
    """actor.model.compile_backbone (torch.compile; ~30 s to compile on 2 cores): the same
    actions and features as eager up to float rounding, the same parameter names, and the
    log-probs recomputed by evaluate() on its stored features equal the rollout's bit for bit."""
    r = _check_compiled_backbone("cpu", tol=1e-4)
    assert r["captures"] == 0 and r["fallback"] is None


@pytest.mark.gpu
@pytest.mark.parametrize("graph,head", [(False, False), (True, False), (True, True)])
def test_compiled_backbone_on_cuda_leaves_the_training_path_exact(graph, head):
    """The same on a CUDA GPU (Triton kernels instead of C++; fused reductions round differently,
    hence the looser feature tolerance); the ratio stays exactly 1. With ``cuda_graph`` too, the
    compiled code is captured with the rest of the call (compiled in the warm-up before the
    capture): one capture, no eager fallback, the eager policy's results; also with the action
    head compiled."""
    r = _check_compiled_backbone("cuda", tol=1e-3, graph=graph, head=head)
    assert r["captures"] == int(graph) and r["fallback"] is None, r


def test_compile_backbone_needs_reused_features_and_combines_with_cuda_graphs():
    from rlinf_isaac.config import ConfigError

    with pytest.raises(ConfigError, match="reuse_backbone_features"):
        GR00TPolicyConfig(compile_backbone=True, reuse_backbone_features=False)
    cfg = GR00TPolicyConfig(compile_backbone=True, compile_action_head=True, cuda_graph=True)
    assert cfg.cuda_graph and cfg.compile_backbone and cfg.compile_action_head
