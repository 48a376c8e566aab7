"""PPO policy/value losses, entropy bonus and explained variance on hand-computed numbers."""

import math

import pytest
import torch

from rlinf_isaac.algorithms.losses import (
    clipped_value_loss,
    entropy_bonus,
    explained_variance,
    masked_mean,
    ppo_policy_loss,
)


def _logprobs_for(ratios):
    """logprobs (with grad) and old logprobs whose ratio exp(lp - old) equals ``ratios``."""
    old = torch.full((len(ratios),), -1.0)
    lp = (old + torch.log(torch.tensor(ratios))).requires_grad_(True)
    return lp, old


def test_ratio_one_gives_minus_mean_advantage():
    lp = torch.randn(4, 3)
    adv = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 2.0, 2.0], [-4.0, 1.0, 0.0]])
    loss, m = ppo_policy_loss(lp, lp.clone(), adv)
    torch.testing.assert_close(loss, -adv.mean())  # sum = 4.5 over 12 -> -0.375
    torch.testing.assert_close(loss, torch.tensor(-0.375))
    assert m["actor/pg_clipfrac"] == 0 and m["actor/approx_kl"] == 0 and m["actor/ratio_mean"] == 1


def test_clip_fraction_loss_kl_and_gradient_hand_example():
    # ratios [1.5, 0.5, 1.1, 0.5], advantages [1, 1, -1, -1], clip 0.2:
    #  e0: -A r = -1.5, -A clip(r) = -1.2 -> max -1.2 (clipped)
    #  e1: -0.5 vs -0.8 -> -0.5 (not clipped)
    #  e2: 1.1 vs 1.1 -> 1.1 (not clipped)
    #  e3: 0.5 vs 0.8 -> 0.8 (clipped)
    # loss = (-1.2 - 0.5 + 1.1 + 0.8) / 4 = 0.05; clipfrac = 2/4
    lp, old = _logprobs_for([1.5, 0.5, 1.1, 0.5])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, m = ppo_policy_loss(lp, old, adv, clip_ratio_low=0.2, clip_ratio_high=0.2)
    torch.testing.assert_close(loss, torch.tensor(0.05))
    torch.testing.assert_close(m["actor/pg_clipfrac"], torch.tensor(0.5))
    # k3 = r - 1 - log r: 0.094535, 0.193147, 0.004690, 0.193147 -> mean 0.121380
    torch.testing.assert_close(m["actor/approx_kl"], torch.tensor(0.121380), rtol=0, atol=1e-5)
    torch.testing.assert_close(m["actor/ratio_mean"], torch.tensor(0.9))  # 3.6 / 4
    loss.backward()
    # d/dlp of -A r / 4 = -A r / 4: e1 -> -0.5/4 = -0.125, e2 -> 1.1/4 = 0.275; clipped -> 0
    torch.testing.assert_close(lp.grad, torch.tensor([0.0, -0.125, 0.275, 0.0]))


def test_asymmetric_clip():
    # r = 1.25, A = 1: inside [0.8, 1.28] -> -1.25; with symmetric 0.2 it is clipped to -1.2.
    # r = 0.5, A = -1: lower bound 1 - 0.2 = 0.8 -> 0.8.  r = 1.5, A = 1 -> -1.28.
    lp, old = _logprobs_for([1.25, 0.5, 1.5])
    adv = torch.tensor([1.0, -1.0, 1.0])
    loss, m = ppo_policy_loss(lp, old, adv, clip_ratio_low=0.2, clip_ratio_high=0.28)
    torch.testing.assert_close(loss, torch.tensor((-1.25 + 0.8 - 1.28) / 3))
    torch.testing.assert_close(m["actor/pg_clipfrac"], torch.tensor(2 / 3))
    sym, _ = ppo_policy_loss(lp, old, adv, clip_ratio_low=0.2, clip_ratio_high=0.2)
    torch.testing.assert_close(sym, torch.tensor((-1.2 + 0.8 - 1.2) / 3))


def test_dual_clip_bounds_negative_advantage_loss():
    # c = 3. r = 5, A = -1: max(5, 1.2) = 5 > 3 -> 3 (dual clip active).
    # r = 5, A = +1: max(-5, -1.2) = -1.2 (dual clip only for A < 0).
    # r = 2, A = -1: max(2, 1.2) = 2 < 3 -> 2.
    lp, old = _logprobs_for([5.0, 5.0, 2.0])
    adv = torch.tensor([-1.0, 1.0, -1.0])
    loss, m = ppo_policy_loss(lp, old, adv, clip_ratio_c=3.0)
    torch.testing.assert_close(loss, torch.tensor((3.0 - 1.2 + 2.0) / 3))
    torch.testing.assert_close(m["actor/dual_clipfrac"], torch.tensor(1 / 3))
    no_dual, m = ppo_policy_loss(lp, old, adv)
    assert "actor/dual_clipfrac" not in m
    torch.testing.assert_close(no_dual, torch.tensor((5.0 - 1.2 + 2.0) / 3))
    loss.backward()
    assert lp.grad[0] == 0  # the dual-clipped entry is a constant -A * c
    with pytest.raises(ValueError, match="clip_ratio_c must be > 1"):
        ppo_policy_loss(lp, old, adv, clip_ratio_c=0.5)


def test_mask_chunk_level_over_action_level_logprobs():
    # logprobs [T=2, B=2, C=2]; mask [T, B] hides (t=1, b=0) whose entries are extreme.
    lp = torch.zeros(2, 2, 2)
    old = torch.zeros(2, 2, 2)
    lp[1, 0] = 50.0
    adv = torch.tensor([[1.0, 2.0], [100.0, 3.0]])  # [T, B], broadcast over C
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    loss, m = ppo_policy_loss(lp, old, adv, mask)
    # ratio 1 on kept entries: loss = -mean over 6 kept entries of A = -(1+1+2+2+3+3)/6 = -2
    torch.testing.assert_close(loss, torch.tensor(-2.0))
    assert m["actor/ratio_mean"] == 1 and m["actor/pg_clipfrac"] == 0


def test_masked_mean_empty_mask_is_zero():
    assert masked_mean(torch.ones(3, 2), torch.zeros(3, 2)) == 0
    # [T, B] mask over [T, B, C] values: (1+2) * C=2 entries kept / 4 -> (2*1 + 2*2)/4 = 1.5
    x = torch.tensor([[[1.0, 1.0]], [[2.0, 2.0]]])
    assert masked_mean(x, torch.ones(2, 1)) == 1.5


# ------------------------------------------------------------------------ value loss

V = torch.tensor([1.0, 2.0, 0.0])
V_OLD = torch.tensor([0.5, 2.5, 0.0])
RET = torch.tensor([2.0, 1.0, 0.3])


def test_clipped_value_loss_hand_example():
    # e0: unclipped 0.5*(1-2)^2 = 0.5; V_clip = 0.5 + 0.2 = 0.7 -> 0.5*1.3^2 = 0.845 (active)
    # e1: unclipped 0.5*(2-1)^2 = 0.5; V_clip = 2.5 - 0.2 = 2.3 -> 0.845 (active)
    # e2: 0.5*0.3^2 = 0.045 both (inactive). loss = 1.735 / 3
    loss, m = clipped_value_loss(V, V_OLD, RET, value_clip=0.2)
    torch.testing.assert_close(loss, torch.tensor(1.735 / 3))
    torch.testing.assert_close(m["actor/value_clip_ratio"], torch.tensor(2 / 3))
    torch.testing.assert_close(m["actor/value_loss"], loss)
    # EV of the rollout values: R - V_old = [1.5, -1.5, 0.3], mean 0.1, Var = (1.96 + 2.56
    # + 0.04)/3 = 1.52; R mean 1.1, Var = (0.81 + 0.01 + 0.64)/3 = 0.486667 -> 1 - 1.52/0.486667
    torch.testing.assert_close(m["actor/explained_variance"], torch.tensor(1 - 1.52 / 0.486667), rtol=1e-5, atol=1e-5)


def test_value_clip_never_lowers_the_loss():
    # V = 1.0, V_old = 0.5, R = 0.8: unclipped 0.5*0.04 = 0.02, clipped V 0.7 -> 0.005.
    loss, m = clipped_value_loss(torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([0.8]))
    torch.testing.assert_close(loss, torch.tensor(0.02))
    assert m["actor/value_clip_ratio"] == 0


def test_huber_value_loss_and_no_clip():
    # Huber delta 1: e0 max(huber(-1)=0.5, huber(-1.3)=1.3-0.5=0.8) = 0.8; e1 0.8; e2 0.045
    loss, _ = clipped_value_loss(V, V_OLD, RET, value_clip=0.2, huber_delta=1.0)
    torch.testing.assert_close(loss, torch.tensor(1.645 / 3))
    # No clip: 0.5 * mean squared error = (0.5 + 0.5 + 0.045) / 3
    loss, m = clipped_value_loss(V, V_OLD, RET, value_clip=None)
    torch.testing.assert_close(loss, torch.tensor(1.045 / 3))
    assert m["actor/value_clip_ratio"] == 0
    with pytest.raises(ValueError, match="huber_delta must be > 0"):
        clipped_value_loss(V, V_OLD, RET, huber_delta=0.0)


def test_value_loss_gradient_flows_only_through_active_branch():
    v = V.clone().requires_grad_(True)
    loss, _ = clipped_value_loss(v, V_OLD, RET, value_clip=0.2)
    loss.backward()
    # e0, e1 take the clipped branch whose V_clip is constant in V -> grad 0.
    # e2: d/dV 0.5*(V - R)^2 / 3 = (0 - 0.3)/3 = -0.1
    torch.testing.assert_close(v.grad, torch.tensor([0.0, 0.0, -0.1]))


# ----------------------------------------------------------- entropy and explained var


def test_entropy_bonus():
    term, m = entropy_bonus(torch.tensor([1.0, 2.0, 3.0]), coef=0.01)
    torch.testing.assert_close(term, torch.tensor(-0.02))  # -0.01 * mean 2
    torch.testing.assert_close(m["actor/entropy"], torch.tensor(2.0))


def test_explained_variance():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])  # Var[R] = 1.25
    assert explained_variance(r.clone(), r) == 1.0
    assert explained_variance(torch.full((4,), 2.5), r) == 0.0
    # V = [2, 1, 4, 3]: R - V = [-1, 1, -1, 1], Var = 1 -> EV = 1 - 1/1.25 = 0.2
    torch.testing.assert_close(explained_variance(torch.tensor([2.0, 1.0, 4.0, 3.0]), r), torch.tensor(0.2))
    # Mask out the last entry: R = [1, 2, 3] Var 2/3; V = [2, 1, 4]: R-V = [-1, 1, -1],
    # mean -1/3, Var = (4/9 + 16/9 + 4/9)/3 = 8/9 -> EV = 1 - (8/9)/(2/3) = -1/3
    ev = explained_variance(torch.tensor([2.0, 1.0, 4.0, 0.0]), r, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    torch.testing.assert_close(ev, torch.tensor(-1 / 3))
    assert math.isnan(float(explained_variance(r, torch.ones(4))))


def test_sequence_mean_weights_give_every_episode_the_same_weight():
    from rlinf_isaac.algorithms.losses import sequence_mean_weights

    # column 0: an episode of 2 steps ends at t=1, the next runs t=2..3 (not ended);
    # column 1: one episode of 3 steps ends at t=2, t=3 is masked (after done)
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    ends = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    w = sequence_mean_weights(mask, ends)
    # sum(mask) = 7 over E = 3 episodes: each weighs 7/3, spread over its L_e entries
    expected = torch.tensor([[7 / 6, 7 / 9], [7 / 6, 7 / 9], [7 / 6, 7 / 9], [7 / 6, 0.0]])
    torch.testing.assert_close(w, expected)
    assert float(w.sum()) == pytest.approx(7.0)  # as the mask's own sum
    x = torch.tensor([[1.0, 3.0], [1.0, 3.0], [2.0, 3.0], [2.0, 9.0]])
    # the weighted mean is the mean over episodes of each episode's mean: (1 + 2 + 3) / 3
    assert float(masked_mean(x, w)) == pytest.approx(2.0)
    # action-level mask [T, B, C]: an episode's length counts its valid actions
    w3 = sequence_mean_weights(mask[..., None].expand(4, 2, 2), ends)
    torch.testing.assert_close(w3, expected[..., None].expand(4, 2, 2) / 1.0)
    with pytest.raises(ValueError, match="does not match"):
        sequence_mean_weights(mask, ends[:3])


def test_successful_episode_steps_marks_every_step_of_a_won_episode():
    from rlinf_isaac.algorithms.losses import successful_episode_steps

    # T=3 chunks of C=2 steps, 2 envs. Env 0: episode 1 wins at (t=1, c=0) (the rest of that
    # chunk is invalid), episode 2 starts at t=2 and the rollout cuts it. Env 1: episode 1 fails
    # (truncated at t=1, c=1), episode 2 wins at its first step (t=2, c=0).
    t, b, c = 3, 2, 2
    success = torch.zeros(t, b, c, dtype=torch.bool)
    dones = torch.zeros(t, b, c, dtype=torch.bool)
    valid = torch.ones(t, b, c, dtype=torch.bool)
    success[1, 0, 0] = dones[1, 0, 0] = True
    valid[1, 0, 1] = False
    dones[1, 1, 1] = True
    success[2, 1, 0] = dones[2, 1, 0] = True
    valid[2, 1, 1] = False
    w = successful_episode_steps(success, dones, valid)
    expected = torch.zeros(t, b, c)
    expected[0, 0] = 1.0
    expected[1, 0, 0] = 1.0  # env 0's first episode; its invalid step and the cut episode stay 0
    expected[2, 1, 0] = 1.0  # env 1's second episode only
    torch.testing.assert_close(w, expected)
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        successful_episode_steps(success[..., 0], dones[..., 0], valid[..., 0])
