"""examples/custom_task.py: a new task registered, built by make_env, stepped by the expert."""

import torch

from rlinf_isaac.envs.registry import get_task, list_tasks, make_env


def test_green_on_red_is_registered_and_meets_the_contract(example):
    mod = example("custom_task.py")
    tid = mod.register_green_on_red()
    assert mod.register_green_on_red() == tid  # idempotent
    assert tid in list_tasks("mujoco") and get_task(tid).backend == "mujoco"
    env = make_env(tid, num_envs=2, image_size=32, seed=3, auto_reset=False)
    try:
        obs = env.reset(seed=3)
        assert obs["main_images"].shape == (2, 32, 32, 3) and obs["main_images"].dtype == torch.uint8
        assert obs["states"].shape == (2, 8)
        assert obs["task_descriptions"] == ["Stack the green cube on the red cube."] * 2
        # The spawn box of the spec is used: both cube centres lie in x [0.42, 0.62], y [-0.15, 0.15].
        cubes = env.privileged_state()["cube_pos"]  # [B, 2, 3], robot base frame
        assert cubes.shape == (2, 2, 3)
        assert ((cubes[..., 0] >= 0.42 - 1e-6) & (cubes[..., 0] <= 0.62 + 1e-6)).all()
        assert (abs(cubes[..., 1]) <= 0.15 + 1e-6).all()
        res = env.chunk_step(torch.zeros(2, 3, 7))  # [B, C=3, A]
        assert res.reward.shape == (2, 3) and res.info["success"].shape == (2, 3)
        assert env.spec.max_episode_steps == mod.DEFAULT_MAX_STEPS == 250
    finally:
        env.close()


def test_run_demo_expert_stacks_green_on_red(example, capsys):
    out = example("custom_task.py").run_demo(num_envs=2, image_size=32, seed=0)
    printed = capsys.readouterr().out
    assert out["obs_shapes"]["main_images"] == (2, 32, 32, 3)
    assert out["reward_shape"] == (2, 4)  # first chunk: B = 2, C = 4 random actions
    # The scripted expert solves this one-pair task from both seeded starts (68 and 63 steps at 64 px).
    assert out["success"] == [True, True]
    assert "info keys: ['diverged', 'episode', 'final_obs', 'reset_state_ids', 'success', 'valid']" in printed


def test_num_workers_is_refused_with_the_key(example):
    mod = example("custom_task.py")
    try:
        mod.make_green_on_red_env(2, num_workers=2)
    except ValueError as e:
        assert "env.train.num_workers=2" in str(e)
    else:
        raise AssertionError("num_workers=2 must be refused")
