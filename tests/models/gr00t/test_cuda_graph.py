"""predict() replayed from CUDA graphs (``GR00TPolicyConfig.cuda_graph``).

GPU tests (skipped without one): the graph gives the eager results (same random draws, so
the same chain up to float rounding; the log-probs recomputed by ``evaluate`` give ratio 1
within float32 rounding); an in-place weight update reaches the graph; moving the weights
(offload and back) re-captures; a new batch shape captures its own graph. The CPU tests:
the option is a no-op off the GPU, and the part a graph captures, run on the meta device as if
captured, copies nothing from the host (a capture refuses such copies and the cache would fall
back to eager inference, only slower).
"""

import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rlinf_isaac.models.gr00t import cuda_graph, flow_rl
from rlinf_isaac.models.gr00t.config import load_config
from rlinf_isaac.models.gr00t.modeling import GR00TN15
from rlinf_isaac.models.gr00t.policy import INPUT_KEYS, GR00TPolicy, GR00TPolicyConfig
from rlinf_isaac.models.gr00t.processor import GR00TProcessor
from rlinf_isaac.models.gr00t.tokenizer import stand_in_tokenizer
from tests.models.gr00t.test_gpu import _obs


def _policy(graph: bool, device: str, method: str = "flow_sde") -> GR00TPolicy:
    cfg = GR00TPolicyConfig(noise_method=method, num_action_chunks=4, value_hidden_dim=32, tune_projector=True,
                            noise_hidden_dim=16, cuda_graph=graph)
    return GR00TPolicy.from_config("gr00t_tiny", cfg, seed=0).to(device).eval()


def _predict(policy, obs, mode, seed, device):
    gen = torch.Generator(device=device).manual_seed(seed)
    return policy.predict(obs, mode=mode, generator=gen)


def test_cuda_graph_option_is_a_no_op_on_the_cpu():
    eager, graphed = _policy(False, "cpu"), _policy(True, "cpu")
    a0, e0 = _predict(eager, _obs(3), "train", 1, "cpu")
    a1, e1 = _predict(graphed, _obs(3), "train", 1, "cpu")
    assert torch.equal(a0, a1) and torch.equal(e0["chain"], e1["chain"])
    assert graphed._graphs.captures == 0 and graphed.cuda_graph_fallback is None


class _HostReads(TorchDispatchMode):
    """Records every op that reads a host (CPU) tensor while the computation runs on meta."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        leaves = torch.utils._pytree.tree_leaves((args, kwargs or {}))
        if any(isinstance(a, torch.Tensor) and a.device.type == "cpu" for a in leaves):
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _as_if_capturing(monkeypatch) -> list[str]:
    """Makes every capture check answer True (ours and transformers'), and records tensors made
    from Python data on another device than the host (``torch.tensor(x, device=...)`` copies
    from the host without dispatching an op)."""
    made: list[str] = []
    check = cuda_graph.is_capturing
    for module in list(sys.modules.values()):
        if getattr(module, "is_capturing", None) is check:
            monkeypatch.setattr(module, "is_capturing", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    for name in ("tensor", "as_tensor"):
        original = getattr(torch, name)

        def record(*args, _original=original, _name=name, **kwargs):
            data = args[0] if args else kwargs.get("data")
            on_host = not isinstance(data, torch.Tensor) or data.device.type == "cpu"
            if on_host and kwargs.get("device") is not None and torch.device(kwargs["device"]).type != "cpu":
                made.append(f"torch.{_name}(..., device={kwargs['device']})")
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch, name, record)
    return made


def _on_meta(config: str, fp8: bool, batch: int = 2) -> tuple[GR00TPolicy, dict]:
    """The policy of ``config`` on the meta device (bf16; no memory, so the full-size one builds
    in seconds) and the inputs of a ``predict`` call, processed on the host, moved to meta."""
    model_cfg = load_config(config)
    processor = GR00TProcessor.for_model(model_cfg, None, tokenizer=stand_in_tokenizer(model_cfg))  # tiny: itself
    with torch.device("meta"):
        model = GR00TN15(model_cfg)
    policy = GR00TPolicy(model, processor, GR00TPolicyConfig(num_action_chunks=4), "chunk", "chunk")
    policy.to("meta").to(torch.bfloat16)
    if fp8:
        policy.use_fp8_backbone()
    inputs = processor(_obs(batch), device="cpu")
    return policy, {k: inputs[k] for k in (*INPUT_KEYS, "state", "embodiment_id")}


def _drawn(policy: GR00TPolicy, batch: int, mode: str) -> dict:
    """``predict``'s random draws for ``mode``, made on the host (meta tensors hold no values)."""
    k, gen = policy.cfg.num_denoise_steps, torch.Generator().manual_seed(1)
    noise = torch.randn(batch, policy.horizon, policy.pad_action_dim, generator=gen, dtype=torch.bfloat16)
    if mode == "eval":
        return {"noise": noise}
    return {"noise": noise, "step_idx": torch.randint(k, (batch,), generator=gen),
            "eps": flow_rl.draw_step_noise(noise, k, gen)}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("config,fp8", [("gr00t_tiny", False), ("gr00t_tiny", True), ("gr00t_n1_5", False),
                                        ("gr00t_n1_5", True)])
def test_the_captured_part_copies_nothing_from_the_host(monkeypatch, config, fp8, mode):
    """``_infer`` (what a CUDA graph captures) on the meta device with the capture checks on: no op
    reads a host tensor and no tensor is made from Python data on the device, so a capture of it
    cannot fail on a host-to-device copy. The full-size policy too: on meta it costs no memory."""
    policy, t = _on_meta(config, fp8)
    t.update(_drawn(policy, 2, mode))
    t = {k: v.to("meta") for k, v in t.items()}
    made = _as_if_capturing(monkeypatch)
    with torch.no_grad(), _HostReads() as reads:
        out = policy._infer(mode, t)
    assert out["chain"].shape == (2, policy.cfg.num_denoise_steps + 1, policy.horizon, policy.pad_action_dim)
    assert made == [] and reads.ops == []


def _close(x, y, tol=1e-4):
    assert x.shape == y.shape and x.dtype == y.dtype
    if x.dtype in (torch.int64, torch.bool):
        assert torch.equal(x, y)
    else:
        assert torch.allclose(x, y, atol=tol, rtol=tol), float((x - y).abs().max())


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["flow_sde", "flow_noise"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_graph_replay_matches_eager(method, mode):
    eager, graphed = _policy(False, "cuda", method), _policy(True, "cuda", method)
    graphed.load_state_dict(eager.state_dict())
    for call in range(3):  # capture on the first call, replay afterwards
        obs = _obs(6, seed=call)
        a0, e0 = _predict(eager, obs, mode, call, "cuda")
        a1, e1 = _predict(graphed, obs, mode, call, "cuda")
        assert sorted(e0) == sorted(e1)
        for key in e0:
            _close(e1[key], e0[key])
        assert torch.equal(a0[..., -1], a1[..., -1])  # gripper: binarised
    assert graphed._graphs.captures == 1 and graphed.cuda_graph_fallback is None
    if mode == "train":
        out = graphed.evaluate(e1)
        ratio = torch.exp(out["logprobs"] - e1["prev_logprobs"])
        _close(ratio, torch.ones_like(ratio))


@pytest.mark.gpu
def test_graph_sees_in_place_weight_updates_and_recaptures_after_a_move():
    eager, graphed = _policy(False, "cuda"), _policy(True, "cuda")
    graphed.load_state_dict(eager.state_dict())
    obs = _obs(4)
    _predict(graphed, obs, "train", 0, "cuda")
    with torch.no_grad():  # what the rollout worker's weight sync does: copy_ into the parameters
        new = {k: v + 0.01 * torch.randn_like(v) for k, v in eager.trainable_state_dict().items()}
        eager.load_trainable_state_dict(new)
        graphed.load_trainable_state_dict(new)
    a0, e0 = _predict(eager, obs, "train", 5, "cuda")
    a1, e1 = _predict(graphed, obs, "train", 5, "cuda")
    _close(e1["chain"], e0["chain"])
    assert graphed._graphs.captures == 1
    graphed.to("cpu").to("cuda")  # offload and reload: new storage, the old graph would read freed memory
    a2, e2 = _predict(graphed, obs, "train", 5, "cuda")
    _close(e2["chain"], e0["chain"])
    assert graphed._graphs.captures == 2
    _predict(graphed, _obs(7), "train", 5, "cuda")  # another batch size: its own graph
    assert graphed._graphs.captures == 3
