"""Trajectory assembly: joining the stages in one pass equals stacking each and concatenating."""

from dataclasses import fields

import pytest
import torch

from rlinf_isaac.data.trajectory import StepRecord, concat_envs, split_envs, stack_stages, stack_steps


def _record(g: torch.Generator, n: int, c: int = 4) -> StepRecord:
    return StepRecord(
        forward_inputs={"features": torch.randn(n, 5, 8, generator=g).to(torch.bfloat16),
                        "chain": torch.randn(n, 3, c, 2, generator=g)},
        logprobs=torch.randn(n, generator=g), values=torch.randn(n, generator=g),
        rewards=torch.randn(n, c, generator=g), terminated=torch.rand(n, c, generator=g) > 0.8,
        truncated=torch.rand(n, c, generator=g) > 0.9, valid=torch.rand(n, c, generator=g) > 0.1,
        success=torch.rand(n, c, generator=g) > 0.7, final_values=torch.randn(n, generator=g))


def test_stack_stages_equals_stack_then_concat():
    g = torch.Generator().manual_seed(0)
    stages = [[_record(g, 3) for _ in range(6)] for _ in range(2)]
    boot = [torch.randn(3, generator=g) for _ in range(2)]
    ids = torch.arange(6) + 12
    want = concat_envs([stack_steps(st, b, ids[3 * s:3 * s + 3]) for s, (st, b) in enumerate(zip(stages, boot))])
    got = stack_stages(stages, boot, ids)
    for f in fields(want):
        a, b = getattr(want, f.name), getattr(got, f.name)
        if f.name == "forward_inputs":
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
        elif f.name != "meta":
            assert a.dtype == b.dtype and torch.equal(a, b), f.name
    assert got.values.shape == (7, 6) and got.forward_inputs["features"].shape == (6, 6, 5, 8)
    halves = split_envs(got, 2)
    assert torch.equal(halves[1].env_ids, ids[3:]) and torch.equal(halves[1].rewards, got.rewards[:, 3:])


def test_stages_of_different_lengths_are_refused():
    g = torch.Generator().manual_seed(1)
    with pytest.raises(ValueError, match=r"different numbers of steps: \[2, 3\]"):
        stack_stages([[_record(g, 2)] * 2, [_record(g, 2)] * 3], [torch.zeros(2)] * 2, torch.arange(4))
