"""Isaac Lab 3.0's own stack visuomotor task (``IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor``),
kit-less on Newton with the generated Franka, through our adapter on the CPU: the simulator in its
own process (``IsaacLabEnv``), and the chunk stepper in this process for what needs the env itself.

Slow the first time on a machine (Warp compiles its kernels, cached in ~/.cache/warp).
"""

import os
import time

import pytest

pytest.importorskip("isaaclab")
pytest.importorskip("isaaclab_newton")

import torch  # noqa: E402

from rlinf_isaac.envs.isaaclab import IsaacLabEnv, IsaacLabEnvCfg, SimulatorError  # noqa: E402
from rlinf_isaac.envs.isaaclab.sim.stepper import ChunkStepper, StepperCfg, as_torch  # noqa: E402
from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASK = "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor"
H = W = 64
HOOK = {"cfg_hook": "tests.isaaclab_lane.placement:add_place_stacked", "cfg_hook_kwargs": {"stacked_env_ids": [0]}}


def _hold(c: int, b: int = 2) -> torch.Tensor:
    """Hold still with the gripper open: float [B, C, A] (arm deltas 0, gripper +1)."""
    acts = torch.zeros(b, c, 7)
    acts[..., 6] = 1.0
    return acts


def _assert_images(img: torch.Tensor) -> None:
    """uint8 [B, H, W, 3], every env's image non-constant (a rendered scene, not a blank)."""
    assert img.dtype == torch.uint8 and tuple(img.shape) == (2, H, W, 3)
    per_env = img.float().reshape(2, -1)  # [B, H, W, 3] -> [B, H*W*3]
    assert (per_env.amax(1) - per_env.amin(1) > 20).all()


def _hand_down(states: torch.Tensor) -> torch.Tensor:
    """cos of the angle between the hand's z axis and world -z, per env, from states [B, 8]."""
    from rlinf_isaac.envs.mujoco.kinematics import axis_angle_to_matrix

    return torch.tensor([-axis_angle_to_matrix(s[3:6].double().numpy())[2, 2] for s in states])


@pytest.fixture(scope="module")
def adapter_env():
    """IsaacLabEnv over the registered task (stack: newton), env 0 starting every episode stacked."""
    cfg = IsaacLabEnvCfg(task_id=TASK, num_envs=2, image_size=(H, W), max_episode_steps=50, reward_type="staged",
                         device="cpu", stack="newton", builder_kwargs=HOOK, startup_timeout_s=1500,
                         step_timeout_s=600, extra_env={"PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"})
    t0 = time.monotonic()
    env = IsaacLabEnv(cfg)
    print(f"\n[real task] env start (app + scene + Warp compile): {time.monotonic() - t0:.1f} s")
    yield env
    env.close()


def test_the_registered_task_runs_kitless_on_newton(adapter_env):
    info = adapter_env.info
    assert info["isaaclab_id"] == TASK and info["stack"] == "newton" and info["isaaclab_version"].startswith("3.")
    assert info["quat_order"] == "xyzw" and info["num_envs"] == 2
    assert adapter_env.spec.control_hz == pytest.approx(20.0)  # the task's 1 / (0.01 s * 5)
    assert "kit-less Newton" in adapter_env.describe()


def test_reset_observation(adapter_env):
    obs = adapter_env.reset(seed=0)
    _assert_images(obs["main_images"])
    _assert_images(obs["wrist_images"])
    assert not torch.equal(obs["main_images"][0], obs["main_images"][1])  # env 0 stacked, env 1 spread
    states = obs["states"]
    assert states.shape == (2, 8) and states.dtype == torch.float32 and torch.isfinite(states).all()
    # the task's start pose (joints jittered by its reset event): the end effector 0.10 m past the
    # hand, above the table in front of the robot, the hand pointing down, fingers open at 0.04
    assert ((states[:, 0] > 0.38) & (states[:, 0] < 0.54)).all() and (states[:, 1].abs() < 0.08).all()
    assert ((states[:, 2] > 0.20) & (states[:, 2] < 0.32)).all()
    assert (_hand_down(states) > 0.95).all()
    torch.testing.assert_close(states[:, 6:], torch.tensor([[0.04, -0.04]] * 2), atol=2e-3, rtol=0)
    assert obs["task_descriptions"] == [ISAACLAB_STACK_TASKS[TASK].instruction] * 2


def test_wrist_camera_looks_down_the_fingers_at_the_table(adapter_env):
    img = adapter_env.reset(seed=0)["wrist_images"][1].int()  # [H, W, 3], env 1: cubes spread
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    table = (r > b + 20) & (g > b) & ((r - g).abs() < 30)  # the table's brown
    hand = (img.amin(-1) > 190) & (b >= r)  # the white hand and fingers
    assert table.float().mean() > 0.5  # the table fills the view
    bottom, top = hand[-H // 8:].float().mean(), hand[: H // 2].float().mean()
    assert bottom > 0.3 and top < 0.02, (bottom, top)  # the fingers at the bottom edge, as on the real robot


def test_chunk_rewards_success_and_episode_stats(adapter_env):
    adapter_env.reset(seed=0)
    t0 = time.monotonic()
    r = adapter_env.chunk_step(_hold(3))
    print(f"\n[real task] 3 steps x 2 envs through the adapter: {(time.monotonic() - t0) / 3:.2f} s/step")
    # env 0: stacked at reset, gripper open -> Isaac Lab's cubes_stacked fires on step 1; staged
    # reward: success 1 + stack_1 0.005 (nothing grasped)
    assert r.terminated[0].tolist() == [True, False, False] and r.info["success"][0].tolist() == [True, False, False]
    assert r.info["valid"][0].tolist() == [True, False, False]  # masked after Isaac Lab's auto-reset
    assert r.reward[0, 0].item() == pytest.approx(1.005, abs=1e-5) and r.reward[0, 1:].tolist() == [0.0, 0.0]
    # env 1: cubes spread, nothing held -> no reward, no success, no termination
    assert r.reward[1].tolist() == [0.0, 0.0, 0.0] and not r.info["success"][1].any()
    assert not r.terminated[1].any() and not r.truncated.any() and r.info["valid"][1].all()
    ep = r.info["episode"]
    assert ep.done.tolist() == [True, False] and ep.success_once.tolist() == [True, False]
    assert ep.returns[0].item() == pytest.approx(1.005, abs=1e-5) and ep.episode_len.tolist() == [1, 0]
    assert r.info["final_obs"] is not None
    _assert_images(r.obs["main_images"])  # env 0's fresh episode after our re-reset
    assert (_hand_down(r.obs["states"]) > 0.95).all() and adapter_env.alive


def test_dead_simulator_is_reported(adapter_env):
    import signal

    os.kill(adapter_env.sim.proc.pid, signal.SIGKILL)
    with pytest.raises(SimulatorError, match="exited with code"):
        adapter_env.chunk_step(_hold(1))


@pytest.fixture(scope="module")
def stepper():
    """ChunkStepper over the registered task built in this process (Warp kernels from the cache)."""
    from rlinf_isaac.envs.isaaclab.sim.launch import build_isaaclab_env

    t0 = time.monotonic()
    built = build_isaaclab_env(TASK, num_envs=2, image_size=(H, W), max_episode_steps=50, reward_type="shaped",
                               device="cpu", stack="newton", **HOOK)
    print(f"\n[real task] in-process env build: {time.monotonic() - t0:.1f} s")
    task = ISAACLAB_STACK_TASKS[TASK]
    cfg = StepperCfg(instruction=task.instruction, image_size=(H, W), max_episode_steps=50, seed=0,
                     camera_terms=task.camera_terms, state_terms=task.state_terms, **built["stepper"])
    yield ChunkStepper(built["env"], cfg, refresh=built["refresh"])
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
    r = stepper.chunk_step(_hold(3))
    # Isaac Lab 3.0 returns (and rewrites at every step) the termination manager's own buffer
    assert env.reset_terminated is buf and env.termination_manager.terminated is buf
    assert env.reset_terminated.tolist() == [False, False]  # ... and it now says "not terminated"
    # our copy still holds step 1's values: env 0 succeeded. Shaped reward: success 1 plus the
    # potential of red on blue (1/3) over an episode start's 0; after the auto-reset the new
    # episode starts from 0 again (cubes spread: 0, not -1/3), and env 1 never moves from 0
    assert r["terminated"][:, 0].tolist() == [True, False] and r["info"]["success"][:, 0].tolist() == [True, False]
    assert r["reward"][0].tolist() == pytest.approx([1 + 1 / 3, 0.0, 0.0], abs=1e-6)
    assert r["reward"][1].tolist() == [0.0, 0.0, 0.0]
    assert r["info"]["episode"].success_once.tolist() == [True, False]


def test_reset_state_ids_give_identical_first_frames(stepper):
    env = stepper.env
    _stacked_envs(env, [])

    def layout():  # cube positions relative to each env origin: float [B, 3 cubes, 3]
        pos = [env.scene[c].data.root_pos_w.torch - env.scene.env_origins for c in ("cube_1", "cube_2", "cube_3")]
        return torch.stack(pos, dim=1).cpu()

    obs = stepper.reset(reset_state_ids=[5, 5])  # batched seeding: one term call per layer
    same = layout()
    torch.testing.assert_close(same[0], same[1], atol=1e-5, rtol=0)  # one id -> one start state
    torch.testing.assert_close(obs["states"][0], obs["states"][1], atol=1e-4, rtol=0)
    for key in ("main_images", "wrist_images"):
        assert (obs[key][0].float() - obs[key][1].float()).abs().mean() < 1.0, key
    stepper.reset(reset_state_ids=[6, 6])
    assert (layout()[0] - same[0]).abs().max() > 0.01  # id 6 -> another layout
    stepper.reset(reset_state_ids=[5, 5])
    torch.testing.assert_close(layout(), same, atol=1e-5, rtol=0)  # the same ids again -> the same layouts
    terms = env.event_manager._mode_term_cfgs["reset"]
    for term in terms:  # per-env seeding: id 5 names one layout whatever is reset with it
        term.func.per_env = True
    try:
        again = stepper.reset(reset_state_ids=[6, 5])
        torch.testing.assert_close(layout()[1], same[0], atol=1e-5, rtol=0)
        assert (again["wrist_images"][1].float() - obs["wrist_images"][0].float()).abs().mean() < 1.0
    finally:
        for term in terms:
            term.func.per_env = False


def test_reset_observation_reads_the_reset_pose(stepper):
    """Newton evaluates the end-effector frame only inside a physics step: the stepper refreshes
    it after a reset, so the first observation is the new episode's, not the last one's."""
    _stacked_envs(stepper.env, [])
    stepper.reset(reset_state_ids=[7, 8])
    stepper.chunk_step(_hold(2))
    first = stepper.reset(reset_state_ids=[9, 10])["states"]
    held = stepper.chunk_step(_hold(1))["obs"]["states"]  # one still step from the reset pose
    torch.testing.assert_close(first[:, :3], held[:, :3], atol=5e-3, rtol=0)


def test_ik_rel_action_moves_the_hand_as_commanded(stepper):
    """The task's IK-Rel arm action (scale 0.5, DLS, relative to the current pose each step) with the
    task's PD gains (400 / 80): the hand moves along the commanded axis and nowhere else. A step's
    target is the current pose + the delta, so the arm's lag (the whole arm's inertia against
    these gains) is not made up later: a 2 cm command moves ~0.3 cm in its own step, ~0.45 cm by the
    end of the chunk, and 10 commands in a row ~4.5 cm (measured on this asset)."""
    _stacked_envs(stepper.env, [])
    stepper.reset(reset_state_ids=[11, 11])
    p0 = stepper.chunk_step(_hold(2))["obs"]["states"][0, :3]
    a = _hold(4)
    a[:, 0, 1] = 0.04  # raw 0.04 x action scale 0.5 = 2 cm along +y in step 0, then hold
    d = stepper.chunk_step(a)["obs"]["states"][0, :3] - p0
    assert 0.002 < d[1].item() < 0.02 and d[0].abs().item() < 0.002 and d[2].abs().item() < 0.002, d.tolist()
    a = _hold(10)
    a[:, :, 0] = 0.04  # 2 cm along +x every step
    p1 = stepper.chunk_step(_hold(1))["obs"]["states"][0, :3]
    d = stepper.chunk_step(a)["obs"]["states"][0, :3] - p1
    assert 0.03 < d[0].item() < 0.2 and d[1].abs().item() < 0.01 and d[2].abs().item() < 0.01, d.tolist()


def test_privileged_state_is_the_scene_in_the_robot_base_frame(stepper):
    _stacked_envs(stepper.env, [])
    obs = stepper.reset(reset_state_ids=[12, 13])
    s = stepper.privileged_state()
    assert {k: v.shape for k, v in s.items()} == {
        "cube_pos": (2, 3, 3), "cube_quat": (2, 3, 4), "ee_pos": (2, 3), "ee_quat": (2, 4), "fingers": (2, 2)}
    edge = ISAACLAB_STACK_TASKS[TASK].cube_edge
    assert abs(s["cube_pos"][..., 2] - edge / 2).max() < 2e-3  # resting on the table (top at z = 0)
    # upright, turned about z only (the task's reset draws a yaw): (w, 0, 0, z), unit length
    assert abs(s["cube_quat"][..., 1:3]).max() < 1e-3 and abs((s["cube_quat"] ** 2).sum(-1) - 1).max() < 1e-4
    torch.testing.assert_close(torch.from_numpy(s["ee_pos"]), obs["states"][:, :3], atol=1e-4, rtol=0)
    assert abs(s["fingers"] - 0.04).max() < 1e-3  # open


def test_fingers_close_together(stepper):
    """The follower finger mirrors the driven one at every step of a close (the coupling holds
    under the leader's drive damping), and both stop on a cube's width when one is between them."""
    _stacked_envs(stepper.env, [])
    stepper.reset(reset_state_ids=[14, 14])
    close = _hold(12)
    close[..., 6] = -1.0
    gaps = []
    for t in range(12):
        stepper.chunk_step(close[:, t : t + 1])
        q = stepper.privileged_state()["fingers"]
        gaps.append(abs(q[:, 0] - q[:, 1]).max())
    assert max(gaps) < 1e-3, gaps
    assert (q < 0.025).all() and (q >= -1e-3).all()  # closing (0.2 m/s), never past the limit


def test_scripted_expert_stacks_the_three_cubes():
    """The scripted expert from privileged state (the expert's Isaac Lab settings) on two fresh
    episodes through the adapter, the simulator in its own process."""
    from rlinf_isaac.demos.expert import run_expert

    t0 = time.monotonic()
    out = run_expert(TASK, episodes=2, num_envs=2, seed=3, image_size=32, max_episode_steps=320, device="cpu",
                     stack="newton", startup_timeout_s=1500, step_timeout_s=600,
                     extra_env={"PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"})
    print(f"\n[real task] expert, 2 episodes x 2 envs: {time.monotonic() - t0:.1f} s")
    assert out["success_rate"] == 1.0, out


def test_batched_cube_placement_equals_isaac_labs_per_env_event(stepper):
    """The reset event that places the cubes is Isaac Lab's randomize_object_pose in batched form:
    the same random numbers give the same poses as Isaac Lab's own per-env function."""
    import random

    from isaaclab_tasks.contrib.stack.mdp import stack_events

    env = stepper.env
    _stacked_envs(env, [])
    term = env.event_manager.get_term_cfg("randomize_cube_positions")
    batched = term.func.__wrapped__  # below the stepper's seeding
    assert batched.__wrapped__ is stack_events.randomize_object_pose
    params = dict(term.params)

    def poses():
        return torch.stack([torch.cat([env.scene[c].data.root_pos_w.torch, env.scene[c].data.root_quat_w.torch], -1)
                            for c in ("cube_1", "cube_2", "cube_3")], 1).cpu().clone()

    ids = torch.tensor([1, 0], device=env.device)
    random.seed(42)
    stack_events.randomize_object_pose(env, ids, **params)
    expected = poses()
    random.seed(7)
    batched(env, ids, **params)
    assert (poses() - expected).abs().max() > 0.01  # other numbers, other poses
    random.seed(42)
    batched(env, ids, **params)
    torch.testing.assert_close(poses(), expected, atol=1e-6, rtol=0)


def test_hand_orientation_state_is_continuous_through_pointing_down(stepper):
    """Tilting the hand back and forth about x moves it through pointing down (the simulator's
    quaternion through w = 0): the state's axis-angle moves with it, without +pi / -pi jumps."""
    _stacked_envs(stepper.env, [])
    prev = stepper.reset(reset_state_ids=[3, 4])["states"][:, 3:6]
    signs, jumps = set(), []
    for k in range(16):
        a = torch.zeros(2, 1, 7)
        a[:, 0, 3] = 0.3 if k < 4 else -0.3  # rotate about x one way, then the other
        a[:, 0, 6] = 1.0
        cur = stepper.chunk_step(a)["obs"]["states"][:, 3:6]
        jumps.append((cur - prev).abs().max().item())
        quat = stepper.env.observation_manager.compute_group("policy")["eef_quat"]
        signs |= set(torch.sign(as_torch(quat)[:, 3]).tolist())  # w of XYZW
        prev = cur
    assert signs >= {1.0, -1.0}, "the hand never passed through pointing down"
    assert max(jumps) < 0.3, jumps
