"""GAE and GRPO against hand-computed examples, plus loop-vs-scan equivalence."""

import math

import pytest
import torch

from rlinf_isaac.algorithms.advantages import (
    flatten_env_steps,
    gae,
    grpo,
    mask_until_done,
    reverse_scan,
    reverse_scan_loop,
)

# Shared 3-step, one-env example: gamma = 0.9, lambda = 0.8 (gamma * lambda = 0.72).
R3 = torch.tensor([[1.0], [2.0], [3.0]])  # [T=3, B=1]
V3 = torch.tensor([[0.5], [1.0], [1.5], [2.0]])  # [T+1, B]; V(s_3) = 2.0 is the bootstrap
NO = torch.zeros(3, 1, dtype=torch.bool)


def _at(t: int) -> torch.Tensor:
    flags = NO.clone()
    flags[t, 0] = True
    return flags


@pytest.mark.parametrize("vectorized", [True, False])
def test_gae_three_steps_no_done(vectorized):
    out = gae(R3, V3, NO, NO, gamma=0.9, gae_lambda=0.8, vectorized=vectorized)
    # delta_2 = 3 + 0.9*2.0 - 1.5 = 3.3
    # delta_1 = 2 + 0.9*1.5 - 1.0 = 2.35
    # delta_0 = 1 + 0.9*1.0 - 0.5 = 1.4
    # A_2 = 3.3; A_1 = 2.35 + 0.72*3.3 = 4.726; A_0 = 1.4 + 0.72*4.726 = 4.80272
    expected = torch.tensor([[4.80272], [4.726], [3.3]])
    torch.testing.assert_close(out.advantages, expected)
    # R_t = A_t + V(s_t): 4.80272 + 0.5, 4.726 + 1.0, 3.3 + 1.5
    torch.testing.assert_close(out.returns, torch.tensor([[5.30272], [5.726], [4.8]]))
    assert out.loss_mask is None and out.group_mask is None


@pytest.mark.parametrize("vectorized", [True, False])
def test_gae_termination_does_not_bootstrap(vectorized):
    # Episode terminates on the transition out of step 1; V3[2] = 1.5 is the value of the
    # next episode's first observation and must not leak into step 1.
    out = gae(R3, V3, _at(1), NO, gamma=0.9, gae_lambda=0.8, vectorized=vectorized)
    # delta_1 = 2 + 0 - 1.0 = 1.0; A_2 = 3.3 (new episode); A_1 = 1.0 (cut)
    # A_0 = 1.4 + 0.72*1.0 = 2.12
    torch.testing.assert_close(out.advantages, torch.tensor([[2.12], [1.0], [3.3]]))


@pytest.mark.parametrize("vectorized", [True, False])
def test_gae_truncation_bootstraps_with_final_value(vectorized):
    final_values = torch.tensor([[9.0], [4.0], [9.0]])  # only row 1 is read (truncated there)
    out = gae(R3, V3, NO, _at(1), final_values, gamma=0.9, gae_lambda=0.8, vectorized=vectorized)
    # delta_1 = 2 + 0.9*4.0 - 1.0 = 4.6; A_1 = 4.6 (recursion cut, new episode after)
    # A_0 = 1.4 + 0.72*4.6 = 4.712; A_2 = 3.3
    torch.testing.assert_close(out.advantages, torch.tensor([[4.712], [4.6], [3.3]]))


def test_gae_termination_wins_over_truncation():
    final_values = torch.full((3, 1), 4.0)
    both = gae(R3, V3, _at(1), _at(1), final_values, gamma=0.9, gae_lambda=0.8)
    term = gae(R3, V3, _at(1), NO, gamma=0.9, gae_lambda=0.8)
    torch.testing.assert_close(both.advantages, term.advantages)


def test_gae_truncation_without_final_values_is_an_error():
    with pytest.raises(ValueError, match="final_values is None"):
        gae(R3, V3, NO, _at(2))


def test_gae_env_steps_hand_example():
    # T=2 chunks of C=2 env steps, one env, gamma = 0.5, lambda = 1, all values 1.
    # Flattened rewards [1, 2, 3, 0]; the episode terminates at sub-step (1, 0); (1, 1) is
    # an invalid padding step (reward 0, no flag).
    rewards = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]])  # [T=2, B=1, C=2]
    term = torch.zeros(2, 1, 2, dtype=torch.bool)
    term[1, 0, 0] = True
    trunc = torch.zeros_like(term)
    # delta_3 = 0 + 0.5*1 - 1 = -0.5; delta_2 = 3 + 0 - 1 = 2 (terminated)
    # delta_1 = 2 + 0.5*1 - 1 = 1.5;  delta_0 = 1 + 0.5*1 - 1 = 0.5
    # A_3 = -0.5; A_2 = 2; A_1 = 1.5 + 0.5*2 = 2.5; A_0 = 0.5 + 0.5*2.5 = 1.75
    expected = torch.tensor([[[1.75, 2.5]], [[2.0, -0.5]]])
    per_step_values = torch.ones(3, 1, 2)  # [T+1, B, C]
    per_chunk_values = torch.ones(3, 1)  # [T+1, B], shared by a chunk's sub-steps
    for values in (per_step_values, per_chunk_values):
        out = gae(rewards, values, term, trunc, gamma=0.5, gae_lambda=1.0)
        torch.testing.assert_close(out.advantages, expected)
        torch.testing.assert_close(out.returns, expected + 1.0)


def test_gae_env_steps_equals_flattened_chunk_call():
    g = torch.Generator().manual_seed(0)
    t, b, c = 5, 3, 4
    rewards = torch.randn(t, b, c, generator=g, dtype=torch.float64)
    values = torch.randn(t + 1, b, c, generator=g, dtype=torch.float64)
    term = torch.rand(t, b, c, generator=g) < 0.1
    trunc = torch.rand(t, b, c, generator=g) < 0.1
    fv = torch.randn(t, b, generator=g, dtype=torch.float64)
    out = gae(rewards, values, term, trunc, fv, gamma=0.97, gae_lambda=0.9)
    flat_v = torch.cat([flatten_env_steps(values[:-1]), values[-1:, :, 0]])
    flat = gae(
        flatten_env_steps(rewards), flat_v, flatten_env_steps(term), flatten_env_steps(trunc),
        fv.repeat_interleave(c, dim=0), gamma=0.97, gae_lambda=0.9,
    )
    torch.testing.assert_close(flatten_env_steps(out.advantages), flat.advantages)
    # Row order of the flattening: row t*C + c is sub-step c of chunk t.
    assert flatten_env_steps(rewards)[1 * c + 2, 1] == rewards[1, 1, 2]


@pytest.mark.parametrize("t", [1, 2, 7, 64, 257])
def test_gae_loop_and_scan_agree_on_random_data(t):
    g = torch.Generator().manual_seed(t)
    b = 6
    rewards = torch.randn(t, b, generator=g, dtype=torch.float64)
    values = torch.randn(t + 1, b, generator=g, dtype=torch.float64)
    term = torch.rand(t, b, generator=g) < 0.05
    trunc = torch.rand(t, b, generator=g) < 0.05
    fv = torch.randn(t, b, generator=g, dtype=torch.float64)
    loop = gae(rewards, values, term, trunc, fv, gamma=0.99, gae_lambda=0.95, vectorized=False)
    scan = gae(rewards, values, term, trunc, fv, gamma=0.99, gae_lambda=0.95, vectorized=True)
    torch.testing.assert_close(scan.advantages, loop.advantages, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(scan.returns, loop.returns, rtol=1e-12, atol=1e-12)


def test_reverse_scan_closed_form():
    # y_t = x_t + a * y_{t+1} with constant a = 0.5 and x = 1: y = [1.875, 1.75, 1.5, 1]
    x, a = torch.ones(4, 1), torch.full((4, 1), 0.5)
    expected = torch.tensor([[1.875], [1.75], [1.5], [1.0]])
    torch.testing.assert_close(reverse_scan(x, a), expected)
    torch.testing.assert_close(reverse_scan_loop(x, a), expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rewards=torch.zeros(3)), r"rewards must be \[T, B\]"),
        (dict(values=torch.zeros(3, 1)), r"values must have shape \(4, 1\)"),
        (dict(terminated=torch.zeros(2, 1, dtype=torch.bool)), "terminated must have the shape"),
        (dict(final_values=torch.zeros(4, 1)), r"final_values must be \[T, B\]"),
    ],
)
def test_gae_shape_errors(kwargs, match):
    args = dict(rewards=R3, values=V3, terminated=NO, truncated=NO, final_values=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gae(**args)


# ----------------------------------------------------------------------------- GRPO


def test_grpo_hand_example_two_groups():
    # Group "7" = envs 0-2, scores [1, 0, 0]: mean 1/3; deviations 2/3, -1/3, -1/3;
    # unbiased var = (4/9 + 1/9 + 1/9) / 2 = 1/3; std = 0.577350.
    # A = (2/3) / 0.577350 = 1.154701 and (-1/3) / 0.577350 = -0.577350.
    # Group "3" = envs 3-5, scores [1, 1, 1]: zero variance -> A = 0.
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    ids = torch.tensor([7, 7, 7, 3, 3, 3])
    dones = torch.zeros(3, 6, dtype=torch.bool)  # [T=3, B=6]
    dones[1, 0] = True  # env 0's episode ends at step 1
    dones[0, 1] = True  # env 1's at step 0; env 2 never ends inside the window
    dones[2, 1] = True  # a later done (next episode) must not re-open the mask
    out = grpo(scores, ids, dones, eps=0.0)
    a = torch.tensor([1.154701, -0.577350, -0.577350, 0.0, 0.0, 0.0])
    mask = torch.tensor(
        [[1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.float32
    )
    torch.testing.assert_close(out.loss_mask, mask)
    torch.testing.assert_close(out.advantages, a.expand(3, 6) * mask, rtol=0, atol=1e-5)
    assert out.returns is None and out.group_mask.all()
    assert not torch.isnan(out.advantages).any()


def test_grpo_without_std_division_and_uneven_groups():
    # Groups by id: {5: envs 0, 2 (scores 2, 4)}, {9: envs 1, 3, 4 (scores 0, 1, 1)}.
    # Means 3 and 2/3. Without std division A = s - mean: [-1, -2/3, 1, 1/3, 1/3].
    scores = torch.tensor([2.0, 0.0, 4.0, 1.0, 1.0])
    ids = torch.tensor([5, 9, 5, 9, 9])
    dones = torch.zeros(2, 5, dtype=torch.bool)
    out = grpo(scores, ids, dones, normalize_std=False)
    torch.testing.assert_close(out.advantages[0], torch.tensor([-1.0, -2 / 3, 1.0, 1 / 3, 1 / 3]))
    # With std: group 5 std = sqrt(((-1)^2 + 1^2) / 1) = 1.414214 -> A = -/+0.707107 (eps 1e-6)
    # group 9 std = sqrt((4/9 + 1/9 + 1/9) / 2) = 0.577350 -> A = -1.154701, 0.577350, 0.577350
    out = grpo(scores, ids, dones)
    torch.testing.assert_close(
        out.advantages[1], torch.tensor([-0.707107, -1.154701, 0.707107, 0.577350, 0.577350]),
        rtol=0, atol=1e-5,
    )


def test_grpo_singleton_group_and_zero_eps_give_zero_not_nan():
    out = grpo(torch.tensor([3.0, 1.0, 1.0]), torch.tensor([0, 1, 1]), torch.zeros(1, 3, dtype=torch.bool), eps=0.0)
    torch.testing.assert_close(out.advantages, torch.zeros(1, 3))


def test_grpo_success_filter_drops_groups_outside_range():
    # Mean success per group: id 0 -> 1/3 (kept), id 1 -> 1 (dropped), id 2 -> 0 (dropped).
    success = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    ids = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    returns = torch.tensor([5.0, 1.0, 0.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.0])
    dones = torch.zeros(2, 9, dtype=torch.bool)
    out = grpo(returns, ids, dones, success=success, success_range=(0.1, 0.9))
    assert out.group_mask.tolist() == [True] * 3 + [False] * 6
    assert out.loss_mask[:, 3:].sum() == 0 and out.advantages[:, 3:].abs().sum() == 0
    # Kept group scored by return: mean 2, unbiased std sqrt((9 + 1 + 4) / 2) = sqrt(7) = 2.645751
    # A = 3 / 2.645751 = 1.133893, -1 / 2.645751 = -0.377964, -2 / 2.645751 = -0.755929
    torch.testing.assert_close(
        out.advantages[0, :3], torch.tensor([1.133893, -0.377964, -0.755929]), rtol=0, atol=1e-5
    )
    with pytest.raises(ValueError, match="success_range"):
        grpo(returns, ids, dones, success_range=(0.9, 0.1))


def test_grpo_env_step_dones_mask_zero_after_done():
    dones = torch.zeros(2, 1, 3, dtype=torch.bool)  # [T=2, B=1, C=3]
    dones[0, 0, 1] = True  # time order (0,0) (0,1)* (0,2) (1,0) (1,1) (1,2)
    torch.testing.assert_close(
        mask_until_done(dones), torch.tensor([[[1.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]])
    )
    out = grpo(torch.tensor([2.0, 0.0]), torch.tensor([4, 4]), torch.zeros(2, 2, 3, dtype=torch.bool))
    # scores 2, 0: mean 1, unbiased std sqrt(2) -> A = +-1/sqrt(2) = +-0.707107 on every step
    assert out.advantages.shape == (2, 2, 3)
    torch.testing.assert_close(out.advantages[:, 0], torch.full((2, 3), 1 / math.sqrt(2)), rtol=0, atol=1e-5)


def test_grpo_shape_error_names_the_arguments():
    with pytest.raises(ValueError, match=r"grpo: scores must be \[B\]"):
        grpo(torch.zeros(4), torch.zeros(3, dtype=torch.int64), torch.zeros(2, 4, dtype=torch.bool))
