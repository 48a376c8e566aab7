"""Actor-side batch building: GAE over chunk steps with and without bootstrapping at truncation."""

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
