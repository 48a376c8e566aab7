"""Flow-matching RL math: Euler sampler pinned, Flow-SDE drift, exact log-prob recomputation."""

import math

import pytest
import torch
from torch import nn

from rlinf_isaac.models.gr00t import flow_rl as F


class MLPVelocity(nn.Module):
    """A small real velocity net v(x_t, t) acting per action step."""

    def __init__(self, action_dim: int = 5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(action_dim + 1, 32), nn.Tanh(), nn.Linear(32, action_dim))

    def forward(self, x, t):
        tt = t.view(-1, 1, 1).expand(-1, x.shape[1], 1)  # [B] -> [B, C, 1]
        return self.net(torch.cat([x, tt], dim=-1))


def test_ode_constant_velocity_exact_euler():
    # v = 1 everywhere, x_0 = 0, K = 4, dt = 0.25: x_k = k / 4 exactly.
    chain = F.ode_sample(lambda x, t: torch.ones_like(x), torch.zeros(2, 3, 4), num_steps=4)
    assert chain.shape == (2, 5, 3, 4)
    for k in range(5):
        assert torch.equal(chain[:, k], torch.full((2, 3, 4), k / 4))


def test_ode_time_dependent_velocity_is_euler_not_exact_integral():
    # v = t: Euler gives sum_k dt * t_k = 0.25 * (0 + .25 + .5 + .75) = 0.375 (the exact ODE gives 0.5).
    def vel(x, t):
        return t.view(-1, 1, 1).expand_as(x)

    chain = F.ode_sample(vel, torch.zeros(1, 1, 1), num_steps=4)
    assert chain[0, -1, 0, 0].item() == 0.375


def test_sde_transition_hand_computed():
    # x=1, v=0, t=0.5, dt=0.25, a=0.5: g = 0.5 sqrt(0.5/0.5) = 0.5; score = -(1 - 0)/(0.5) = -2;
    # mu = 1 + 0.25 * (0 + 0.125 * -2) = 0.9375; std = 0.5 * sqrt(0.25) = 0.25.
    mu, std = F.sde_transition(torch.ones(1, 1, 1), torch.zeros(1, 1, 1), torch.tensor([0.5]), 0.25, 0.5)
    assert mu.item() == pytest.approx(0.9375, abs=1e-7)
    assert std.item() == pytest.approx(0.25, abs=1e-7)
    # At t = 0 the schedule is clamped to t = dt: g = 0.5 sqrt(1 / 0.25) = 1, std = 1 * 0.5.
    _, std0 = F.sde_transition(torch.ones(1, 1, 1), torch.zeros(1, 1, 1), torch.tensor([0.0]), 0.25, 0.5)
    assert std0.item() == pytest.approx(0.5, abs=1e-7)


def _gaussian_target_velocity(m: float, s: float):
    """Exact u(x, t) = E[x_1 - x_0 | x_t = x] for x_1 ~ N(m, s^2), x_0 ~ N(0, 1)."""

    def vel(x, t):
        t = t.view(-1, *([1] * (x.ndim - 1)))
        var_t = (1 - t) ** 2 + t**2 * s**2  # Var(x_t)
        cov = t * s**2 - (1 - t)  # Cov(x_1 - x_0, x_t)
        return m + cov / var_t * (x - t * m)

    return vel


def test_score_from_velocity_matches_gaussian_score():
    # For the Gaussian target the true score is -(x - t m) / Var(x_t); the drift uses -(x - t u)/(1-t).
    m, s = 0.7, 0.3
    vel = _gaussian_target_velocity(m, s)
    x = torch.linspace(-2, 2, 9).view(1, 9, 1)
    for t in (0.1, 0.5, 0.9):
        tt = torch.tensor([t])
        score_from_u = -(x - t * vel(x, tt)) / (1 - t)
        true_score = -(x - t * m) / ((1 - t) ** 2 + t**2 * s**2)
        assert torch.allclose(score_from_u, true_score, atol=1e-5)


def test_sde_with_every_step_stochastic_preserves_marginals():
    # Euler-Maruyama with the SDE drift from the exact velocity must end at N(m, s^2).
    torch.manual_seed(0)
    m, s, K, n = 0.7, 0.3, 200, 40000
    vel = _gaussian_target_velocity(m, s)
    x = torch.randn(n, 1, 1, dtype=torch.float64)
    for k in range(K):
        t = torch.full((n,), k / K, dtype=torch.float64)
        mu, std = F.sde_transition(x, vel(x.float(), t.float()).double(), t, 1.0 / K, 0.5)
        x = mu.double() + std.double() * torch.randn_like(x)
    # std error of the mean ~ 0.3/200 = 0.0015; discretisation O(dt).
    assert x.mean().item() == pytest.approx(m, abs=0.01)
    assert x.std().item() == pytest.approx(s, abs=0.01)


def test_gaussian_logprob_and_entropy_match_torch_distributions():
    x, mu, std = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.rand(2, 3, 4) + 0.1
    ref = torch.distributions.Normal(mu, std)
    assert torch.allclose(F.gaussian_logprob(x, mu, std), ref.log_prob(x), atol=1e-6)
    assert torch.allclose(F.gaussian_entropy(std), ref.entropy(), atol=1e-6)


def test_reduce_granularity_and_mask():
    elem = torch.arange(24, dtype=torch.float32).view(1, 4, 6)  # [B=1, C=4, A=6]
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[:2, :3] = True  # only the first 2 steps and 3 dims count
    per_action = F.reduce_granularity(elem, "action", mask)
    # step 0: 0+1+2 = 3; step 1: 6+7+8 = 21; steps 2, 3 masked out.
    assert per_action.tolist() == [[3.0, 21.0, 0.0, 0.0]]
    assert F.reduce_granularity(elem, "chunk", mask).tolist() == [24.0]
    with pytest.raises(ValueError, match="granularity"):
        F.reduce_granularity(elem, "token")


def test_flow_sde_single_stochastic_step_and_deterministic_rest():
    torch.manual_seed(0)
    vel = MLPVelocity(5)
    noise = torch.randn(6, 3, 5)
    j = torch.tensor([0, 1, 2, 3, 0, 3])
    with torch.no_grad():
        roll = F.flow_sde_sample(vel, noise, 4, 0.5, step_idx=j, generator=torch.Generator().manual_seed(1))
    chain = roll.chain
    assert chain.shape == (6, 5, 3, 5) and torch.equal(chain[:, 0], noise)
    for b in range(6):
        for k in range(4):
            t = torch.tensor([k / 4])
            with torch.no_grad():
                euler = chain[b : b + 1, k] + 0.25 * vel(chain[b : b + 1, k], t)
            same = torch.allclose(chain[b : b + 1, k + 1], euler, atol=1e-6)
            assert same == (k != int(j[b])), (b, k)


@pytest.mark.parametrize("granularity", ["chunk", "action"])
@pytest.mark.parametrize("method", ["flow_sde", "flow_noise"])
def test_recompute_logprob_equals_rollout(method, granularity):
    torch.manual_seed(0)
    vel, noise_net = MLPVelocity(5), F.NoiseStdNet(5, hidden=16)
    noise = torch.randn(8, 3, 5)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        if method == "flow_sde":
            roll = F.flow_sde_sample(vel, noise, 4, 0.5, generator=gen)
        else:
            roll = F.flow_noise_sample(vel, noise_net, noise, 4, generator=gen)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[:, 4] = False
    old = F.reduce_granularity(roll.logprob_elem, granularity, mask)
    new, ent = F.recompute_logprob(
        vel, roll.chain, method, granularity, step_idx=roll.step_idx, noise_level=0.5,
        noise_std_fn=noise_net, mask=mask,
    )
    assert new.shape == ((8,) if granularity == "chunk" else (8, 3)) == ent.shape
    assert new.requires_grad
    ratio = torch.exp(new - old)
    assert torch.equal(ratio, torch.ones_like(ratio))
    assert torch.isfinite(ent).all()


def test_flow_sde_logprob_is_log_normal_of_the_chosen_step():
    torch.manual_seed(0)
    vel = MLPVelocity(2)
    noise = torch.randn(1, 1, 2)
    j = torch.tensor([2])
    with torch.no_grad():
        roll = F.flow_sde_sample(vel, noise, 4, 0.7, step_idx=j)
        x2, x3 = roll.chain[0, 2], roll.chain[0, 3]
        mu, std = F.sde_transition(x2[None], vel(x2[None], torch.tensor([0.5])), torch.tensor([0.5]), 0.25, 0.7)
    ref = torch.distributions.Normal(mu[0], std[0]).log_prob(x3).sum()
    assert roll.logprob_elem.sum().item() == pytest.approx(ref.item(), abs=1e-5)
    # g(0.5) = 0.7, std = 0.35: entropy per dim = log 0.35 + 0.5 (1 + log 2 pi)
    assert roll.entropy_elem[0, 0, 0].item() == pytest.approx(math.log(0.35) + 0.5 * (1 + math.log(2 * math.pi)), abs=1e-6)


def test_flow_noise_std_bounds_and_trainable():
    net = F.NoiseStdNet(3, hidden=8, min_std=0.1, max_std=0.4)
    with torch.no_grad():
        net.mlp[-1].bias.fill_(50.0)
    x = torch.randn(4, 2, 3)
    std = net(x, torch.randn(4, 2, 3), torch.rand(4))
    assert std.shape == (4, 2, 3)
    assert torch.allclose(std, torch.full_like(std, 0.4))  # sigmoid saturates at max_std
    with torch.no_grad():
        net.mlp[-1].bias.fill_(-50.0)
    assert torch.allclose(net(x, x, torch.rand(4)), torch.full((4, 2, 3), 0.1))
    with pytest.raises(ValueError, match="min_std"):
        F.NoiseStdNet(3, min_std=0.5, max_std=0.2)


def test_flow_noise_entropy_gradient_reaches_noise_net():
    torch.manual_seed(0)
    vel, net = MLPVelocity(3), F.NoiseStdNet(3, hidden=8)
    with torch.no_grad():
        roll = F.flow_noise_sample(vel, net, torch.randn(2, 2, 3), 4)
    _, ent = F.recompute_logprob(vel, roll.chain, "flow_noise", "chunk", noise_std_fn=net)
    ent.sum().backward()
    assert net.mlp[-1].weight.grad.abs().sum() > 0
