"""Value head: masked pooling, padding invariance, granularity shapes, config errors."""

import pytest
import torch

from rlinf_isaac.models.gr00t.value_head import ValueHead, ValueHeadConfig, masked_mean_pool


def test_masked_mean_pool_hand_computed():
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])  # [B=1, L=3, D=2]
    mask = torch.tensor([[True, True, False]])
    # mean of the two valid tokens: ((1+3)/2, (2+4)/2) = (2, 3)
    assert masked_mean_pool(feats, mask).tolist() == [[2.0, 3.0]]
    assert masked_mean_pool(feats, torch.zeros(1, 3, dtype=torch.bool)).tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("granularity,shape", [("chunk", (3,)), ("action", (3, 16))])
def test_padding_invariance_and_shapes(granularity, shape):
    torch.manual_seed(0)
    head = ValueHead(ValueHeadConfig(vl_dim=8, state_dim=6, hidden_dim=16, granularity=granularity))
    feats = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    state = torch.randn(3, 1, 6)
    v1 = head(feats, mask, state)
    assert v1.shape == shape
    changed = feats.clone()
    changed[~mask] = torch.randn(int((~mask).sum()), 8) * 1e3
    changed[0, 4] = float("nan")
    assert torch.equal(head(changed, mask, state), v1)
    # changing a valid token does change the value (a non-constant change: LayerNorm removes shifts)
    changed[0, 0] += torch.linspace(-1.0, 1.0, 8)
    assert (head(changed, mask, state)[0] - v1[0]).abs().max() > 1e-6


def test_value_gradient_reaches_all_parameters():
    head = ValueHead(ValueHeadConfig(vl_dim=4, state_dim=3, hidden_dim=8))
    head(torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool), torch.randn(2, 3)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="value_head.granularity"):
        ValueHeadConfig(vl_dim=4, granularity="token")
    with pytest.raises(ValueError, match="value_head.hidden_dim"):
        ValueHeadConfig(vl_dim=4, hidden_dim=0)
    head = ValueHead(ValueHeadConfig(vl_dim=4, state_dim=3))
    with pytest.raises(ValueError, match="state_dim=3"):
        head(torch.randn(1, 2, 4), torch.ones(1, 2, dtype=torch.bool), torch.randn(1, 5))
