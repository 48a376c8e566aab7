"""Actor-side batch building: GAE over chunk steps with and without bootstrapping at truncation."""

import pytest
import torch

from rlinf_isaac.config.schema import AlgorithmConfig
from rlinf_isaac.workers.actor_worker import build_train_batch
from rlinf_isaac.workers.trajectory import Trajectory


def _truncated_traj() -> Trajectory:
    """One env, two chunk steps of C=2, no reward, truncated at the end; V = 0.5 everywhere."""
    t, b, c = 2, 1, 2
    trunc = torch.zeros(t, b, c, dtype=torch.bool)
    trunc[1, 0, 1] = True
    return Trajectory(
        forward_inputs={"x": torch.zeros(t, b, 1)}, logprobs=torch.zeros(t, b),
        values=torch.full((t + 1, b), 0.5), rewards=torch.zeros(t, b, c),
        terminated=torch.zeros(t, b, c, dtype=torch.bool), truncated=trunc,
        valid=torch.ones(t, b, c, dtype=torch.bool), success=torch.zeros(t, b, c, dtype=torch.bool),
        final_values=torch.tensor([[0.0], [0.5]]), env_ids=torch.arange(b))


def test_truncation_bootstraps_by_default_and_not_when_the_time_limit_is_the_task():
    kw = dict(gamma=1.0, gae_lambda=1.0, normalize_advantages=False)
    boot, _ = build_train_batch(_truncated_traj(), AlgorithmConfig(**kw))
    # return = 0 + V(final obs) = 0.5 at both steps: advantage 0
    torch.testing.assert_close(boot.returns, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(boot.advantages, torch.zeros(2))
    cut, _ = build_train_batch(_truncated_traj(), AlgorithmConfig(bootstrap_on_truncation=False, **kw))
    # a failed (truncated) episode returns 0: the critic's 0.5 is an over-estimate, advantage -0.5
    torch.testing.assert_close(cut.returns, torch.zeros(2))
    torch.testing.assert_close(cut.advantages, torch.full((2,), -0.5))


def test_grpo_seq_mean_removes_the_tilt_toward_long_failed_episodes():
    """GRPO, one group of two: a success after 1 decision (advantage +0.5), a failure that runs
    all 3 (advantage -0.5). Averaged over decisions the advantage is -0.25 (failures dominate);
    with seq-mean-token-mean each episode weighs the same and it is 0."""
    t, b, c = 3, 2, 1
    rewards = torch.zeros(t, b, c)
    rewards[0, 0, 0] = 1.0
    terminated = torch.zeros(t, b, c, dtype=torch.bool)
    terminated[0, 0, 0] = True
    truncated = torch.zeros(t, b, c, dtype=torch.bool)
    truncated[2, 1, 0] = True
    valid = torch.ones(t, b, c, dtype=torch.bool)
    valid[1:, 0] = False  # env 0 is done after its first decision (no auto-reset in GRPO)
    traj = Trajectory(
        forward_inputs={"x": torch.zeros(t, b, 1)}, logprobs=torch.zeros(t, b),
        values=torch.zeros(t + 1, b), rewards=rewards, terminated=terminated, truncated=truncated,
        valid=valid, success=rewards.bool(), final_values=torch.zeros(t, b), env_ids=torch.arange(b))
    kw = dict(adv_type="grpo", group_size=2, normalize_advantages=False, grpo_normalize_std=False,
              gamma=1.0, gae_lambda=1.0)
    token, _ = build_train_batch(traj, AlgorithmConfig(**kw))
    assert token.policy_weights is None
    # advantages +0.5 / -0.5 (scores 1 and 0, group mean 0.5); decisions: 1 of env 0, 3 of env 1
    assert float((token.advantages * token.mask).sum() / token.mask.sum()) == pytest.approx(-0.25)
    seq, _ = build_train_batch(traj, AlgorithmConfig(loss_agg_func="seq-mean-token-mean", **kw))
    w = seq.policy_weights
    assert float((seq.advantages * w).sum() / w.sum()) == pytest.approx(0.0, abs=1e-7)
    assert float(w.sum()) == pytest.approx(float(seq.mask.sum()))
