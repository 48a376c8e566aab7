"""Rewarded Isaac Lab stack task configs (rlinf_isaac/tasks/isaaclab_stack.py) and cheap registration."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS, StackRewardCfg, add_stack_rewards
from tests.envs.isaaclab.fake_isaaclab import FakeStackEnv, RewardManager, RewardTermCfg


def test_each_id_resolves_to_both_isaaclab_spellings():
    for task_id, task in ISAACLAB_STACK_TASKS.items():
        assert (task_id in task.isaaclab_ids or task_id.endswith("-Rewarded-v0")) and len(task.isaaclab_ids) == 2
        assert task.isaaclab_ids[0].startswith("IsaacContrib-")  # 3.0 name first
        assert task.cosmos == ("Cosmos" in task_id)


def test_reward_weights_undo_isaaclab_dt_scaling():
    env = FakeStackEnv(num_envs=3)
    env.reset()
    cfg = add_stack_rewards(SimpleNamespace(rewards=None), StackRewardCfg("staged"), RewardTermCfg, env.step_dt)
    assert set(cfg.rewards) == {"success", "subtasks"}
    assert cfg.rewards["success"].weight == pytest.approx(1.0 / 0.05)  # weight / step_dt
    mgr = RewardManager(env, cfg.rewards)
    env.termination_manager.compute()
    env.termination_manager._term_dones["success"][:] = torch.tensor([True, False, False])
    env.held[:] = torch.tensor([-1, 1, 2])  # env 1 holds cube_2 (grasp_1), env 2 cube_3 (grasp_2)
    # r = f * (w / dt) * dt: env 0 success 1.0; env 1 grasp_1 0.002; env 2 grasp_2 0.002
    assert torch.allclose(mgr.compute(dt=env.step_dt), torch.tensor([1.0, 0.002, 0.002]), atol=1e-6)
    sparse = add_stack_rewards(SimpleNamespace(), StackRewardCfg("sparse"), RewardTermCfg, env.step_dt)
    assert set(sparse.rewards) == {"success"}


def test_shaped_reward_pays_the_change_of_the_subtask_potential_and_telescopes():
    env = FakeStackEnv(num_envs=2)
    env.reset()
    cfg = add_stack_rewards(SimpleNamespace(), StackRewardCfg("shaped"), RewardTermCfg, env.step_dt)
    assert set(cfg.rewards) == {"success", "progress"}
    mgr = RewardManager(env, cfg.rewards)
    on_blue = lambda e: env.cube_pos[e, 0] + torch.tensor([0.0, 0.0, 0.0468])  # noqa: E731

    def step(held, red_on_blue=(False, False), success=(False, False)):
        """One step of both envs with the given scene; returns the rewards [2]."""
        env.episode_length_buf += 1
        env.held[:] = torch.tensor(held)
        for e in range(2):
            env.cube_pos[e, 1] = on_blue(e) if red_on_blue[e] else torch.tensor([0.5, 0.3, 0.0234])
        env.termination_manager.compute()
        env.termination_manager._term_dones["success"][:] = torch.tensor(success)
        return mgr.compute(dt=env.step_dt)

    # potential: red held 1/6, red on blue 1/3, green held 1/6; env 1 stays idle (reward 0)
    rewards = [step([1, -1]),  # red grasped: +1/6
               step([1, -1]),  # still held: 0
               step([-1, -1], (True, False)),  # red placed on blue: 1/3 - 1/6
               step([2, -1], (True, False)),  # green grasped: + 1/6
               step([-1, -1], (True, False), (True, False))]  # success, green released: 1 - 1/6
    expected = [1 / 6, 0.0, 1 / 6, 1 / 6, 5 / 6]
    assert torch.allclose(torch.stack(rewards)[:, 0], torch.tensor(expected), atol=1e-6)
    assert torch.equal(torch.stack(rewards)[:, 1], torch.zeros(5))
    # the return telescopes to success + Phi(s_T) = 1 + 1/3
    assert float(torch.stack(rewards)[:, 0].sum()) == pytest.approx(1 + 1 / 3)
    # an auto-reset (episode_length_buf back to 0): the next step starts from potential 0, so a
    # start with red already held pays its potential once, not the difference to the last episode
    env.episode_length_buf[:] = 0
    assert torch.allclose(step([1, 1]), torch.tensor([1 / 6, 1 / 6]))


def test_reward_cfg_checks():
    with pytest.raises(ValueError, match="env.reward_type must be one of"):
        StackRewardCfg("dense")
    with pytest.raises(ValueError, match="not a success"):
        StackRewardCfg(success_term="cube_1_dropping")
    with pytest.raises(ValueError, match="potential_weights sum to 1.2"):
        StackRewardCfg("shaped", potential_weights={"grasp_1": 0.6, "stack_1": 0.6})


def test_registering_isaaclab_tasks_is_cheap():
    code = ("import sys, rlinf_isaac.tasks.isaaclab_stack as m; "
            "bad = [k for k in sys.modules if k.split('.')[0] in ('isaaclab', 'isaacsim', 'omni', 'gymnasium')] "
            "+ [k for k in ('rlinf_isaac.envs.isaaclab', 'rlinf_isaac.envs.isaaclab.sim.launch') if k in sys.modules]; "
            "print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_simulator_entry_imports_no_torch_before_the_builder():
    # 2.3 needs the AppLauncher before torch: the simulator process loads the server file
    # standalone (the package imports torch), exactly as SimulatorProcess starts it.
    from rlinf_isaac.envs.isaaclab import process
    from rlinf_isaac.envs.isaaclab.sim import server

    boot = process._BOOTSTRAP.format(path=server.__file__).replace(
        "sys.exit(mod.main(sys.argv[1:]))", "assert 'torch' not in sys.modules and 'rlinf_isaac' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", boot], check=True, capture_output=True, timeout=120)
