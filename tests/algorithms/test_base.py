"""Actor-side batch building: GAE over chunk steps with and without bootstrapping at truncation."""

import pytest
import torch

from rlinf_isaac.algorithms.base import build_train_batch
from rlinf_isaac.config.schema import AlgorithmConfig
from rlinf_isaac.data.requests import AdvantageRequest
from rlinf_isaac.data.trajectory import Trajectory


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


def _policy_traj(num_envs: int = 4, steps: int = 2):
    """A rollout of the real tiny policy (random init, C = 4): T chunk steps of B envs with
    stored forward inputs; env 0 succeeds (and terminates) at its last step, the others fail."""
    from rlinf_isaac.models.gr00t.policy_config import GR00TPolicyConfig
    from rlinf_isaac.models.registry import build_policy

    model = GR00TPolicyConfig(num_action_chunks=4)
    algo = AlgorithmConfig(gamma=1.0, gae_lambda=1.0, bootstrap_on_truncation=False)
    policy = build_policy(model, algo, seed=0)
    g = torch.Generator().manual_seed(0)
    records = []
    for _t in range(steps):
        obs = {"main_images": torch.randint(0, 256, (num_envs, 84, 84, 3), generator=g, dtype=torch.uint8),
               "wrist_images": torch.randint(0, 256, (num_envs, 84, 84, 3), generator=g, dtype=torch.uint8),
               "states": torch.rand(num_envs, 8, generator=g), "task_descriptions": ["stack"] * num_envs}
        _, extras = policy.predict(obs, mode="train", generator=g)
        records.append(extras)
    c = 4
    fwd = {k: torch.stack([r[k] for r in records]) for k in records[0] if k not in ("prev_logprobs", "prev_values")}
    success = torch.zeros(steps, num_envs, c, dtype=torch.bool)
    success[-1, 0, -1] = True
    truncated = torch.zeros(steps, num_envs, c, dtype=torch.bool)
    truncated[-1, 1:, -1] = True
    values = torch.cat([torch.stack([r["prev_values"] for r in records]), torch.zeros(1, num_envs)])
    traj = Trajectory(
        forward_inputs=fwd, logprobs=torch.stack([r["prev_logprobs"] for r in records]), values=values,
        rewards=success.float(), terminated=success.clone(), truncated=truncated,
        valid=torch.ones(steps, num_envs, c, dtype=torch.bool), success=success,
        final_values=torch.zeros(steps, num_envs), env_ids=torch.arange(num_envs))
    return traj, model, policy


def _actor(model, **algo_kw):
    from rlinf_isaac.config.schema import ActorConfig, OptimConfig
    from rlinf_isaac.workers.actor_worker import ActorWorker

    algo = AlgorithmConfig(gamma=1.0, gae_lambda=1.0, bootstrap_on_truncation=False, update_epochs=1, **algo_kw)
    cfg = ActorConfig(micro_batch_size=8, global_batch_size=8, model=model, optim=OptimConfig(lr=1e-3))
    return ActorWorker(cfg, algo, rank=0, world_size=1, max_steps=4)


def test_self_imitation_weights_the_executed_steps_of_successful_episodes():
    traj, _, _ = _policy_traj()
    batch, metrics = build_train_batch(traj, AlgorithmConfig(self_imitation_coef=0.5))
    w = batch.imitation_weights.reshape(2, 4, 4)  # [T, B, C]
    assert torch.equal(w[:, 0], torch.ones(2, 4)) and float(w[:, 1:].sum()) == 0.0
    assert metrics["rollout/imitation_frac"] == pytest.approx(0.25)
    plain, _ = build_train_batch(traj, AlgorithmConfig())
    assert plain.imitation_weights is None


def test_critic_warmup_trains_only_the_value_head_then_the_policy():
    traj, model, _ = _policy_traj()
    actor = _actor(model, critic_warmup_steps=1, self_imitation_coef=1.0)
    policy_params = {n: p.detach().clone() for n, p in actor.policy.named_parameters()
                     if p.requires_grad and not n.startswith("value_head.")}
    value_params = {n: p.detach().clone() for n, p in actor.policy.named_parameters() if n.startswith("value_head.")}
    assert policy_params and value_params
    actor.compute_advantages(AdvantageRequest([traj], []))
    m0 = actor.update(step=0)  # warm-up: the policy terms are logged, only the value head moves
    assert m0["actor/imitation_loss"] > 0
    params = dict(actor.policy.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in policy_params.items())
    assert any(not torch.equal(params[n], v) for n, v in value_params.items())
    actor.compute_advantages(AdvantageRequest([traj], []))
    actor.update(step=1)  # after it, PPO + self-imitation move the policy
    assert any(not torch.equal(params[n], v) for n, v in policy_params.items())


def test_cpu_update_uses_the_requested_threads_and_restores_the_count():
    import os

    from rlinf_isaac.config.schema import ActorConfig, OptimConfig
    from rlinf_isaac.config.structured import ConfigError
    from rlinf_isaac.workers.actor_worker import ActorWorker, update_threads

    cores = len(os.sched_getaffinity(0))
    assert update_threads(3, world_size=2) == 3
    assert update_threads(None, world_size=1) == cores
    assert update_threads(None, world_size=10 * cores) == 1  # shared among ranks, never 0
    with pytest.raises(ConfigError, match="actor.num_threads"):
        ActorConfig(micro_batch_size=8, global_batch_size=8, num_threads=0)

    traj, model, _ = _policy_traj()
    algo = AlgorithmConfig(gamma=1.0, gae_lambda=1.0, bootstrap_on_truncation=False, update_epochs=1)
    cfg = ActorConfig(micro_batch_size=8, global_batch_size=8, model=model, optim=OptimConfig(lr=1e-3), num_threads=3)
    actor = ActorWorker(cfg, algo, rank=0, world_size=1, max_steps=4)
    seen, step_fn = [], actor._optimizer_step
    actor._optimizer_step = lambda *a: (seen.append(torch.get_num_threads()), step_fn(*a))[1]
    before = torch.get_num_threads()
    actor.compute_advantages(AdvantageRequest([traj], []))
    actor.update(step=0)
    assert seen and set(seen) == {3}
    assert torch.get_num_threads() == before


def test_fused_adamw_makes_the_same_update_as_the_default_one():
    from rlinf_isaac.config.schema import ActorConfig, OptimConfig
    from rlinf_isaac.workers.actor_worker import ActorWorker

    traj, model, _ = _policy_traj()
    algo = AlgorithmConfig(gamma=1.0, gae_lambda=1.0, bootstrap_on_truncation=False, update_epochs=1)
    params, start = [], None
    for fused in (False, True):
        cfg = ActorConfig(micro_batch_size=8, global_batch_size=8, model=model,
                          optim=OptimConfig(lr=1e-3, weight_decay=0.01, fused=fused))
        actor = ActorWorker(cfg, algo, rank=0, world_size=1, max_steps=4)
        assert actor.optimizer.defaults["fused"] is (True if fused else None)
        start = start or {n: p.detach().clone() for n, p in actor.policy.named_parameters()}
        for step in range(2):
            actor.compute_advantages(AdvantageRequest([traj], []))
            actor.update(step=step)
        params.append({n: p.detach().clone() for n, p in actor.policy.named_parameters()})
    # two AdamW steps at lr 1e-3 move a weight by up to ~2e-3; the two kernels round differently, and
    # Adam's g / sqrt(v) scales rounding noise on near-zero gradients (e.g. attention key biases)
    # up to lr size: the updates agree within 2.5% of the largest step
    largest = max((params[0][n] - start[n]).abs().max().item() for n in start)
    assert largest > 5e-4
    assert max((params[0][n] - params[1][n]).abs().max().item() for n in start) < 5e-5
