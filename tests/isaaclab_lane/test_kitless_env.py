"""A real kit-less Isaac Lab 3.0 ``ManagerBasedRLEnv`` (Newton physics + Newton Warp cameras on
CPU) through our adapter: images, our reward terms, the ``success`` termination, done buffers.

The scene is the stand-in of ``kitless_scene.py`` (procedural table, cubes and a gantry robot in
place of the Franka, which is not available offline). Slow: the first env of a machine compiles
Warp kernels for minutes (cached in ~/.cache/warp afterwards); each env step takes ~0.5 s on CPU.
"""

import os
import time

import pytest

pytest.importorskip("isaaclab")
pytest.importorskip("isaaclab_newton")

import torch  # noqa: E402

from rlinf_isaac.envs.isaaclab import IsaacLabEnv, IsaacLabEnvCfg  # noqa: E402
from rlinf_isaac.envs.isaaclab.sim.stepper import ChunkStepper, StepperCfg  # noqa: E402
from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDER = "tests.isaaclab_lane.kitless_scene:build_kitless_env"
TASK = "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor"
H, W = 48, 64
# Staged reward on a step where the three cubes stand stacked and the gripper is open:
# success 1.0 + stack_1 0.005 (grasp_1, grasp_2 are 0: the jaws are open) = 1.005.
STACKED_STEP_REWARD = 1.0 + 0.005


def _actions(c: int, b: int = 2) -> torch.Tensor:
    """Hold still with the gripper open: float [B, C, A] (arm deltas 0, gripper +1)."""
    acts = torch.zeros(b, c, 7)
    acts[..., 6] = 1.0
    return acts


def _assert_images(img: torch.Tensor) -> None:
    """uint8 [B, H, W, 3], every env's image non-constant (a rendered scene, not a blank)."""
    assert img.dtype == torch.uint8 and tuple(img.shape) == (2, H, W, 3)
    per_env = img.float().reshape(2, -1)  # [B, H, W, 3] -> [B, H*W*3]
    assert (per_env.amax(1) - per_env.amin(1) > 20).all()


@pytest.fixture(scope="module")
def adapter_env():
    """IsaacLabEnv, simulator in its own process, env 0 starting every episode stacked."""
    cfg = IsaacLabEnvCfg(
        task_id=TASK, num_envs=2, image_size=(H, W), max_episode_steps=50, reward_type="staged",
        device="cpu", builder=BUILDER, builder_kwargs={"stacked_env_ids": [0]},
        startup_timeout_s=1500, step_timeout_s=600,
        extra_env={"PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"},
    )
    t0 = time.monotonic()
    env = IsaacLabEnv(cfg)
    print(f"\n[kitless] env start (app + scene + Warp compile): {time.monotonic() - t0:.1f} s")
    yield env
    env.close()


def test_adapter_builds_a_kitless_newton_env(adapter_env):
    info = adapter_env.info
    assert info["isaaclab_version"].startswith("3.") and info["quat_order"] == "xyzw"
    assert info["kit_loaded"] is False  # launch_simulation chose no Kit for Newton + Warp cameras
    assert info["num_envs"] == 2 and adapter_env.spec.control_hz == pytest.approx(20.0)  # 1 / (0.01 * 5)


def test_reset_observation_through_the_adapter(adapter_env):
    obs = adapter_env.reset(seed=0)
    _assert_images(obs["main_images"])
    _assert_images(obs["wrist_images"])
    assert not torch.equal(obs["main_images"][0], obs["main_images"][1])  # env 0 stacked, env 1 spread
    states = obs["states"]
    assert states.shape == (2, 8) and states.dtype == torch.float32 and torch.isfinite(states).all()
    # fingers open at 0.04 (gripper_pos gives q1, -q2). The ee pose is not checked here: on Newton,
    # Isaac Lab 3.0.0's FrameTransformer reads zeros until the first physics step (see docs).
    torch.testing.assert_close(states[:, 6:], torch.tensor([[0.04, -0.04]] * 2), atol=2e-3, rtol=0)
    assert obs["task_descriptions"] == [ISAACLAB_STACK_TASKS[TASK].instruction] * 2


def test_chunk_rewards_success_and_episode_stats(adapter_env):
    adapter_env.reset(seed=0)
    t0 = time.monotonic()
    r = adapter_env.chunk_step(_actions(3))
    print(f"\n[kitless] 3 steps x 2 envs through the adapter: {(time.monotonic() - t0) / 3:.2f} s/step")
    # env 0: stacked at reset -> Isaac Lab's cubes_stacked fires on step 1, our reward term pays it
    assert r.terminated[0].tolist() == [True, False, False] and r.info["success"][0].tolist() == [True, False, False]
    assert r.info["valid"][0].tolist() == [True, False, False]  # masked after Isaac Lab's auto-reset
    assert r.reward[0, 0].item() == pytest.approx(STACKED_STEP_REWARD, abs=1e-5)
    assert r.reward[0, 1:].tolist() == [0.0, 0.0]
    # env 1: cubes spread, nothing held -> no reward, no success, no termination
    assert r.reward[1].tolist() == [0.0, 0.0, 0.0] and not r.info["success"][1].any()
    assert not r.terminated[1].any() and not r.truncated.any() and r.info["valid"][1].all()
    ep = r.info["episode"]
    assert ep.done.tolist() == [True, False] and ep.success_once.tolist() == [True, False]
    assert ep.returns[0].item() == pytest.approx(STACKED_STEP_REWARD, abs=1e-5) and ep.episode_len.tolist() == [1, 0]
    assert r.info["final_obs"] is not None
    _assert_images(r.obs["main_images"])  # env 0's fresh episode after our re-reset
    # env 1 after 3 steps holding still: ee = gantry hand (0.5, 0, 0.30) + frame offset (0, 0, -0.08)
    # = (0.5, 0, 0.22), sagging under gravity by about m g / k = 2.1 kg * 9.81 / 2000 N/m = 1 cm
    # (+ settling) on the z slide; identity orientation -> axis-angle 0
    torch.testing.assert_close(r.obs["states"][1, :2], torch.tensor([0.5, 0.0]), atol=0.01, rtol=0)
    assert 0.19 < r.obs["states"][1, 2].item() <= 0.221
    torch.testing.assert_close(r.obs["states"][1, 3:6], torch.zeros(3), atol=0.02, rtol=0)
    assert adapter_env.alive


@pytest.fixture(scope="module")
def stepper(tmp_path_factory, adapter_env):
    """ChunkStepper over a real kit-less env built in this process (after the adapter's, so
    the Warp kernels compiled by that one come from the cache)."""
    from tests.isaaclab_lane.kitless_scene import build_kitless_env

    t0 = time.monotonic()
    built = build_kitless_env(TASK, num_envs=2, image_size=(H, W), max_episode_steps=50, reward_type="sparse",
                              device="cpu", stacked_env_ids=[0], usd_dir=str(tmp_path_factory.mktemp("usd")))
    print(f"\n[kitless] in-process env build (Warp cache warm): {time.monotonic() - t0:.1f} s")
    task = ISAACLAB_STACK_TASKS[TASK]
    cfg = StepperCfg(instruction=task.instruction, image_size=(H, W), max_episode_steps=50, seed=0,
                     camera_terms=task.camera_terms, state_terms=task.state_terms, **built["stepper"])
    yield ChunkStepper(built["env"], cfg)
    built["env"].close()
    built["close"]()


def _stacked_envs(env, ids):
    """Which envs the stacking reset event stacks from now on (its params are read at each call)."""
    env.event_manager.get_term_cfg("place_stacked").params["stacked_env_ids"] = list(ids)


def test_done_buffers_are_reused_in_place_and_cloned_by_the_adapter(stepper):
    env = stepper.env
    _stacked_envs(env, [0])
    stepper.reset(seed=1)
    _stacked_envs(env, [])  # Isaac Lab's auto-reset of env 0 spreads the cubes: no second success
    buf = env.termination_manager.terminated
    r = stepper.chunk_step(_actions(3))
    # Isaac Lab 3.0 returns (and rewrites at every step) the termination manager's own buffer
    assert env.reset_terminated is buf and env.termination_manager.terminated is buf
    assert env.reset_terminated.tolist() == [False, False]  # ... and it now says "not terminated"
    # our copy still holds step 1's values: env 0 succeeded (sparse reward: exactly 1.0)
    assert r["terminated"][:, 0].tolist() == [True, False] and r["info"]["success"][:, 0].tolist() == [True, False]
    assert r["reward"][0].tolist() == [1.0, 0.0, 0.0] and r["reward"][1].tolist() == [0.0, 0.0, 0.0]
    assert r["info"]["episode"].success_once.tolist() == [True, False]


def test_reset_state_ids_give_identical_cube_layouts(stepper):
    env = stepper.env
    _stacked_envs(env, [])

    def layout():  # cube positions relative to each env origin: float [B, 3 cubes, 3]
        pos = [env.scene[c].data.root_pos_w.torch - env.scene.env_origins for c in ("cube_1", "cube_2", "cube_3")]
        return torch.stack(pos, dim=1).cpu()

    obs = stepper.reset(reset_state_ids=[5, 5])
    same = layout()
    torch.testing.assert_close(same[0], same[1], atol=1e-5, rtol=0)  # one id -> one start state
    assert (obs["main_images"][0].float() - obs["main_images"][1].float()).abs().mean() < 2.0
    stepper.reset(reset_state_ids=[5, 6])
    other = layout()
    torch.testing.assert_close(other[0], same[0], atol=1e-5, rtol=0)  # id 5 again -> the same layout
    assert (other[1] - other[0]).abs().max() > 0.01  # id 6 -> another layout
