"""Isaac Lab 3.0's own stack task, kit-less on Newton: the few overrides it needs without Isaac Sim.

Runs in the simulator process. Everything of the registered task config stays Isaac Lab's
(the IK-Rel action, observation, subtask and termination terms, camera poses, dt and
decimation, the Franka robot cfg with its actuators and end-effector frames), except what
cannot run without Isaac Sim or NVIDIA's asset servers:

* physics: the task's own ``newton_mjwarp`` preset (MuJoCo-Warp through Newton);
* the robot USD: the project's generated Franka (``assets/franka_panda.usda``, same names,
  frames and joints as Isaac Lab's Franka);
* table, ground and the three cubes: procedural cuboids (cube edge 0.0468 m, the task's stack
  height; table top at z = 0), and the cubes' spawn height their half edge;
* cameras: rendered by Newton's Warp ray tracer (CPU or any CUDA GPU; no RT cores) instead of
  RTX; the wrist camera's prim path written out (a camera is spawned at one path, not a regex)
  and its pose read back every frame (it rides on the hand);
* ``scene.replicate_physics = True`` (Newton replicates one world; per-env USD differences
  only served texture randomisation);
* the reset events that randomise lights and textures (they need Kit and Nucleus) are left out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CUBE_COLORS", "CUBE_EDGE", "KIT_ONLY_EVENTS", "apply_newton_overrides", "refresh_after_reset"]

CUBE_EDGE = 0.0468  # m: the height difference Isaac Lab's cubes_stacked expects between cubes
CUBE_COLORS = {"cube_1": (0.1, 0.25, 0.9), "cube_2": (0.9, 0.12, 0.1), "cube_3": (0.15, 0.8, 0.2)}
CUBE_MASS = 0.1  # kg
TABLE_SIZE = (1.2, 1.4, 0.05)  # m, centred under the task's workspace
TABLE_CENTER = (0.5, 0.0)
GROUND_Z = -1.05  # the task's ground plane height
KIT_ONLY_EVENTS = ("randomize_light", "randomize_table_visual_material", "randomize_robot_arm_visual_texture")


def _cuboid(size, color, *, rigid: bool, mass: float | None = None):
    import isaaclab.sim as sim_utils

    kwargs: dict[str, Any] = dict(
        size=tuple(size), collision_props=sim_utils.CollisionPropertiesCfg(),
        visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=tuple(color)))
    if rigid:
        kwargs.update(rigid_props=sim_utils.RigidBodyPropertiesCfg(), mass_props=sim_utils.MassPropertiesCfg(mass=mass))
    return sim_utils.CuboidCfg(**kwargs)


def _replace_static(scene: Any, name: str, pos, size, color) -> None:
    from isaaclab.assets import AssetBaseCfg

    old = getattr(scene, name)
    setattr(scene, name, AssetBaseCfg(prim_path=old.prim_path, init_state=AssetBaseCfg.InitialStateCfg(pos=pos),
                                      spawn=_cuboid(size, color, rigid=False)))


def _replace_cubes(env_cfg: Any) -> None:
    half = CUBE_EDGE / 2
    for name, color in CUBE_COLORS.items():
        cube = getattr(env_cfg.scene, name)
        cube.spawn = _cuboid((CUBE_EDGE,) * 3, color, rigid=True, mass=CUBE_MASS)
        x, y, _ = cube.init_state.pos
        cube.init_state.pos = (x, y, half)
    pose_range = env_cfg.events.randomize_cube_positions.params["pose_range"]
    pose_range["z"] = (half, half)


def _newton_cameras(env_cfg: Any, task: Any) -> None:
    from isaaclab_newton.renderers import NewtonWarpRendererCfg

    for cam in task.camera_terms:
        cam_cfg = getattr(env_cfg.scene, cam)
        cam_cfg.renderer_cfg = NewtonWarpRendererCfg()
        cam_cfg.data_types = ["rgb"]
    wrist = env_cfg.scene.wrist_cam
    wrist.prim_path = "{ENV_REGEX_NS}/Robot/panda_hand/wrist_cam"
    # The Warp renderer renders from the camera's pose in its data, which is the pose at start-up
    # unless this is set (Kit moves the prim with the hand; without Kit the pose must be read back)
    wrist.update_latest_camera_pose = True


def apply_newton_overrides(env_cfg: Any, task: Any) -> Any:
    """Make the registered stack visuomotor cfg run kit-less on Newton (see the module docstring)."""
    from isaaclab_tasks.utils.hydra import resolve_presets

    from rlinf_isaac.envs.isaaclab.assets.franka import FRANKA_USD

    resolve_presets(env_cfg, ("newton_mjwarp",))
    scene = env_cfg.scene
    scene.replicate_physics = True
    scene.robot.spawn.usd_path = str(FRANKA_USD)
    _replace_static(scene, "table", (*TABLE_CENTER, -TABLE_SIZE[2] / 2), TABLE_SIZE, (0.62, 0.5, 0.38))
    _replace_static(scene, "plane", (0.0, 0.0, GROUND_Z - 0.05), (20.0, 20.0, 0.1), (0.35, 0.37, 0.4))
    _replace_cubes(env_cfg)
    for name in KIT_ONLY_EVENTS:
        if hasattr(env_cfg.events, name):
            setattr(env_cfg.events, name, None)
    _newton_cameras(env_cfg, task)
    return env_cfg


def refresh_after_reset(env: Any) -> dict:
    """The env's observation groups recomputed on the reset state.

    Newton evaluates its frame sensors (the end-effector frame of the task) inside a physics step;
    ``reset`` writes the new joint and object states and runs forward kinematics but does not step,
    so the observation it returns holds the pre-reset end-effector pose. This evaluates the
    frame sensors on the current state and recomputes the observations."""
    from isaaclab_newton.physics.newton_manager import NewtonManager

    NewtonManager.forward()
    for sensor in NewtonManager._newton_frame_transform_sensors:
        sensor.update(NewtonManager.backend.state_0)
    for sensor in env.scene.sensors.values():
        if type(sensor).__name__ == "FrameTransformer":  # Newton's own class: copy its new transforms
            sensor.update(0.0, force_recompute=True)
    return env.observation_manager.compute()
