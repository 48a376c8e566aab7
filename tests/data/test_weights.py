"""Actor -> rollout weight sync through one packed buffer (weight_sync.py)."""

import pytest
import torch

from rlinf_isaac.data.weights import WeightPacker, unpack_into


def _tensors(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(3, 5, generator=g),  # 60 bytes: the next tensor starts aligned
            "b.bias": torch.randn(7, generator=g).to(torch.bfloat16),
            "c.scale": torch.randn(1, generator=g, dtype=torch.float64),
            "d.table": torch.randn(4, 2, 3, generator=g).to(torch.float16)}


def test_round_trip_keeps_values_dtypes_and_shapes():
    src, dst = _tensors(0), _tensors(1)
    packed = WeightPacker().pack(src)
    assert packed.names == list(src) and all(off % 64 == 0 for off in packed.offsets)
    packed.buffer.flags.writeable = False  # as Ray's object store hands it out
    unpack_into(packed, dst, "cpu")
    for k in src:
        assert dst[k].dtype == src[k].dtype and torch.equal(dst[k], src[k]), k


def test_buffer_is_reused_and_refilled():
    packer = WeightPacker()
    first = packer.pack(_tensors(0))
    ptr = first.buffer.ctypes.data
    second = packer.pack(_tensors(2))
    assert second.buffer.ctypes.data == ptr  # no new allocation per sync
    out = second.tensors("cpu")
    for k, v in _tensors(2).items():
        assert torch.equal(out[k], v), k


def test_mismatches_are_named():
    packed = WeightPacker().pack(_tensors(0))
    dst = _tensors(1)
    dst.pop("b.bias")
    with pytest.raises(KeyError, match=r"unexpected \['b.bias'\]"):
        unpack_into(packed, dst, "cpu")
    dst = _tensors(1)
    dst["a.weight"] = torch.zeros(5, 3)
    with pytest.raises(ValueError, match=r"'a.weight' is float32\[3, 5\], the model's is float32\[5, 3\]"):
        unpack_into(packed, dst, "cpu")


def test_tiny_policy_rollout_copy_matches_actor():
    from rlinf_isaac.models.gr00t.policy import GR00TPolicy

    actor = GR00TPolicy.from_config("gr00t_tiny", seed=0)
    rollout = GR00TPolicy.from_config("gr00t_tiny", seed=1)
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(0.5)
    packed = WeightPacker().pack(actor.trainable_state_dict())
    unpack_into(packed, {n: p for n, p in rollout.named_parameters() if p.requires_grad}, "cpu")
    for k, v in actor.trainable_state_dict().items():
        assert torch.equal(rollout.trainable_state_dict()[k], v), k


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip_uses_pinned_buffer():
    src = {k: v.cuda() for k, v in _tensors(0).items()}
    dst = {k: v.cuda() for k, v in _tensors(1).items()}
    packer = WeightPacker()
    packed = packer.pack(src)
    assert packer._buffer.is_pinned()
    unpack_into(packed, dst, "cuda")
    for k in src:
        assert torch.equal(dst[k], src[k]), k
