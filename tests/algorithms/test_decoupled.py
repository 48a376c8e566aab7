"""The decoupled PPO objective (rollout.overlap_update): hand-computed weights, its equivalence
with the weighted PPO loss, and the actor's proximal recompute (ratio exactly 1 at the first
optimizer step)."""

import math

import pytest
import torch

from rlinf_isaac.algorithms.base import TrainBatch
from rlinf_isaac.algorithms.decoupled import to_proximal
from rlinf_isaac.algorithms.losses import ppo_policy_loss
from rlinf_isaac.config.schema import AlgorithmConfig
from rlinf_isaac.data.requests import AdvantageRequest
from tests.algorithms.test_base import _actor, _policy_traj
from tests.fresh_interpreter import run_json_script


def _batch(behavior, advantages, mask=None):
    n = len(behavior)
    return TrainBatch(forward_inputs={"x": torch.zeros(n, 1)}, old_logprobs=torch.log(torch.tensor(behavior)),
                      advantages=torch.tensor(advantages), mask=torch.ones(n) if mask is None else torch.tensor(mask),
                      old_values=None, returns=None)


def test_weights_are_the_capped_likelihood_ratio_of_proximal_to_behaviour_policy():
    batch = _batch([0.5, 0.25, 0.4], [2.0, -1.0, 4.0])
    prox = torch.log(torch.tensor([0.5, 0.5, 0.1]))  # pi_prox / pi_behav = 1, 2, 0.25
    out, m = to_proximal(batch, prox, cap=1.5)
    torch.testing.assert_close(out.advantages, torch.tensor([2.0, -1.5, 1.0]))  # A x min(w, 1.5)
    assert torch.equal(out.old_logprobs, prox)  # the ratio is now taken against the proximal policy
    assert m["actor/behavior_weight_mean"] == pytest.approx((1 + 1.5 + 0.25) / 3)
    assert m["actor/behavior_weight_capped"] == pytest.approx(1 / 3)
    k3 = [(r - 1) - math.log(r) for r in (1.0, 2.0, 0.25)]  # KL(behaviour || proximal) estimate
    assert m["actor/behavior_kl"] == pytest.approx(sum(k3) / 3, rel=1e-6)
    assert torch.equal(batch.advantages, torch.tensor([2.0, -1.0, 4.0]))  # the input batch is unchanged


def test_action_level_logprobs_weight_each_action_of_a_chunk_level_advantage():
    batch = TrainBatch(forward_inputs={}, old_logprobs=torch.zeros(2, 3), advantages=torch.tensor([1.0, -2.0]),
                       mask=torch.ones(2, 3), old_values=None, returns=None)
    prox = torch.log(torch.tensor([[1.0, 2.0, 0.5], [1.0, 1.0, 3.0]]))
    out, _ = to_proximal(batch, prox, cap=2.0)
    torch.testing.assert_close(out.advantages, torch.tensor([[1.0, 2.0, 0.5], [-2.0, -2.0, -4.0]]))
    with pytest.raises(ValueError, match="do not match"):
        to_proximal(batch, torch.zeros(2), cap=2.0)


def test_the_weighted_ppo_loss_is_the_decoupled_objective():
    """-mean(w * min(r A, clip(r) A)) with r = pi_theta / pi_prox, by hand, for ratios inside and
    outside the clip range and both signs of A, with the dual clip on."""
    behavior, prox = [0.5, 0.5, 0.2, 0.4], [0.5, 0.6, 0.1, 0.4]
    adv, mask = [1.0, -1.0, 2.0, -3.0], [1.0, 1.0, 1.0, 0.0]
    out, _ = to_proximal(_batch(behavior, adv, mask), torch.log(torch.tensor(prox)), cap=5.0)
    ratios = [1.5, 0.9, 1.1, 0.5]  # pi_theta / pi_prox
    logp = torch.log(torch.tensor(prox) * torch.tensor(ratios))
    loss, m = ppo_policy_loss(logp, out.old_logprobs, out.advantages, out.mask,
                              clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0)
    expect = 0.0
    for b, p, a, r, k in zip(behavior, prox, adv, ratios, mask):
        w = min(p / b, 5.0)
        per = -min(r * a, min(max(r, 0.8), 1.28) * a)
        if a < 0:
            per = min(per, -a * 3.0)  # dual clip
        expect += k * w * per
    assert float(loss) == pytest.approx(expect / sum(mask), rel=1e-6)
    assert float(m["actor/ratio_mean"]) == pytest.approx((1.5 + 0.9 + 1.1) / 3, rel=1e-6)


def _first_step_ratios(actor, step, proximal):
    """The ratio pi_theta / pi_old of every decision of the update's first optimizer step."""
    seen, loss_fn = [], actor.algorithm.policy_loss

    def spy(logprobs, old_logprobs, *a, **kw):
        seen.append(torch.exp(logprobs.detach() - old_logprobs))
        return loss_fn(logprobs, old_logprobs, *a, **kw)

    actor.algorithm.policy_loss = spy
    try:
        metrics = actor.update(step=step, proximal=proximal)
    finally:
        actor.algorithm.policy_loss = loss_fn
    return seen[0], metrics


def test_the_proximal_recompute_makes_the_first_ratio_exactly_one_on_and_off_policy():
    traj, model, policy = _policy_traj(num_envs=4, steps=4)  # 16 decisions, minibatches of 8
    actor = _actor(model)
    actor.policy.load_state_dict(policy.state_dict())  # the weights that collected the rollout
    # on-policy (the weights that collected the rollout): weights 1 and the first ratio exactly 1
    actor.compute_advantages(AdvantageRequest([traj], []))
    ratio, m = _first_step_ratios(actor, step=0, proximal=True)
    assert torch.equal(ratio, torch.ones_like(ratio))
    assert m["actor/behavior_weight_mean"] == pytest.approx(1.0, abs=1e-5) and m["actor/behavior_kl"] < 1e-9
    # the same rollout one update later (what overlap_update trains on): the behaviour policy lags,
    # the weights move off 1, and the first ratio against the proximal policy is still exactly 1
    actor.compute_advantages(AdvantageRequest([traj], []))
    ratio, m = _first_step_ratios(actor, step=1, proximal=True)
    assert torch.equal(ratio, torch.ones_like(ratio))
    assert m["actor/behavior_kl"] > 1e-9 and m["actor/behavior_weight_mean"] != pytest.approx(1.0, abs=1e-7)
    # without the recompute the ratio against the lagging behaviour policy is not 1
    actor.compute_advantages(AdvantageRequest([traj], []))
    ratio, m = _first_step_ratios(actor, step=2, proximal=False)
    assert not torch.equal(ratio, torch.ones_like(ratio)) and "actor/behavior_kl" not in m


@pytest.mark.gpu
def test_the_proximal_recompute_makes_the_first_ratio_exactly_one_on_cuda():
    from rlinf_isaac.config.schema import ActorConfig, OptimConfig
    from rlinf_isaac.workers.actor_worker import ActorWorker

    traj, model, _ = _policy_traj(num_envs=4, steps=4)
    traj.forward_inputs = {k: v.cuda() for k, v in traj.forward_inputs.items()}  # as fetched onto the actor's GPU
    algo = AlgorithmConfig(gamma=1.0, gae_lambda=1.0, bootstrap_on_truncation=False, update_epochs=1)
    cfg = ActorConfig(micro_batch_size=4, global_batch_size=8, model=model, optim=OptimConfig(lr=1e-3))
    actor = ActorWorker(cfg, algo, rank=0, world_size=1, max_steps=4, device="cuda")
    for step in range(2):  # the second update trains on a rollout one update behind
        actor.compute_advantages(AdvantageRequest([traj], []))
        ratio, _ = _first_step_ratios(actor, step=step, proximal=True)
        assert torch.equal(ratio, torch.ones_like(ratio))


def test_overlap_update_refuses_offloading():
    from rlinf_isaac.config import ConfigError, load_config

    load_config("cpu_quickstart", ["rollout.overlap_update=true"])
    for key in ("rollout.enable_offload", "actor.enable_offload"):
        with pytest.raises(ConfigError, match=f"{key}.*overlap_update"):
            from rlinf_isaac.config.schema import validate

            validate(load_config("cpu_quickstart", ["rollout.overlap_update=true", f"{key}=true"]),
                     env_ranks=1, actor_ranks=1)


def test_behavior_weight_cap_below_one_is_refused():
    from rlinf_isaac.config import ConfigError

    with pytest.raises(ConfigError, match="algorithm.behavior_weight_cap"):
        AlgorithmConfig(behavior_weight_cap=0.5)


_COMPILED_UPDATE = """
import dataclasses, json, sys, torch
from rlinf_isaac.config.schema import ActorConfig, AlgorithmConfig, OptimConfig
from rlinf_isaac.data.requests import AdvantageRequest
from rlinf_isaac.workers.actor_worker import ActorWorker
from tests.algorithms.test_base import _policy_traj
from tests.algorithms.test_decoupled import _first_step_ratios

device = sys.argv[1]
traj, model, policy = _policy_traj(num_envs=4, steps=4)  # collected by the eager policy
traj.forward_inputs = {k: v.to(device) for k, v in traj.forward_inputs.items()}
algo = AlgorithmConfig(gamma=1.0, gae_lambda=1.0, bootstrap_on_truncation=False, update_epochs=1)
cfg = ActorConfig(micro_batch_size=4, global_batch_size=8, optim=OptimConfig(lr=1e-3),
                  model=dataclasses.replace(model, compile_action_head=True))
actor = ActorWorker(cfg, algo, rank=0, world_size=1, max_steps=4, device=device)
actor.policy.load_state_dict(policy.state_dict())
out = {"compiled": actor.policy.model.action_head.model._compiled_call_impl is not None,
       "same_names": list(actor.policy.state_dict()) == list(policy.state_dict())}
for step in range(2):
    actor.compute_advantages(AdvantageRequest([traj], []))
    ratio, m = _first_step_ratios(actor, step=step, proximal=False)
    out[f"ratio_exact_{step}"] = torch.equal(ratio, torch.ones_like(ratio))
    out[f"kl_{step}"] = m["actor/behavior_kl"]
print(json.dumps(out))
"""


def _check_compiled_update(device: str) -> None:
    r = run_json_script(_COMPILED_UPDATE, device)
    assert r["compiled"] and r["same_names"]
    # the first ratio of every update is exactly 1: the old log-probs were recomputed by the
    # compiled training graph (on-policy at step 0, one update behind at step 1)
    assert r["ratio_exact_0"] and r["ratio_exact_1"]
    assert r["kl_0"] < 1e-6 < r["kl_1"]  # rounding only, then the lag of one update


def test_compiled_action_head_recomputes_the_old_logprobs_so_the_first_ratio_is_exactly_one():
    """actor.model.compile_action_head (~1-2 min of compiling forward and backward on 2 cores)."""
    _check_compiled_update("cpu")


@pytest.mark.gpu
def test_compiled_action_head_keeps_the_first_ratio_exactly_one_on_cuda():
    _check_compiled_update("cuda")
