"""A kit-less Isaac Lab 3.0 stack-cube scene built from primitives (no Franka asset offline).

What is real and what stands in (the lane test checks our adapter against this env):

* real Isaac Lab 3.0: ``ManagerBasedRLEnv``, ``launch_simulation`` (it decides: no Kit),
  Newton physics (MuJoCo Warp solver) on CPU, Newton Warp ray-traced cameras, the stack
  task's own observation / subtask / termination functions
  (``isaaclab_tasks.contrib.stack.mdp``: ``ee_frame_pos``, ``gripper_pos``,
  ``object_grasped``, ``object_stacked``, ``cubes_stacked``, ``root_height_below_minimum``)
  and its reset event ``randomize_object_pose``; our rewards installed by
  :func:`rlinf_isaac.envs.isaaclab.sim.launch.configure_env_cfg`.
* stand-ins: the Seattle lab table and the USD blocks are procedural cuboids; the Franka is
  a procedural 6-DoF Cartesian gantry (prismatic x, y, z + revolute roll, pitch, yaw) with a
  two-finger prismatic gripper, written to a USD file with ``pxr``. Its arm action is
  Isaac Lab's ``RelativeJointPositionAction`` over the six gantry joints (a relative
  end-effector motion for this kinematics) instead of the Franka's differential IK.
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

__all__ = ["CUBE_SIZE", "HAND_START", "write_gantry_usd", "make_kitless_stack_cfg", "build_kitless_env"]

CUBE_SIZE = 0.0468  # the stack task's height_diff: one cube height
HAND_START = (0.5, 0.0, 0.30)  # gantry hand position at zero joint positions (env frame)
ARM_JOINTS = ("slide_x", "slide_y", "slide_z", "rot_x", "rot_y", "rot_z")
FINGER_JOINTS = ("finger_left", "finger_right")
FINGER_OPEN = 0.04


def _box_body(stage, path: str, pos, size, mass: float, collide: bool, color=(0.6, 0.6, 0.6)):
    """Rigid link at ``pos`` with a box geometry of ``size`` (optionally colliding)."""
    from pxr import Gf, UsdGeom, UsdPhysics

    xf = UsdGeom.Xform.Define(stage, path)
    xf.AddTranslateOp().Set(Gf.Vec3d(*pos))
    UsdPhysics.RigidBodyAPI.Apply(xf.GetPrim())
    mass_api = UsdPhysics.MassAPI.Apply(xf.GetPrim())
    mass_api.CreateMassAttr(mass)
    i = mass * 1e-3  # small, well-conditioned diagonal inertia
    mass_api.CreateDiagonalInertiaAttr(Gf.Vec3f(i, i, i))
    if size is not None:
        cube = UsdGeom.Cube.Define(stage, path + "/geom")
        cube.CreateSizeAttr(1.0)
        cube.AddScaleOp().Set(Gf.Vec3f(*size))
        cube.CreateDisplayColorAttr([Gf.Vec3f(*color)])
        if collide:
            UsdPhysics.CollisionAPI.Apply(cube.GetPrim())
    return xf


def _joint(stage, path: str, kind: str, body0: str, body1: str, axis: str, pos0, limits, rot0=None):
    """Prismatic / revolute joint from ``body0`` (at local ``pos0``) to ``body1``'s origin."""
    from pxr import Gf, Sdf, UsdPhysics

    cls = UsdPhysics.PrismaticJoint if kind == "prismatic" else UsdPhysics.RevoluteJoint
    j = cls.Define(stage, path)
    j.CreateBody0Rel().SetTargets([Sdf.Path(body0)])
    j.CreateBody1Rel().SetTargets([Sdf.Path(body1)])
    j.CreateAxisAttr(axis)
    j.CreateLocalPos0Attr(Gf.Vec3f(*pos0))
    j.CreateLocalPos1Attr(Gf.Vec3f(0.0, 0.0, 0.0))
    rot = Gf.Quatf(*(rot0 or (1.0, 0.0, 0.0, 0.0)))  # (w, x, y, z)
    j.CreateLocalRot0Attr(rot)
    j.CreateLocalRot1Attr(rot)
    j.CreateLowerLimitAttr(limits[0])
    j.CreateUpperLimitAttr(limits[1])
    drive = UsdPhysics.DriveAPI.Apply(j.GetPrim(), "linear" if kind == "prismatic" else "angular")
    drive.CreateTypeAttr("force")
    return j


def write_gantry_usd(path: str) -> str:
    """Write the procedural gantry robot (fixed base, 6 arm joints, 2 fingers) to ``path``."""
    from pxr import Sdf, Usd, UsdGeom, UsdPhysics

    stage = Usd.Stage.CreateNew(path)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/Robot")
    stage.SetDefaultPrim(root.GetPrim())
    r = "/Robot"
    _box_body(stage, f"{r}/base", (0.0, 0.0, 0.0), (0.10, 0.10, 0.04), 5.0, False)
    UsdPhysics.ArticulationRootAPI.Apply(stage.GetPrimAtPath(f"{r}/base"))
    fixed = UsdPhysics.FixedJoint.Define(stage, f"{r}/root_joint")
    fixed.CreateBody1Rel().SetTargets([Sdf.Path(f"{r}/base")])
    chain = ["base", "link_x", "link_y", "link_z", "link_roll", "link_pitch", "hand"]
    axes = ["X", "Y", "Z", "X", "Y", "Z"]
    limits = [(-0.4, 0.4), (-0.4, 0.4), (-0.3, 0.3), (-180.0, 180.0), (-180.0, 180.0), (-180.0, 180.0)]
    for k, (name, axis, lim) in enumerate(zip(ARM_JOINTS, axes, limits)):
        child = chain[k + 1]
        is_hand = child == "hand"
        _box_body(stage, f"{r}/{child}", HAND_START, (0.05, 0.08, 0.03) if is_hand else None,
                  0.5, False, color=(0.9, 0.9, 0.9))
        pos0 = HAND_START if k == 0 else (0.0, 0.0, 0.0)
        kind = "prismatic" if k < 3 else "revolute"
        _joint(stage, f"{r}/{name}", kind, f"{r}/{chain[k]}", f"{r}/{child}", axis, pos0, lim)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        off = (0.0, sign * 0.012, -0.05)  # finger origin on the hand at q = 0 (closed)
        pos = tuple(h + o for h, o in zip(HAND_START, off))
        _box_body(stage, f"{r}/finger_{side}_link", pos, (0.02, 0.01, 0.06), 0.05, True, color=(0.2, 0.2, 0.2))
        # the right finger's joint frame is turned 180 deg about z: +q opens both fingers
        rot = (1.0, 0.0, 0.0, 0.0) if sign > 0 else (0.0, 0.0, 0.0, 1.0)
        _joint(stage, f"{r}/finger_{side}", "prismatic", f"{r}/hand", f"{r}/finger_{side}_link", "Y",
               off, (0.0, FINGER_OPEN), rot0=rot)
    stage.GetRootLayer().Save()
    return path


def _place_stacked(env, env_ids, stacked_env_ids: Sequence[int] = (), origin=(0.5, -0.15)):
    """Reset event: in envs listed in ``stacked_env_ids`` put cube_2 on cube_1 and cube_3 on cube_2."""
    import torch

    ids = [e for e in _as_list(env_ids, env.num_envs) if e in set(stacked_env_ids)]
    for e in ids:
        for k, name in enumerate(("cube_1", "cube_2", "cube_3")):
            z = CUBE_SIZE * (k + 0.5)  # cube k rests on cube k-1: centre at (k + 1/2) * size
            pos = torch.tensor([[origin[0], origin[1], z]], device=env.device) + env.scene.env_origins[e, :3]
            quat = torch.tensor([[0.0, 0.0, 0.0, 1.0]], device=env.device)  # identity, XYZW
            env.scene[name].write_root_pose_to_sim_index(
                root_pose=torch.cat([pos, quat], dim=-1), env_ids=torch.tensor([e], device=env.device))
            env.scene[name].write_root_velocity_to_sim_index(
                root_velocity=torch.zeros(1, 6, device=env.device), env_ids=torch.tensor([e], device=env.device))


def _as_list(env_ids, num_envs: int) -> list[int]:
    if env_ids is None:
        return list(range(num_envs))
    if isinstance(env_ids, slice):
        return list(range(num_envs))[env_ids]
    return [int(e) for e in env_ids.reshape(-1).tolist()]


def _cube(name: str, pos, color):
    import isaaclab.sim as sim_utils
    from isaaclab.assets import RigidObjectCfg

    return RigidObjectCfg(
        prim_path="{ENV_REGEX_NS}/" + name,
        init_state=RigidObjectCfg.InitialStateCfg(pos=pos, rot=(0.0, 0.0, 0.0, 1.0)),
        spawn=sim_utils.CuboidCfg(
            size=(CUBE_SIZE,) * 3,
            rigid_props=sim_utils.UsdPhysicsRigidBodyCfg(),
            mass_props=sim_utils.MassCfg(mass=0.05),
            collision_props=sim_utils.UsdPhysicsCollisionCfg(),
            visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=color),
        ),
    )


def _scene_cfg(num_envs: int, usd_path: str):
    """Table, three cubes (blue, red, green), the gantry robot, ee frame, table and wrist cameras."""
    import isaaclab.sim as sim_utils
    from isaaclab.actuators import ImplicitActuatorCfg
    from isaaclab.assets import ArticulationCfg, AssetBaseCfg
    from isaaclab.scene import InteractiveSceneCfg
    from isaaclab.sensors import CameraCfg
    from isaaclab.utils import configclass
    from isaaclab_newton.renderers import NewtonWarpRendererCfg
    from isaaclab_tasks.contrib.stack.stack_env_cfg import make_ee_frame_cfg

    pinhole = sim_utils.PinholeCameraCfg(focal_length=24.0, focus_distance=400.0, horizontal_aperture=20.955,
                                         clipping_range=(0.05, 4.0))

    @configclass
    class KitlessStackSceneCfg(InteractiveSceneCfg):
        table = AssetBaseCfg(
            prim_path="{ENV_REGEX_NS}/Table",
            init_state=AssetBaseCfg.InitialStateCfg(pos=(0.5, 0.0, -0.025)),  # top face at z = 0
            spawn=sim_utils.CuboidCfg(size=(0.8, 1.0, 0.05), collision_props=sim_utils.UsdPhysicsCollisionCfg(),
                                      visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=(0.55, 0.4, 0.25))),
        )
        light = AssetBaseCfg(prim_path="/World/light",
                             spawn=sim_utils.DomeLightCfg(color=(0.75, 0.75, 0.75), intensity=3000.0))
        robot = ArticulationCfg(
            prim_path="{ENV_REGEX_NS}/Robot",
            spawn=sim_utils.UsdFileCfg(usd_path=usd_path),
            init_state=ArticulationCfg.InitialStateCfg(
                joint_pos={**{j: 0.0 for j in ARM_JOINTS}, "finger_.*": FINGER_OPEN}),
            actuators={
                "slides": ImplicitActuatorCfg(joint_names_expr=["slide_.*"], stiffness=2000.0, damping=200.0),
                "wrist": ImplicitActuatorCfg(joint_names_expr=["rot_.*"], stiffness=50.0, damping=5.0),
                "fingers": ImplicitActuatorCfg(joint_names_expr=["finger_.*"], stiffness=400.0, damping=40.0),
            },
        )
        ee_frame = make_ee_frame_cfg("{ENV_REGEX_NS}/Robot/base",
                                     [("{ENV_REGEX_NS}/Robot/hand", "end_effector", (0.0, 0.0, -0.08))])
        cube_1 = _cube("Cube_1", (0.40, 0.00, CUBE_SIZE / 2), (0.1, 0.2, 0.9))
        cube_2 = _cube("Cube_2", (0.55, 0.05, CUBE_SIZE / 2), (0.9, 0.1, 0.1))
        cube_3 = _cube("Cube_3", (0.60, -0.10, CUBE_SIZE / 2), (0.1, 0.8, 0.2))
        table_cam = CameraCfg(
            prim_path="{ENV_REGEX_NS}/table_cam", update_period=0.0, height=84, width=84, data_types=["rgb"],
            spawn=pinhole, renderer_cfg=NewtonWarpRendererCfg(),
            # the stack task's table camera pose (ROS convention, XYZW)
            offset=CameraCfg.OffsetCfg(pos=(1.0, 0.0, 0.4), rot=(-0.61237, -0.61237, 0.35355, 0.35355),
                                       convention="ros"))
        wrist_cam = CameraCfg(
            prim_path="{ENV_REGEX_NS}/Robot/hand/wrist_cam", update_period=0.0, height=84, width=84,
            data_types=["rgb"], spawn=pinhole, renderer_cfg=NewtonWarpRendererCfg(),
            offset=CameraCfg.OffsetCfg(pos=(0.0, 0.0, -0.02), rot=(1.0, 0.0, 0.0, 0.0), convention="ros"))

    return KitlessStackSceneCfg(num_envs=num_envs, env_spacing=2.5, replicate_physics=True)


def make_kitless_stack_cfg(num_envs: int, usd_path: str, stacked_env_ids: Sequence[int] = ()):
    """The kit-less stand-in of the stack visuomotor env cfg (same groups, terms and timing).

    Physics: the stack task's own ``newton_mjwarp`` preset (MuJoCo Warp through Newton).
    stacked_env_ids: envs whose every reset puts the three cubes already stacked (the real
        ``cubes_stacked`` success term then fires on their first step).
    """
    from isaaclab.envs import ManagerBasedRLEnvCfg
    from isaaclab.managers import EventTermCfg as EventTerm
    from isaaclab.managers import ObservationGroupCfg as ObsGroup
    from isaaclab.managers import ObservationTermCfg as ObsTerm
    from isaaclab.managers import SceneEntityCfg
    from isaaclab.managers import TerminationTermCfg as DoneTerm
    from isaaclab.utils import configclass
    from isaaclab_tasks.contrib.stack import mdp
    from isaaclab_tasks.contrib.stack.mdp import stack_events
    from isaaclab_tasks.contrib.stack.stack_env_cfg import PhysicsCfg

    cubes = [SceneEntityCfg("cube_1"), SceneEntityCfg("cube_2"), SceneEntityCfg("cube_3")]
    robot, ee = SceneEntityCfg("robot"), SceneEntityCfg("ee_frame")

    def cam(name):
        return ObsTerm(func=mdp.image_rgb, params={"sensor_cfg": SceneEntityCfg(name), "normalize": False})

    @configclass
    class PolicyCfg(ObsGroup):
        eef_pos = ObsTerm(func=mdp.ee_frame_pos)
        eef_quat = ObsTerm(func=mdp.ee_frame_quat)
        gripper_pos = ObsTerm(func=mdp.gripper_pos)
        table_cam = cam("table_cam")
        wrist_cam = cam("wrist_cam")

        def __post_init__(self):
            self.enable_corruption, self.concatenate_terms = False, False

    @configclass
    class SubtaskCfg(ObsGroup):
        grasp_1 = ObsTerm(func=mdp.object_grasped,
                          params={"robot_cfg": robot, "ee_frame_cfg": ee, "object_cfg": cubes[1]})
        stack_1 = ObsTerm(func=mdp.object_stacked,
                          params={"robot_cfg": robot, "upper_object_cfg": cubes[1], "lower_object_cfg": cubes[0]})
        grasp_2 = ObsTerm(func=mdp.object_grasped,
                          params={"robot_cfg": robot, "ee_frame_cfg": ee, "object_cfg": cubes[2]})

        def __post_init__(self):
            self.enable_corruption, self.concatenate_terms = False, False

    @configclass
    class ObservationsCfg:
        policy: PolicyCfg = PolicyCfg()
        subtask_terms: SubtaskCfg = SubtaskCfg()

    @configclass
    class ActionsCfg:
        arm_action = mdp.RelativeJointPositionActionCfg(asset_name="robot", joint_names=list(ARM_JOINTS), scale=0.02)
        gripper_action = mdp.BinaryJointPositionActionCfg(
            asset_name="robot", joint_names=["finger_.*"],
            open_command_expr={"finger_.*": FINGER_OPEN}, close_command_expr={"finger_.*": 0.0})

    @configclass
    class EventCfg:
        reset_all = EventTerm(func=mdp.reset_scene_to_default, mode="reset")
        randomize_cube_positions = EventTerm(
            func=stack_events.randomize_object_pose, mode="reset",
            params={"pose_range": {"x": (0.4, 0.6), "y": (-0.10, 0.10), "z": (CUBE_SIZE / 2, CUBE_SIZE / 2),
                                   "yaw": (-1.0, 1.0)}, "min_separation": 0.1, "asset_cfgs": cubes})
        place_stacked = EventTerm(func=_place_stacked, mode="reset",
                                  params={"stacked_env_ids": [int(e) for e in stacked_env_ids]})

    @configclass
    class TerminationsCfg:
        time_out = DoneTerm(func=mdp.time_out, time_out=True)
        cube_1_dropping = DoneTerm(func=mdp.root_height_below_minimum,
                                   params={"minimum_height": -0.05, "asset_cfg": cubes[0]})
        cube_2_dropping = DoneTerm(func=mdp.root_height_below_minimum,
                                   params={"minimum_height": -0.05, "asset_cfg": cubes[1]})
        cube_3_dropping = DoneTerm(func=mdp.root_height_below_minimum,
                                   params={"minimum_height": -0.05, "asset_cfg": cubes[2]})
        success = DoneTerm(func=mdp.cubes_stacked)

    @configclass
    class KitlessStackEnvCfg(ManagerBasedRLEnvCfg):
        scene = _scene_cfg(num_envs, usd_path)
        observations = ObservationsCfg()
        actions = ActionsCfg()
        events = EventCfg()
        terminations = TerminationsCfg()
        rewards = None  # ours are installed by configure_env_cfg
        commands = None
        curriculum = None
        gripper_joint_names = ["finger_.*"]
        gripper_open_val = FINGER_OPEN
        gripper_threshold = 0.005

        def __post_init__(self):
            self.decimation = 5  # as the stack task: 100 Hz physics, 20 Hz control
            self.episode_length_s = 30.0
            self.sim.dt = 0.01
            self.sim.render_interval = self.decimation
            self.sim.physics = PhysicsCfg().newton_mjwarp

    return KitlessStackEnvCfg()


def build_kitless_env(task_id: str, num_envs: int, image_size, max_episode_steps: int, reward_type: str,
                      action_scale=None, seed: int = 0, device: str = "cpu",
                      stacked_env_ids: Sequence[int] = (), usd_dir: str | None = None) -> dict:
    """Simulator-process builder (same contract as ``isaaclab_launch.build_isaaclab_env``).

    Builds the kit-less stand-in scene instead of the registered task, configured by our real
    ``configure_env_cfg`` (envs, device, camera sizes, episode length, our reward terms), then
    starts it with Isaac Lab's ``launch_simulation`` (which must choose no Kit).
    """
    from isaaclab.app import launch_simulation
    from isaaclab.envs import ManagerBasedRLEnv
    from isaaclab.managers import RewardTermCfg

    from rlinf_isaac.envs.isaaclab.sim import launch as L
    from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS

    if action_scale is not None:
        raise ValueError(f"action_scale = {action_scale!r}: the gantry stand-in keeps its own joint scale (None)")
    usd_dir = usd_dir or tempfile.mkdtemp(prefix="rlinf_kitless_")
    usd_path = write_gantry_usd(os.path.join(usd_dir, "gantry.usda"))
    env_cfg = make_kitless_stack_cfg(num_envs, usd_path, stacked_env_ids)
    L.configure_env_cfg(env_cfg, ISAACLAB_STACK_TASKS[task_id], num_envs=num_envs, image_size=image_size,
                        max_episode_steps=max_episode_steps, reward_type=reward_type, action_scale=None,
                        seed=seed, device=device, reward_term_cls=RewardTermCfg)
    ctx = launch_simulation(env_cfg, {"headless": True, "device": device})
    ctx.__enter__()
    env = ManagerBasedRLEnv(cfg=env_cfg)
    version = L.isaaclab_version()
    return {
        "env": env,
        "stepper": {"quat_order": L.quat_order_for(version)},
        "info": {"isaaclab_id": "kitless-stand-in", "isaaclab_version": version,
                 "step_dt": float(env_cfg.sim.dt * env_cfg.decimation),
                 "kit_loaded": _kit_loaded()},
        "close": lambda: ctx.__exit__(None, None, None),
    }


def _kit_loaded() -> bool:
    import sys

    return any(m == "isaacsim" or m.startswith(("isaacsim.", "omni.kit")) for m in sys.modules)
