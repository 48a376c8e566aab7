"""MuJoCo stack env: determinism, IK tracking, success detector, staged reward, kinematics math."""

import logging
import math

import numpy as np
import pytest
import torch

from rlinf_isaac.envs.mujoco.kinematics import axis_angle_to_matrix, dls_step, matrix_to_axis_angle
from rlinf_isaac.envs.registry import make_env

TWO = "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0"
THREE = "MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0"


@pytest.fixture(scope="module")
def env3():
    e = make_env(THREE, num_envs=3, seed=0, image_size=32)
    yield e
    e.close()


def test_axis_angle_round_trip_and_dls():
    v = np.array([0.3, -0.2, 0.5])
    np.testing.assert_allclose(matrix_to_axis_angle(axis_angle_to_matrix(v)), v, atol=1e-12)
    # 90 deg about z maps x to y: R @ (1, 0, 0) = (0, 1, 0)
    np.testing.assert_allclose(axis_angle_to_matrix(np.array([0, 0, math.pi / 2])) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # J = 2 I (6x6), lambda = 0: dq = J^T (J J^T)^-1 e = e / 2
    np.testing.assert_allclose(dls_step(2 * np.eye(6), np.ones(6), 0.0), np.full(6, 0.5))
    # lambda = 1 on J = I: dq = e / (1 + 1) = e / 2
    np.testing.assert_allclose(dls_step(np.eye(6), np.ones(6), 1.0), np.full(6, 0.5))


def test_same_reset_id_is_bit_identical_across_positions_and_history(env3):
    env3.chunk_step(torch.randn(3, 3, 7) * 0.5)  # some history first
    obs = env3.reset(reset_state_ids=[7, 11, 7])
    assert torch.equal(obs["main_images"][0], obs["main_images"][2])
    assert torch.equal(obs["wrist_images"][0], obs["wrist_images"][2])
    assert torch.equal(obs["states"][0], obs["states"][2])
    assert not torch.equal(obs["main_images"][0], obs["main_images"][1])
    other = make_env(THREE, num_envs=1, seed=123, image_size=32)
    o1 = other.reset(reset_state_ids=[7])
    other.close()
    assert torch.equal(o1["main_images"][0], obs["main_images"][0])
    assert torch.equal(o1["states"][0], obs["states"][0])


def test_seed_reproduces_drawn_ids(env3):
    env3.reset(seed=3)
    a = env3._reset_ids.copy()
    env3.reset(seed=3)
    assert (env3._reset_ids == a).all() and len(set(a.tolist())) == 3


def test_spawn_respects_ranges_and_spacing(env3):
    for rid in range(20):
        q, cubes = env3.initial_state(rid)
        assert ((cubes[:, 0] >= 0.4) & (cubes[:, 0] <= 0.6)).all()
        assert ((cubes[:, 1] >= -0.1) & (cubes[:, 1] <= 0.1)).all()
        assert (np.abs(cubes[:, 3]) <= 1.0).all()
        d = np.linalg.norm(cubes[:, None, :2] - cubes[None, :, :2], axis=-1) + np.eye(3)
        assert d.min() >= 0.1


def test_state_rotation_is_relative_to_gripper_down_and_continuous():
    # States are (tcp pos, axis_angle(R_DOWN^T R_tcp), fingers): near 0 at the gripper-down home
    # pose, and a yaw turn of the hand moves only the z-ish component, smoothly (no +-pi flips).
    env = make_env(TWO, num_envs=1, seed=0, image_size=16)
    obs = env.reset(reset_state_ids=[0])
    assert obs["states"][0, 3:6].abs().max() < 0.2
    a = torch.zeros(1, 8, 7)
    a[0, :, 5] = 0.1  # 0.1 * action_scale 0.5 = 0.05 rad per step about world z
    a[0, :, 6] = 1.0
    rots = []
    for _ in range(3):
        rots.append(env.chunk_step(a).obs["states"][0, 3:6].clone())
    env.close()
    rots = torch.stack(rots)
    assert (rots.diff(dim=0).abs().max() < 0.6), rots  # 8 steps x 0.05 rad = 0.4 rad per chunk
    assert rots[:, 2].diff().abs().min() > 0.2, rots  # the yaw shows up in one component ...
    assert rots[:, :2].abs().max() < 0.2, rots  # ... and not in the tilt components


def test_ik_tracks_a_commanded_delta():
    env = make_env(TWO, num_envs=1, seed=0, image_size=16)
    env.reset(reset_state_ids=[0])
    p0 = env.privileged_state()["ee_pos"][0].copy()
    a = torch.zeros(1, 4, 7)
    a[0, 0, 1] = 0.04  # raw 0.04 * action_scale 0.5 = 2 cm along +y in step 0, then hold
    a[0, :, 6] = 1.0
    env.chunk_step(a)
    d = env.privileged_state()["ee_pos"][0] - p0
    env.close()
    # Tolerance: 2 cm +- 5 mm along y (PD lag), < 2 mm drift on x and z.
    assert abs(d[1] - 0.02) < 0.005 and abs(d[0]) < 0.002 and abs(d[2]) < 0.002


def _place(env, b, positions):
    """Put cubes at positions [N, 3] (yaw 0, at rest), open fingers; recompute kinematics."""
    d = env.datas[b]
    for k, p in enumerate(positions):
        a = env._cube_qpos[k]
        d.qpos[a : a + 7] = (*p, 1, 0, 0, 0)
        d.qvel[env._cube_qvel[k] : env._cube_qvel[k] + 6] = 0
    env._mj.mj_forward(env.model, d)


def test_success_detector_true_and_false_cases(env3):
    s = 0.047
    env3.reset(reset_state_ids=[1, 2, 3])
    stacked = [(0.5, 0.0, s / 2), (0.5, 0.0, 1.5 * s), (0.5, 0.0, 2.5 * s)]  # blue, red, green
    _place(env3, 0, stacked)
    assert env3.pairs_stacked(0) == [True, True] and env3.is_success(0)
    _place(env3, 0, [(0.5, 0.0, s / 2), (0.5 + 0.041, 0.0, 1.5 * s), (0.5 + 0.041, 0, 2.5 * s)])  # 4.1 cm off
    assert env3.pairs_stacked(0) == [False, True] and not env3.is_success(0)
    _place(env3, 0, [(0.5, 0.0, s / 2), (0.5, 0.0, 1.5 * s + 0.006), (0.5, 0.0, 2.5 * s + 0.006)])  # 6 mm gap
    assert env3.pairs_stacked(0) == [False, True] and not env3.is_success(0)
    _place(env3, 0, stacked)
    env3.datas[0].qpos[env3._finger_qpos] = 0.01  # gripper closed -> not a success
    assert not env3.is_success(0)
    _place(env3, 0, [(0.5, 0.0, s / 2), (0.6, 0.1, s / 2), (0.4, -0.1, s / 2)])
    assert env3.pairs_stacked(0) == [False, False] and not env3.is_success(0)
    assert not env3.cube_off_table(0)
    _place(env3, 0, [(0.5, 0.0, s / 2), (1.2, 0.0, s / 2), (0.4, -0.1, s / 2)])  # beyond the table edge x = 1.0
    assert env3.cube_off_table(0)


def test_staged_reward_formula(env3):
    s = 0.047
    env3.reset(reset_state_ids=[4, 5, 6])
    _place(env3, 1, [(0.5, 0.0, s / 2), (0.5, 0.0, 1.5 * s), (0.5, 0.0, 2.5 * s)])
    env3.datas[1].qpos[env3._finger_qpos] = 0.04
    # all pairs stacked and success: r = (k=2 + progress 0 + 1) / (P + 1 = 3) = 1
    assert env3.staged_reward(1, env3.is_success(1)) == pytest.approx(1.0)
    _place(env3, 1, [(0.5, 0.0, s / 2), (0.6, 0.1, s / 2), (0.4, -0.1, s / 2)])
    tcp = env3.datas[1].site_xpos[env3._tcp]
    red = env3.datas[1].xpos[env3._cube_body[1]]
    reach = 1 - math.tanh(10 * np.linalg.norm(tcp - red))
    # nothing stacked, not grasped: r = (0 + reach / 4 + 0) / 3
    assert env3.staged_reward(1, False) == pytest.approx(reach / 4 / 3, rel=1e-9)


def test_bad_inputs_raise(env3):
    with pytest.raises(ValueError, match=r"shape \[B=3, C, A=7\]"):
        env3.chunk_step(torch.zeros(2, 4, 7))
    bad = torch.zeros(3, 2, 7)
    bad[2, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="env 2, chunk step 1, dim 0"):
        env3.chunk_step(bad)
    with pytest.raises(TypeError, match="floating-point"):
        env3.chunk_step(torch.zeros(3, 2, 7, dtype=torch.int32))
    with pytest.raises(KeyError, match="MuJoCo-Stack-Two-Cube"):
        make_env("MuJoCo-Stack-Nope-v0", num_envs=1)
    with pytest.raises(ValueError, match="env.reward_type"):
        make_env(TWO, num_envs=1, reward_type="dense")
    with pytest.raises(ValueError, match="env.image_size"):
        make_env(TWO, num_envs=1, image_size=4)


def test_divergence_resets_and_flags(env3, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # MuJoCo's default handler would write MUJOCO_LOG.TXT here
    env3.reset(reset_state_ids=[1, 2, 3])
    env3.datas[1].qvel[:] = np.nan  # poison env 1's physics
    with caplog.at_level(logging.WARNING, logger="rlinf_isaac.envs.mujoco"):
        res = env3.chunk_step(torch.zeros(3, 2, 7))
    assert res.info["diverged"].tolist() == [False, True, False]
    assert res.truncated[1].tolist() == [True, False] and res.info["valid"][1].tolist() == [True, False]
    assert np.isfinite(env3.datas[1].qpos).all()
    # MuJoCo's own C warning (bad QVEL) reaches Python logging, and no log file lands in the cwd.
    mj_msgs = [r.getMessage() for r in caplog.records if r.name == "rlinf_isaac.envs.mujoco"]
    assert any(m.startswith("MuJoCo: ") and "QVEL" in m for m in mj_msgs), mj_msgs
    assert list(tmp_path.iterdir()) == []


def test_route_mujoco_warnings_keeps_a_user_callback(env3, tmp_path, monkeypatch):
    from rlinf_isaac.envs.mujoco import gl

    mj = env3._mj
    monkeypatch.chdir(tmp_path)
    got = []
    previous = mj.get_mju_user_warning()
    mj.set_mju_user_warning(got.append)
    try:
        gl.route_mujoco_warnings(mj)  # must not replace the user's callback
        assert mj.get_mju_user_warning() is not None and not mj.MjLogConfig.get().logto_file
        d = mj.MjData(env3.model)
        d.qpos[0] = np.nan
        mj.mj_checkPos(env3.model, d)
    finally:
        mj.set_mju_user_warning(previous)
    assert len(got) == 1 and "QPOS" in got[0] and list(tmp_path.iterdir()) == []


def test_render_every_step_frames(env3):
    env3.reset(reset_state_ids=[1, 2, 3])
    env3.cfg.render_every_step = True
    try:
        res = env3.chunk_step(torch.zeros(3, 2, 7))
    finally:
        env3.cfg.render_every_step = False
    assert res.info["frames"].shape == (3, 2, 32, 32, 3) and res.info["frames"].dtype == torch.uint8
    assert torch.equal(res.info["frames"][:, -1], res.obs["main_images"])


def test_gl_backend_errors(monkeypatch):
    from rlinf_isaac.envs.mujoco import gl

    with pytest.raises(ValueError, match="render_backend must be one of"):
        gl.select_gl_backend("vulkan")
    monkeypatch.setattr(gl, "_library_present", lambda backend: False)
    with pytest.raises(RuntimeError, match="apt-get install libegl1"):
        gl._check_library("egl")
    with pytest.raises(RuntimeError, match="apt-get install libosmesa6"):
        gl._check_library("osmesa")


def test_video_views_leave_policy_observations_bit_identical():
    # the same episodes with and without video views: observations, rewards and states match bit for bit
    envs = [make_env(TWO, num_envs=3, seed=0, image_size=32) for _ in range(2)]
    try:
        envs[1].set_video(64, num_envs=2)
        obs = [e.reset(reset_state_ids=[3, 4, 5]) for e in envs]
        gen = torch.Generator().manual_seed(0)
        for _ in range(2):
            a = (torch.rand(3, 4, 7, generator=gen) - 0.5) * 0.6
            res = [e.chunk_step(a) for e in envs]
            obs = [r.obs for r in res]
            for k in ("main_images", "wrist_images", "states"):
                assert torch.equal(obs[0][k], obs[1][k]), k
            assert torch.equal(res[0].reward, res[1].reward)
        assert "video_frames" not in res[0].info
        v = res[1].info["video_frames"]
        assert set(v) == {"main_images", "wrist_images"}
        assert v["main_images"].shape == v["wrist_images"].shape == (2, 4, 64, 64, 3)  # first 2 envs, C = 4
        assert v["main_images"].dtype == torch.uint8 and not torch.equal(v["main_images"], v["wrist_images"])
        envs[1].set_video(None)
        assert "video_frames" not in envs[1].chunk_step(torch.zeros(3, 1, 7)).info
    finally:
        for e in envs:
            e.close()


def test_video_views_are_rendered_at_the_video_size_not_upscaled():
    from rlinf_isaac.envs.base import upscaled_video_frames

    env = make_env(TWO, num_envs=2, seed=0)  # policy images 84 px
    try:
        env.reset(reset_state_ids=[1, 2])
        env.set_video(256)
        res = env.chunk_step(torch.zeros(2, 2, 7))
        v = res.info["video_frames"]
        assert v["main_images"].shape == (2, 2, 256, 256, 3) and res.obs["main_images"].shape == (2, 84, 84, 3)
        fresh = env._mj.Renderer(env.model, 256, 256)  # a fresh 256 px render of the same state
        for b in range(2):
            for key, cam in (("main_images", "table_cam"), ("wrist_images", "wrist_cam")):
                fresh.update_scene(env.datas[b], camera=cam)
                assert np.array_equal(fresh.render(), v[key][b, -1].numpy()), (b, key)
        fresh.close()
        # an upscaled 84 px image holds less detail finer than 84 px than the 256 px render does
        # (measured: 3.55 vs 1.99 for the table camera, 2.40 vs 1.42 for the wrist camera)
        up = upscaled_video_frames(res.obs, 256)
        for key in ("main_images", "wrist_images"):
            assert _fine_detail(v[key][:, -1]) > 1.4 * _fine_detail(up[key][:, 0]), key

    finally:
        env.close()


def _fine_detail(x):
    """Mean |x - x brought down to 84 px and back up|: content above the policy camera's band."""
    import torch.nn.functional as F

    x = x.permute(0, 3, 1, 2).float()
    lo = F.interpolate(F.interpolate(x, size=(84, 84), mode="area"), size=x.shape[-2:], mode="bilinear")
    return float((x - lo).abs().mean())
