"""IsaacLabEnv end to end: simulator in its own process (the fake builder), faults, shutdown."""

import os
import shutil
import sys
import time

import pytest
import torch

from rlinf_isaac.envs.base import upscaled_video_frames
from rlinf_isaac.envs.isaaclab import IsaacLabEnv, IsaacLabEnvCfg, SimulatorError
from rlinf_isaac.envs.registry import list_tasks, make_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FAKE = "tests.envs.isaaclab.fake_isaaclab:build_fake_env"
TASK = "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor-v0"


def cfg(**kw):
    base = dict(task_id=TASK, num_envs=2, image_size=(24, 24), max_episode_steps=6, device="cpu",
                builder=FAKE, builder_kwargs={"quat_order": "xyzw"}, startup_timeout_s=60,
                step_timeout_s=20, extra_env={"PYTHONPATH": REPO})
    base.update(kw)
    return IsaacLabEnvCfg(**base)


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_contract_through_the_simulator_process():
    with IsaacLabEnv(cfg()) as env:
        assert env.spec.control_hz == pytest.approx(20.0)  # dt 0.01 * decimation 5 = 0.05 s
        assert env.info["quat_order"] == "xyzw" and env.info["num_envs"] == 2
        assert "isaaclab" not in sys.modules  # the env worker never imports Isaac Lab
        obs = env.reset(seed=3, reset_state_ids=[5, 5])
        assert obs["main_images"].dtype == torch.uint8 and obs["main_images"].shape == (2, 24, 24, 3)
        assert torch.equal(obs["states"][0], obs["states"][1])  # one id -> one start state
        r = env.chunk_step(torch.zeros(2, 4, 7))
        assert r.reward.shape == (2, 4) and r.info["valid"].all()
        r = env.chunk_step(torch.zeros(2, 4, 7))  # 6-step episodes: truncated at sub-step 1
        assert r.truncated[:, 1].all() and not r.info["valid"][:, 2:].any()
        assert r.info["episode"].done.all() and r.info["episode"].episode_len.tolist() == [6, 6]
        assert "video_frames" not in r.info
        env.set_video(48, num_envs=1)  # no rendering at another size here: upscaled observations
        r = env.chunk_step(torch.zeros(2, 4, 7))
        v = r.info["video_frames"]
        assert v["main_images"].shape == v["wrist_images"].shape == (1, 1, 48, 48, 3)
        assert torch.equal(v["main_images"], upscaled_video_frames(r.obs, 48, 1)["main_images"])
        r = env.chunk_step(torch.zeros(2, 4, 7))  # the second episode ends at sub-step 1
        assert r.info["episode"].done.all()
        final = upscaled_video_frames(r.info["final_obs"], 48, 1)["main_images"]
        assert not torch.equal(final, upscaled_video_frames(r.obs, 48, 1)["main_images"])  # obs: next episode
        assert torch.equal(r.info["video_frames"]["main_images"], final)  # the video: the ended episode's view
        pid = env.sim.proc.pid
    assert _gone(pid)


def test_final_obs_off_until_a_video_is_asked_for():
    with IsaacLabEnv(cfg(capture_final_obs=False)) as env:
        env.reset(seed=3)
        r = env.chunk_step(torch.zeros(2, 8, 7))  # 6-step episodes end in the chunk
        assert r.info["episode"].done.all() and r.info["final_obs"] is None
        env.set_video(48, num_envs=1)  # the video shows the ended episode's last view: captured again
        r = env.chunk_step(torch.zeros(2, 8, 7))
        assert r.info["episode"].done.all() and r.info["final_obs"] is not None
        final = upscaled_video_frames(r.info["final_obs"], 48, 1)["main_images"]
        assert torch.equal(r.info["video_frames"]["main_images"], final)


def test_async_chunks_run_in_both_simulators_at_once_and_match_sync():
    a, b = IsaacLabEnv(cfg()), IsaacLabEnv(cfg())
    try:
        for env in (a, b):
            env.reset(seed=3, reset_state_ids=[5, 6])
        act = torch.rand(2, 4, 7) - 0.5
        assert not a.chunk_step_ready()  # nothing pending
        a.chunk_step_async(act)
        b.chunk_step_async(act)  # both simulator processes step now
        with pytest.raises(RuntimeError, match="twice without chunk_step_wait"):
            a.chunk_step_async(act)
        with pytest.raises(RuntimeError, match="while a chunk is pending"):
            a.reset()
        deadline = time.monotonic() + 20
        while not (a.chunk_step_ready() and b.chunk_step_ready()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert a.chunk_step_ready() and b.chunk_step_ready()
        ra, rb = a.chunk_step_wait(), b.chunk_step_wait()
        assert not a.chunk_step_ready()
        with pytest.raises(RuntimeError, match="without a pending chunk_step_async"):
            a.chunk_step_wait()
        for r in (ra, rb):
            assert torch.equal(r.obs["states"], ra.obs["states"]) and torch.equal(r.reward, ra.reward)
        a.reset(seed=3, reset_state_ids=[5, 6])
        assert torch.equal(a.chunk_step(act).obs["states"], ra.obs["states"])  # sync = async
    finally:
        a.close()
        b.close()


def test_registry_builds_isaaclab_tasks_lazily():
    ids = list_tasks(backend="isaaclab")
    assert ids == sorted([
        "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor-v0", "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor-Cosmos-v0",
        "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor", "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor-Cosmos",
        "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor-Rewarded-v0",
        "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor-Cosmos-Rewarded-v0",
    ])
    env = make_env("IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor", num_envs=1, image_size=32,
                   max_episode_steps=4, reward_type="staged", num_workers=0,
                   extra={"device": "cpu", "builder": FAKE, "extra_env": {"PYTHONPATH": REPO}})
    sim = env.sim
    try:
        assert env.spec.image_size == (32, 32) and env.reset()["states"].shape == (1, 8)
    finally:
        env.close()
    assert not os.path.exists(sim._dir)  # a clean close removes the socket and log folder
    with pytest.raises(TypeError, match=r"unknown Isaac Lab env argument\(s\) \['colour'\]"):
        make_env(TASK, num_envs=1, colour="red")


def test_dead_simulator_is_reported_with_exit_code_and_log():
    env = IsaacLabEnv(cfg(builder_kwargs={"fault": "exit", "fault_after": 2}))
    env.reset()
    sim = env.sim
    t0 = time.monotonic()
    with pytest.raises(SimulatorError, match=r"exited with code 7[\s\S]*injected fault 'exit' at step 3"):
        env.chunk_step(torch.zeros(2, 4, 7))
    assert time.monotonic() - t0 < 5.0  # found by polling, not by the 20 s timeout
    env.close()
    env.close()  # idempotent
    assert os.path.exists(sim.log_path)  # the log the error names is kept
    shutil.rmtree(sim._dir)


def test_stuck_simulator_times_out_and_is_killed():
    env = IsaacLabEnv(cfg(builder_kwargs={"fault": "hang", "fault_after": 0}, step_timeout_s=1.5))
    env.reset()
    pid = env.sim.proc.pid
    t0 = time.monotonic()
    with pytest.raises(SimulatorError, match=r"did not answer 'chunk_step' within 2 s \(killed\)[\s\S]*injected"):
        env.chunk_step(torch.zeros(2, 1, 7))
    assert 1.4 < time.monotonic() - t0 < 8.0
    assert _gone(pid) and not env.alive
    env.close()


def test_startup_failure_reports_the_traceback():
    with pytest.raises(SimulatorError, match="failed to create the env"):
        IsaacLabEnv(cfg(builder_kwargs={"fault": "init_error"}))


def test_config_errors_name_key_and_value():
    with pytest.raises(ValueError, match=r"env.reward_type = 'dense' is invalid"):
        cfg(reward_type="dense")
    with pytest.raises(ValueError, match=r"env.image_size = \(8, 8\)"):
        cfg(image_size=8)
    with pytest.raises(KeyError, match="not an Isaac Lab task"):
        IsaacLabEnv(cfg(task_id="MuJoCo-Stack"))


def test_observation_transport_choice():
    from rlinf_isaac.envs.isaaclab.sim.server import obs_transport

    assert obs_transport("pipe", "cuda:0", torch.__version__) == (False, "observations through a pipe")
    on, why = obs_transport("cuda_ipc", "cpu", torch.__version__)
    assert not on and "simulator on cpu" in why
    on, why = obs_transport("cuda_ipc", "cuda:0", "0.0-other")
    assert not on and "0.0-other in the env worker" in why and "same build" in why
    assert obs_transport("cuda_ipc", "cuda:0", torch.__version__) == (True, "observations by CUDA IPC")


def test_cuda_ipc_asked_without_a_gpu_falls_back_to_the_pipe_and_says_so():
    with IsaacLabEnv(cfg(obs_transport="cuda_ipc")) as env:
        want = "observations through a pipe" if not torch.cuda.is_available() else "simulator on cpu"
        assert want in env.describe() and env.info["obs_transport"].startswith("observations through a pipe")
        obs = env.reset(seed=3)
        assert obs["main_images"].device.type == "cpu"
    with pytest.raises(ValueError, match="env.extra.obs_transport = 'shm'"):
        cfg(obs_transport="shm")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_ipc_observations_stay_on_the_gpu_and_equal_the_pipes():
    """The fake env simulated on the GPU: by CUDA IPC the observations arrive on the GPU, equal
    to the pipe's, and stay valid after the simulator has produced the next ones."""
    got = {}
    for transport in ("pipe", "cuda_ipc"):
        with IsaacLabEnv(cfg(device="cuda:0", obs_transport=transport)) as env:
            first = env.reset(seed=3, reset_state_ids=[5, 7])
            steps = [env.chunk_step(torch.full((2, 4, 7), 0.1 * k)) for k in range(3)]
            got[transport] = (first, steps, env.info["obs_transport"])
    (p_first, p_steps, p_how), (i_first, i_steps, i_how) = got["pipe"], got["cuda_ipc"]
    assert p_how == "observations through a pipe" and i_how == "observations by CUDA IPC"
    assert i_first["main_images"].is_cuda and i_steps[0].obs["states"].is_cuda
    assert not i_steps[0].reward.is_cuda  # only the observations stay on the GPU
    for a, b in zip([p_first] + [r.obs for r in p_steps], [i_first] + [r.obs for r in i_steps]):
        for k in ("main_images", "wrist_images", "states"):
            assert torch.equal(a[k], b[k].cpu()), k
