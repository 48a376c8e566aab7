"""The algorithm seam: algorithms are registered objects chosen by the estimator's name, a user
module registers an estimator from outside the package and a run trains with it."""

import pytest
import torch

from rlinf_isaac.algorithms import GRPO, PPO, build_algorithm, build_train_batch, list_algorithms
from rlinf_isaac.config import ConfigError, load_config
from rlinf_isaac.config.schema import AlgorithmConfig
from rlinf_isaac.data.trajectory import Trajectory

TOY = "tests.algorithms.toy_estimator"


def _episodes_traj(seed: int = 0, t: int = 6, b: int = 5, c: int = 2) -> Trajectory:
    """Random rewards and values with terminations and truncations (and their final values)."""
    g = torch.Generator().manual_seed(seed)
    term = torch.rand(t, b, c, generator=g) < 0.1
    trunc = (torch.rand(t, b, c, generator=g) < 0.1) & ~term
    return Trajectory(
        forward_inputs={"x": torch.zeros(t, b, 1)}, logprobs=torch.zeros(t, b),
        values=torch.rand(t + 1, b, generator=g), rewards=torch.rand(t, b, c, generator=g),
        terminated=term, truncated=trunc, valid=torch.ones(t, b, c, dtype=torch.bool),
        success=term, final_values=torch.rand(t, b, generator=g), env_ids=torch.arange(b))


def test_the_estimator_picks_its_registered_algorithm():
    assert {"ppo", "grpo"} <= set(list_algorithms())
    assert type(build_algorithm(AlgorithmConfig(adv_type="gae"))) is PPO
    assert type(build_algorithm(AlgorithmConfig(adv_type="grpo", group_size=2))) is GRPO


def test_user_estimator_equals_gae_at_lambda_one():
    """mc_return (tests/algorithms/toy_estimator.py: G_t - V(s_t), a plain loop) is GAE with
    lambda = 1, bootstrapping truncations with V(final obs) and the window's end with V(s_T)."""
    traj = _episodes_traj()
    kw = dict(gamma=0.9, normalize_advantages=False)
    ref, ref_metrics = build_train_batch(traj, AlgorithmConfig(adv_type="gae", gae_lambda=1.0, **kw))
    toy, toy_metrics = build_train_batch(traj, AlgorithmConfig(adv_type="mc_return", modules=[TOY], **kw))
    torch.testing.assert_close(toy.advantages, ref.advantages)
    torch.testing.assert_close(toy.returns, ref.returns)
    assert toy_metrics.keys() == ref_metrics.keys()


def test_unknown_names_list_the_registered_ones_and_modules_must_import():
    with pytest.raises(ConfigError, match=r"algorithm.adv_type: unknown advantage estimator 'rloo'; .*gae, grpo"):
        AlgorithmConfig(adv_type="rloo")
    with pytest.raises(ConfigError, match=r"algorithm.loss_type: unknown policy loss 'ppo2'; .*: ppo"):
        AlgorithmConfig(loss_type="ppo2")
    with pytest.raises(ConfigError, match=r"algorithm.value_loss_type: unknown value loss 'huber'; .*: clipped"):
        AlgorithmConfig(value_loss_type="huber")
    with pytest.raises(ConfigError, match=r"algorithm.modules: module 'no_such_mod' cannot be imported"):
        AlgorithmConfig(modules=["no_such_mod"])
    assert AlgorithmConfig(adv_type="mc_return", modules=[TOY]).adv_type == "mc_return"


def test_algorithm_checks_run_at_load_and_before_workers_start():
    with pytest.raises(ConfigError, match=r"algorithm.group_size = 1: expected >= 2 for adv_type=grpo"):
        load_config("mujoco_stack2_grpo_gr00t_tiny", ["algorithm.group_size=1"])


def test_a_run_trains_with_a_user_estimator(tmp_path):
    """One global step through Ray with the user estimator: the actor workers import the user
    module (algorithm.modules) and the step equals the built-in GAE at lambda = 1 exactly (same
    seeds, same rollout, same advantages, same update)."""
    pytest.importorskip("ray")
    from rlinf_isaac.runners.train_runner import TrainRunner

    small = ["actor.model.checkpoint_path=null", "env.train.total_num_envs=4", "env.eval.total_num_envs=4",
             "env.train.max_episode_steps=32", "actor.global_batch_size=8", "actor.micro_batch_size=4",
             "algorithm.update_epochs=1", "runner.max_steps=1", "runner.val_before_train=false",
             "runner.val_check_interval=-1", "algorithm.gae_lambda=1.0"]
    out = {}
    for est in ("gae", "mc_return"):
        cfg = load_config("cpu_quickstart", small + [f"runner.logger.log_path={tmp_path / est}",
                                                     f"algorithm.adv_type={est}", f"algorithm.modules=[{TOY}]"])
        runner = TrainRunner(cfg)
        try:
            out[est] = runner.run()
        finally:
            runner.close()
    for key in ("rollout/advantages_mean", "rollout/returns_mean", "actor/policy_loss", "actor/value_loss"):
        assert out["mc_return"][key] == pytest.approx(out["gae"][key], rel=1e-5, abs=1e-6), key
