"""The raw-bytes tensor path: exact round trips, views send only their elements, fallbacks."""

import pickle

import pytest
import torch

from rlinf_isaac.cluster import tensor_transport as tt


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.bool, torch.int64, torch.uint8])
def test_round_trip_is_exact(dtype):
    x = (torch.randn(3, 4, 5) * 10).to(dtype)
    y = tt.from_wire(pickle.loads(pickle.dumps(tt.to_wire(x))))
    assert y.dtype == dtype and y.shape == x.shape and torch.equal(y, x)


def test_scalars_empty_and_requires_grad():
    for x in (torch.tensor(2.5), torch.zeros(0, 7), torch.arange(5)):
        y = tt.from_wire(tt.to_wire(x))
        assert y.shape == x.shape and torch.equal(y, x)
    w = torch.randn(4, requires_grad=True)
    y = tt.from_wire(tt.to_wire(w))
    assert y.requires_grad and y.is_leaf and torch.equal(y.detach(), w.detach())


def test_a_view_sends_only_its_elements_and_the_copy_is_its_own():
    wide = torch.randn(10, 100, 64)
    view = wide[:, 10:20]  # a trajectory shard: 1/10 of the envs
    payload = tt.to_wire(view)
    assert payload[1].nbytes == view.numel() * 4  # Ray's pickling would send all of ``wide``
    y = tt.from_wire(payload)
    assert torch.equal(y, view)
    y.zero_()
    assert not torch.equal(view, y)


def test_lazy_conjugate_view_is_materialised():
    z = torch.randn(4, dtype=torch.complex64)
    assert torch.equal(tt.from_wire(tt.to_wire(z.conj())), z.conj().resolve_conj())


def test_sparse_falls_back_to_torch_save():
    s = torch.eye(3).to_sparse()
    payload = tt.to_wire(s)
    assert payload[0] == "torch.save"
    assert torch.equal(tt.from_wire(payload).to_dense(), torch.eye(3))


def test_mode_is_checked(monkeypatch):
    monkeypatch.setenv("RLINF_TENSOR_TRANSPORT", "pickle")
    assert not tt.enabled()
    monkeypatch.setenv("RLINF_TENSOR_TRANSPORT", "zerocopy")
    with pytest.raises(ValueError, match="RLINF_TENSOR_TRANSPORT='zerocopy'.*'bytes'.*'pickle'"):
        tt.enabled()
