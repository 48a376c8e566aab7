"""Env contract (envs/base.py) checked on every registered MuJoCo task."""

import pytest
import torch

from rlinf_isaac.envs.base import EpisodeStats
from rlinf_isaac.envs.registry import list_tasks, make_env

TASKS = list_tasks(backend="mujoco")


def _check_obs(obs, b, hw=24):
    assert obs["main_images"].shape == (b, hw, hw, 3) and obs["main_images"].dtype == torch.uint8
    assert obs["wrist_images"].shape == (b, hw, hw, 3) and obs["wrist_images"].dtype == torch.uint8
    assert obs["states"].shape == (b, 8) and obs["states"].dtype == torch.float32
    assert len(obs["task_descriptions"]) == b and all(isinstance(t, str) for t in obs["task_descriptions"])


@pytest.mark.parametrize("task_id", TASKS)
def test_auto_reset_contract(task_id):
    env = make_env(task_id, num_envs=2, image_size=24, max_episode_steps=3, seed=1)
    obs = env.reset(seed=1)
    _check_obs(obs, 2)
    res = env.chunk_step(torch.zeros(2, 5, 7))  # episodes truncate at step 3 (index 2)
    _check_obs(res.obs, 2)
    assert res.reward.shape == (2, 5) and res.reward.dtype == torch.float32
    assert res.truncated.tolist() == [[False, False, True, False, False]] * 2
    assert not res.terminated.any()
    assert res.info["valid"].tolist() == [[True, True, True, False, False]] * 2
    assert res.info["success"].shape == (2, 5) and not res.info["success"].any()
    ep: EpisodeStats = res.info["episode"]
    assert ep.done.tolist() == [True, True] and ep.episode_len.tolist() == [3, 3]
    final = res.info["final_obs"]
    _check_obs(final, 2)
    assert not torch.equal(final["main_images"], res.obs["main_images"])  # new episode started
    assert res.info["reset_state_ids"].dtype == torch.int64 and res.info["diverged"].tolist() == [False, False]
    res2 = env.chunk_step(torch.zeros(2, 2, 7))  # fresh episodes: all steps valid again
    assert res2.info["valid"].all() and res2.info["final_obs"] is None
    env.close()
    env.close()  # idempotent


@pytest.mark.parametrize("task_id", TASKS)
def test_frozen_without_auto_reset(task_id):
    env = make_env(task_id, num_envs=2, image_size=24, max_episode_steps=2, auto_reset=False)
    env.reset(env_ids=[0, 1])
    res = env.chunk_step(torch.zeros(2, 3, 7))
    assert res.truncated.tolist() == [[False, True, False]] * 2
    assert torch.equal(res.info["final_obs"]["main_images"], res.obs["main_images"])
    res2 = env.chunk_step(torch.zeros(2, 2, 7))
    assert not res2.info["valid"].any() and not res2.reward.any() and not res2.info["episode"].done.any()
    assert torch.equal(res2.obs["main_images"], res.obs["main_images"])
    env.reset(env_ids=[1])
    res3 = env.chunk_step(torch.zeros(2, 1, 7))
    assert res3.info["valid"].tolist() == [[False], [True]]
    env.close()
