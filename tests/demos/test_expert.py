"""Scripted expert: succeeds on seeded episodes of both tasks; CLI lists tasks and prints JSON."""

import json
import math

import numpy as np
import pytest
import torch

from rlinf_isaac.demos.expert import (
    ABOVE,
    DESCEND,
    ScriptedExpert,
    _rect_gap,
    _rz,
    _wrap_half_pi,
    main,
    run_expert,
)
from rlinf_isaac.envs.mujoco.kinematics import R_DOWN
from rlinf_isaac.envs.registry import list_tasks, make_env
from rlinf_isaac.sft.dataset import decode_video
from rlinf_isaac.tasks.stack_cube import STACK_THREE, STACK_TWO


@pytest.mark.parametrize(
    "task_id, episodes",
    [("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", 2), ("MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0", 1)],
)
def test_expert_succeeds(task_id, episodes):
    out = run_expert(task_id, episodes, num_envs=episodes, seed=0, image_size=16)
    assert out == {"task": task_id, "episodes": episodes, "success_rate": 1.0}


def test_cli_list_and_unknown(capsys):
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list_tasks()
    with pytest.raises(KeyError, match="registered task ids"):
        main(["--task", "Nope-v0", "--episodes", "1"])


def test_cli_prints_json_last(capsys):
    main(["--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", "--episodes", "1", "--num-envs", "1",
          "--image-size", "16"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["episodes"] == 1


def test_cli_record_and_video(tmp_path, capsys):
    main(["--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", "--episodes", "1", "--num-envs", "1",
          "--image-size", "16", "--record", str(tmp_path / "ds"), "--video", str(tmp_path / "v.mp4")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["success_rate"] == 1.0
    assert len(list((tmp_path / "ds").rglob("episode_000000*"))) >= 1
    assert (tmp_path / "v.mp4").stat().st_size > 0
    video = decode_video(tmp_path / "v.mp4")  # 1 env: table | wrist at 256 px each, below the instruction
    assert video.shape[0] > 20 and video.shape[2] == 2 * 256 and 256 < video.shape[1] < 320


def _state(cubes_xyz):
    """privileged_state()-like dict of one env: cubes at cubes_xyz [N, 3] with yaw 0."""
    pos = np.asarray(cubes_xyz, float)
    return {"cube_pos": pos, "cube_quat": np.tile([1.0, 0.0, 0.0, 0.0], (len(pos), 1))}


def test_rect_gap_and_half_pi_wrap():
    # point 3 cm across a 2.5 cm half-width bar, inside its length: gap 0.005
    # point (0.03, 0.104) off a (0.025, 0.1) corner: hypot(0.005, 0.004) = 0.0064031
    gaps = _rect_gap(np.array([0.03, 0.03, 0.0]), np.array([0.0, 0.104, 0.05]), 0.025, 0.1)
    np.testing.assert_allclose(gaps, [0.005, 0.0064031242, 0.0], atol=1e-9)
    assert _wrap_half_pi(math.pi / 2) == pytest.approx(-math.pi / 2)  # same footprint as +pi/2
    assert _wrap_half_pi(2.0) == pytest.approx(2.0 - math.pi)


def test_grasp_yaw_turns_the_hand_bar_away_from_the_built_stack():
    s = 0.047
    expert = ScriptedExpert(STACK_THREE, num_envs=1)
    # blue at (0.5, 0.1), red stacked on it; green (index 2) to grasp at (0.5, 0), 10 cm away along y.
    st = _state([(0.5, 0.1, s / 2), (0.5, 0.1, 1.5 * s), (0.5, 0.0, s / 2)])
    # yaw 0: bar (finger axis) along world -y -> over the stack (red top 0.094 m > bar underside
    # 0.0235 + 0.1034 - 0.06 = 0.0669 m): gap = 0 - s / sqrt(2) = -0.03323
    assert expert._footprint_gap(st, 2, 0.0) == pytest.approx(-s / math.sqrt(2), abs=1e-9)
    # yaw -pi/2: bar along x; stack 0.1 m across: hand gap 0.1 - 0.025 = 0.075 (fingers 0.1 - 0.01 = 0.09)
    # -> 0.075 - 0.03323 = 0.04177
    assert expert._footprint_gap(st, 2, -math.pi / 2) == pytest.approx(0.075 - s / math.sqrt(2), abs=1e-9)
    assert expert._grasp_yaw(st, 2) == pytest.approx(-math.pi / 2)
    # Stack 10 cm along x instead: yaw 0 (nearest home) is already clear and is kept.
    st = _state([(0.6, 0.0, s / 2), (0.6, 0.0, 1.5 * s), (0.5, 0.0, s / 2)])
    assert expert._grasp_yaw(st, 2) == pytest.approx(0.0)


def test_expert_stacks_three_on_a_reset_state_where_the_hand_bar_meets_the_stack():
    # Reset state 1914009000 (seed 0, env 5): a grasp footprint chosen without the hand bar in
    # mind lands the bar on the red-blue stack while descending to the green cube.
    env = make_env(STACK_THREE.task_id, num_envs=1, seed=0, image_size=16, auto_reset=False)
    env.reset(reset_state_ids=[1914009000])
    expert = ScriptedExpert(STACK_THREE, 1, env.cfg.action_scale)
    try:
        for _ in range(320):  # the RL configs' three-cube step limit
            res = env.chunk_step(torch.from_numpy(expert.act(env.privileged_state()))[:, None])
            if res.info["episode"].done[0]:
                break
        assert bool(res.info["episode"].success_once[0]) and int(res.info["episode"].episode_len[0]) < 200
    finally:
        env.close()


def test_descent_waits_until_the_gripper_has_turned_to_the_grasp_yaw():
    from rlinf_isaac.envs.mujoco.kinematics import matrix_to_quat

    s = 0.047
    expert = ScriptedExpert(STACK_TWO, num_envs=1, action_scale=0.5)
    red = np.array([0.5, 0.0, s / 2])  # top cube of the only pair; blue 15 cm away, grasp yaw 0

    def state(ee_yaw):
        r_ee = _rz(ee_yaw) @ R_DOWN
        return {"cube_pos": np.array([[0.5, 0.15, s / 2], red])[None], "cube_quat": np.tile([1.0, 0, 0, 0], (1, 2, 1)),
                "ee_pos": (red + [0, 0, expert.cfg.hover])[None], "ee_quat": matrix_to_quat(r_ee)[None],
                "fingers": np.full((1, 2), 0.04)}

    # At the hover point but turned 0.3 rad: rot_err = axis_angle(R_wp R_ee^T) = (0, 0, -0.3), capped
    # at max_rot_step 0.15 -> a[3:6] = (0, 0, -0.15) / 0.5 = (0, 0, -0.3); the phase stays ABOVE.
    a = expert.act(state(0.3))
    np.testing.assert_allclose(a[0], [0, 0, 0, 0, 0, -0.3, 1.0], atol=1e-6)
    assert expert._phase[0] == ABOVE
    # Turned to within rot_tol (0.03 < 0.05 rad): a[5] = -0.03 / 0.5 = -0.06 and the descent starts.
    a = expert.act(state(0.03))
    assert a[0, 5] == pytest.approx(-0.06, abs=1e-6) and expert._phase[0] == DESCEND


def test_action_noise_executes_noisy_but_records_clean_actions(tmp_path):
    from rlinf_isaac.demos.expert import run_expert
    from rlinf_isaac.sft.dataset import LeRobotDataset

    with pytest.raises(ValueError, match="action_noise"):
        run_expert("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", 1, 1, action_noise=-0.1)
    out = run_expert("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", 2, 2, seed=0, record=str(tmp_path / "ds"),
                     action_noise=0.01, image_size=16)
    assert out["success_rate"] == 1.0  # measured: 16/16 at 0.01 (0.02 drops to 2/16)
    acts = LeRobotDataset(tmp_path / "ds").all_actions()
    # clean expert translations are clipped to max_step / action_scale = 0.02 / 0.5 = 0.04;
    # executed ones carry N(0, 0.01^2) on top and would exceed it
    assert acts[:, :3].abs().max() <= 0.04 + 1e-6


def test_shaped_reward_telescopes_over_an_expert_episode():
    """reward_type='shaped': per-step r = success + Phi(s') - Phi(s); the episode return is
    success + Phi(s_T) - Phi(s_0) and a successful episode returns more than 1 - Phi(s_0)."""
    task_id = "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0"
    env = make_env(task_id, num_envs=1, seed=0, image_size=16, reward_type="shaped", max_episode_steps=400)
    expert = ScriptedExpert(STACK_TWO, 1)
    env.reset(reset_state_ids=[3])
    phi0 = env.staged_reward(0, False)
    rewards, progressed = [], False
    for _ in range(400):
        res = env.chunk_step(torch.from_numpy(expert.act(env.privileged_state()))[:, None])
        rewards.append(float(res.reward[0, 0]))
        progressed |= rewards[-1] > 0.01
        if res.info["episode"].done[0]:
            break
    assert res.info["episode"].success_once[0] and progressed
    # at success Phi = 1: return = 1 + 1 - Phi(s_0) (the env auto-reset after it, so Phi(s_T) is read from the formula)
    assert sum(rewards) == pytest.approx(2.0 - phi0, abs=1e-6)
    assert sum(rewards) > 1.0 - phi0 and float(res.info["episode"].returns[0]) == pytest.approx(sum(rewards), abs=1e-5)
    env.close()


def test_recording_with_simulator_processes_matches_in_process(tmp_path):
    """--num-workers: the envs step in subprocesses, the dataset is the same as in-process
    (same seeds per env, same episodes in the same order)."""
    from rlinf_isaac.demos.expert import main, run_expert
    from rlinf_isaac.sft.dataset import LeRobotDataset

    task_id = "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0"
    for workers in (0, 2):
        out = run_expert(task_id, 2, 2, seed=5, record=str(tmp_path / f"w{workers}"), image_size=16,
                         num_workers=workers)
        assert out["episodes"] == 2
    a, b = LeRobotDataset(tmp_path / "w0"), LeRobotDataset(tmp_path / "w2")
    assert [e["length"] for e in a.episodes] == [e["length"] for e in b.episodes]
    torch.testing.assert_close(a.all_actions(), b.all_actions())
    torch.testing.assert_close(a.all_states(), b.all_states())
    with pytest.raises(SystemExit):  # more processes than envs: an argparse error naming the flag
        main(["--task", task_id, "--episodes", "2", "--num-envs", "2", "--num-workers", "3"])


def test_tracking_gain_scales_the_error_and_keeps_the_caps():
    from rlinf_isaac.demos.expert import ExpertConfig

    s = 0.047
    cfg = ExpertConfig(max_step=0.06, max_rot_step=0.4, tracking_gain=3.0)
    expert = ScriptedExpert(STACK_TWO, num_envs=1, action_scale=0.5, config=cfg)
    red = np.array([0.5, 0.0, s / 2])

    def state(ee_offset):
        return {"cube_pos": np.array([[0.5, 0.15, s / 2], red])[None], "cube_quat": np.tile([1.0, 0, 0, 0], (1, 2, 1)),
                "ee_pos": (red + [0, 0, cfg.hover] + ee_offset)[None], "ee_quat": np.array([[0.0, 1.0, 0.0, 0.0]]),
                "fingers": np.full((1, 2), 0.04)}

    # 1 cm from the hover point: a[:3] = 3 x (-0.01, 0, 0) / 0.5 = (-0.06, 0, 0), under the 0.06 m cap
    np.testing.assert_allclose(expert.act(state([0.01, 0, 0]))[0, :3], [-0.06, 0, 0], atol=1e-6)
    # 10 cm away: 3 x 0.1 = 0.3 m is capped at max_step 0.06 -> a = -0.06 / 0.5 = -0.12
    np.testing.assert_allclose(expert.act(state([0.1, 0, 0]))[0, :3], [-0.12, 0, 0], atol=1e-6)
    with pytest.raises(ValueError, match="expert.tracking_gain must be > 0"):
        ExpertConfig(tracking_gain=0.0)


def test_funnel_starts_the_descent_off_centre_and_lowers_with_the_xy_error():
    from rlinf_isaac.demos.expert import ExpertConfig

    s = 0.047
    red = np.array([0.5, 0.0, s / 2])

    def state(ee_offset):  # the hand pointing down at yaw 0, the grasp yaw of an unrotated cube
        return {"cube_pos": np.array([[0.5, 0.15, s / 2], red])[None], "cube_quat": np.tile([1.0, 0, 0, 0], (1, 2, 1)),
                "ee_pos": (red + ee_offset)[None], "ee_quat": np.array([[0.0, 1.0, 0.0, 0.0]]),
                "fingers": np.full((1, 2), 0.04)}

    plain = ScriptedExpert(STACK_TWO, num_envs=1, action_scale=0.5)
    funnel = ScriptedExpert(STACK_TWO, num_envs=1, action_scale=0.5, config=ExpertConfig(funnel=0.03))
    # At hover height, 2 cm off centre: err (-0.02, 0, 0) = max_step -> a = (-0.04, 0, 0) for both;
    # only the funnel (2 cm < 3 cm) starts the descent, the plain expert waits for 6 mm
    for expert, phase in ((plain, ABOVE), (funnel, DESCEND)):
        np.testing.assert_allclose(expert.act(state([0.02, 0, 0.10]))[0], [-0.04, 0, 0, 0, 0, 0, 1.0], atol=1e-6)
        assert expert._phase[0] == phase
    # Descending 1.5 cm off centre: the target is hover x 1.5 / 3 = 5 cm above the grasp point
    # (cube centre - 3 mm), i.e. 4.7 cm above the cube centre, where the hand is: no vertical
    # command, err (-0.015, 0, 0) capped at slow_step 0.01 -> a = (-0.02, 0, 0)
    np.testing.assert_allclose(funnel.act(state([0.015, 0, 0.047]))[0, :3], [-0.02, 0, 0], atol=1e-6)
    # Centred 5 mm above the cube centre: target 3 mm below it, err (0, 0, -0.008) -> a = (0, 0, -0.016)
    np.testing.assert_allclose(funnel.act(state([0, 0, 0.005]))[0, :3], [0, 0, -0.016], atol=1e-6)
    assert funnel._phase[0] == DESCEND  # 8 mm > the 4 mm that ends the descent
    with pytest.raises(ValueError, match="expert.funnel must be >= 0"):
        ExpertConfig(funnel=-0.01)


def test_funnel_expert_stacks_three_cubes():
    # measured: 16 of 16 (seed 0, 8 envs); Isaac Lab's task on the CPU: 8 of 8 (seed 1000)
    out = run_expert(STACK_THREE.task_id, 2, 2, seed=0, funnel=0.03, image_size=16)
    assert out["success_rate"] == 1.0


def test_isaaclab_task_as_the_expert_sees_it():
    from rlinf_isaac.demos.expert import EXPERT_CONFIGS, _expert_task
    from rlinf_isaac.tasks.isaaclab_stack import STACK_INSTRUCTION

    spec, backend, scale = _expert_task("IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor")
    assert (backend, scale) == ("isaaclab", 0.5) and EXPERT_CONFIGS[backend].tracking_gain > 1
    # Isaac Lab's cubes: cube_1 blue (bottom), cube_2 red, cube_3 green; edge 0.0468 m
    assert [c.name for c in spec.cubes] == ["cube_1", "cube_2", "cube_3"]
    assert spec.stack_pairs == (("cube_2", "cube_1"), ("cube_3", "cube_2")) and spec.cube_size == 0.0468
    assert spec.instruction == STACK_INSTRUCTION
    assert _expert_task("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0") == (STACK_TWO, "mujoco", 0.5)


def test_cli_passes_simulator_options_to_isaaclab_tasks_only(monkeypatch, capsys):
    import rlinf_isaac.demos.expert as expert_module

    seen = {}
    monkeypatch.setattr(expert_module, "run_expert", lambda task, *a, **kw: seen.update(task=task, **kw) or {})
    main(["--task", "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor", "--episodes", "1", "--sim-device", "cpu",
          "--isaaclab-stack", "newton", "--isaaclab-python", "/opt/py312/bin/python", "--max-episode-steps", "320"])
    assert {k: seen[k] for k in ("device", "stack", "python", "max_episode_steps")} == {
        "device": "cpu", "stack": "newton", "python": "/opt/py312/bin/python", "max_episode_steps": 320}
    seen.clear()
    main(["--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", "--episodes", "1", "--sim-device", "cpu"])
    assert seen["task"].startswith("MuJoCo") and not {"device", "stack", "python"} & set(seen)
