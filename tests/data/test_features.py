"""Stored inputs left on the rollout workers: the index of rows, its slicing and joining, and
fetching the rows back (from several rollout workers) equal to the tensors themselves."""

import pytest
import torch

from rlinf_isaac.cluster.handles import LocalHandle
from rlinf_isaac.data.features import FeatureIndex, FeatureStore, fetch_features
from rlinf_isaac.data.trajectory import StepRecord, concat_envs, split_envs, stack_stages


class _Rollout:  # the two methods of RolloutWorker that actors call
    def __init__(self, rank):
        self.features = FeatureStore(rank)

    def export_features(self, segments, via):
        return self.features.export(segments, via)


def _records(stores, t_len, n, seed):
    """T chunk steps of S = len(stores) stages (stage s served by stores[s]); returns the
    records with refs and the same records holding the tensors."""
    g = torch.Generator().manual_seed(seed)
    with_refs, with_tensors = [], []
    for store in stores:
        a, b = [], []
        for _ in range(t_len):
            fwd = {"features": torch.randn(n, 3, 4, generator=g).to(torch.bfloat16),
                   "step_idx": torch.randint(0, 9, (n,), generator=g)}
            small = dict(logprobs=torch.randn(n, generator=g), values=torch.randn(n, generator=g),
                         rewards=torch.rand(n, 2, generator=g), terminated=torch.zeros(n, 2, dtype=torch.bool),
                         truncated=torch.zeros(n, 2, dtype=torch.bool), valid=torch.ones(n, 2, dtype=torch.bool),
                         success=torch.zeros(n, 2, dtype=torch.bool), final_values=torch.zeros(n))
            a.append(StepRecord(forward_inputs=store.features.put(fwd), **small))
            b.append(StepRecord(forward_inputs=fwd, **small))
        with_refs.append(a)
        with_tensors.append(b)
    return with_refs, with_tensors


def test_index_slices_and_joins_like_tensors():
    ix = FeatureIndex([[(0, 10, 0, 3), (1, 20, 0, 2)], [(0, 11, 0, 3), (1, 21, 0, 2)]])  # T=2, 5 envs
    assert ix.num_envs == 5
    assert ix.slice(2, 4).steps == [[(0, 10, 2, 3), (1, 20, 0, 1)], [(0, 11, 2, 3), (1, 21, 0, 1)]]
    assert ix.slice(3, 5).steps[0] == [(1, 20, 0, 2)]
    joined = FeatureIndex.concat([ix.slice(0, 2), ix.slice(2, 5)])
    assert joined.steps == [[(0, 10, 0, 2), (0, 10, 2, 3), (1, 20, 0, 2)], [(0, 11, 0, 2), (0, 11, 2, 3), (1, 21, 0, 2)]]


@pytest.mark.parametrize("pieces", [1, 2, 4])
def test_fetched_shards_equal_the_tensors(pieces):
    """Two stages served by two rollout workers, the trajectory split into actor shards:
    every shard fetched from the workers equals the shard of the tensor trajectory."""
    rollouts = [_Rollout(0), _Rollout(1)]
    refs, tensors = _records(rollouts, t_len=3, n=4, seed=0)
    env_ids = torch.arange(8)
    remote = stack_stages(refs, [torch.zeros(4)] * 2, env_ids)
    local = stack_stages(tensors, [torch.zeros(4)] * 2, env_ids)
    assert isinstance(remote.forward_inputs, FeatureIndex) and remote.forward_inputs.num_envs == 8
    handles = [LocalHandle(r) for r in rollouts]
    for got, want in zip(split_envs(remote, pieces), split_envs(local, pieces)):
        fetched = fetch_features(got.forward_inputs, handles, "cpu")
        for k, v in want.forward_inputs.items():
            assert fetched[k].dtype == v.dtype and torch.equal(fetched[k], v), k
    both = concat_envs(split_envs(remote, 2)[::-1])  # shards joined out of order stay addressable
    fetched = fetch_features(both.forward_inputs, handles, "cpu")
    assert torch.equal(fetched["features"], torch.cat([local.forward_inputs["features"][:, 4:],
                                                       local.forward_inputs["features"][:, :4]], 1))


def test_released_inputs_are_named():
    r = _Rollout(3)
    ref = r.features.put({"x": torch.zeros(2, 1)})
    assert r.features.release() == 1
    with pytest.raises(KeyError, match=r"rollout worker 3 holds no stored inputs for calls \[0\]"):
        r.export_features([(ref.key, 0, 2)], "host")
    with pytest.raises(ValueError, match="batch size"):
        r.features.put({"x": torch.zeros(2), "y": torch.zeros(3)})
