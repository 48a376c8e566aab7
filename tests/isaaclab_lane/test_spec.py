"""Our rewarded stack task configs checked against the real isaaclab package (3.0, kit-less)."""

import sys

import pytest

pytest.importorskip("isaaclab")

from rlinf_isaac.envs.isaaclab.sim import launch as L  # noqa: E402
from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS  # noqa: E402


@pytest.fixture(scope="module")
def registered():
    return L.import_task_packages()


@pytest.mark.parametrize("task_id", sorted(ISAACLAB_STACK_TASKS))
def test_task_ids_resolve_to_registered_isaaclab_ids(registered, task_id):
    import gymnasium

    task = ISAACLAB_STACK_TASKS[task_id]
    resolved = L.resolve_isaaclab_id(task.isaaclab_ids)
    version = L.isaaclab_version()
    assert resolved == (task.isaaclab_ids[0] if version.startswith("3.") else task.isaaclab_ids[1])
    spec = gymnasium.spec(resolved)
    assert spec.entry_point == "isaaclab.envs:ManagerBasedRLEnv"
    assert "env_cfg_entry_point" in spec.kwargs


@pytest.mark.parametrize("task_id", sorted(ISAACLAB_STACK_TASKS))
def test_env_cfg_matches_our_spec(registered, task_id):
    task = ISAACLAB_STACK_TASKS[task_id]
    cfg = L.load_env_cfg(L.resolve_isaaclab_id(task.isaaclab_ids))
    policy = vars(cfg.observations.policy)
    for term in task.camera_terms + task.state_terms:
        assert term in policy, f"observation term {term!r} missing from the policy group"
    for cam in task.camera_terms:
        assert policy[cam].params["sensor_cfg"].name == cam and policy[cam].params["normalize"] is False
        cam_cfg = getattr(cfg.scene, cam)
        assert "rgb" in cam_cfg.data_types and cam_cfg.height > 0 and cam_cfg.width > 0
    assert set(task.subtask_terms) <= set(vars(cfg.observations.subtask_terms))
    terms = [k for k, v in vars(cfg.terminations).items() if v is not None]
    assert task.success_term in terms and set(task.failure_terms) <= set(terms) and "time_out" in terms
    assert type(cfg.actions.arm_action).__name__ == "DifferentialInverseKinematicsActionCfg"
    assert cfg.actions.arm_action.controller.use_relative_mode is True
    assert cfg.actions.arm_action.scale == task.arm_action_scale
    assert type(cfg.actions.gripper_action).__name__ == "BinaryJointPositionActionCfg"
    assert cfg.decimation == task.decimation and cfg.sim.dt == pytest.approx(task.sim_dt)
    assert cfg.rewards is None  # Isaac Lab defines none: ours are added by configure_env_cfg
    reset_events = [k for k, v in vars(cfg.events).items() if v is not None and v.mode == "reset"]
    assert "randomize_cube_positions" in reset_events


def test_configure_env_cfg_installs_rewards_and_sizes(registered):
    from isaaclab.managers import RewardTermCfg

    task = ISAACLAB_STACK_TASKS["IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor"]
    cfg = L.load_env_cfg(L.resolve_isaaclab_id(task.isaaclab_ids))
    L.configure_env_cfg(cfg, task, num_envs=3, image_size=(96, 128), max_episode_steps=100,
                        reward_type="staged", action_scale=0.25, seed=4, device="cpu",
                        reward_term_cls=RewardTermCfg)
    assert cfg.scene.num_envs == 3 and cfg.sim.device == "cpu" and cfg.seed == 4
    assert (cfg.scene.table_cam.height, cfg.scene.table_cam.width) == (96, 128)
    assert (cfg.scene.wrist_cam.height, cfg.scene.wrist_cam.width) == (96, 128)
    assert cfg.actions.arm_action.scale == 0.25
    # step_dt = 0.01 * 5 = 0.05 s; Isaac Lab times out at ceil(100.5) = 101 steps, after ours
    assert cfg.episode_length_s == pytest.approx(100.5 * 0.05)
    assert set(cfg.rewards) == {"success", "subtasks"}
    assert isinstance(cfg.rewards["success"], RewardTermCfg)
    assert cfg.rewards["success"].weight == pytest.approx(20.0)  # 1.0 / 0.05


def test_version_and_quaternion_order():
    version = L.isaaclab_version()
    assert L.quat_order_for(version) == ("xyzw" if int(version.split(".")[0]) >= 3 else "wxyz")
    assert L.quat_order_for("2.3.0") == "wxyz"
    assert "isaacsim" not in sys.modules  # all of the above is kit-less
