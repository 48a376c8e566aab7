"""MJCF of the Franka Panda + table + cubes scene, built from the published Franka kinematics.

The arm follows Franka's modified (Craig) DH table: body ``i`` sits at
``RotX(alpha_{i-1}) @ (a_{i-1}, 0, d_i)`` in its parent with orientation ``RotX(alpha_{i-1})``,
and its hinge is its own z axis. Geometry is primitive (capsules, boxes); no meshes.

Frames: world = robot base frame; the table top is the plane z = 0; +x points away from
the robot. The tool centre point site ``tcp`` sits 0.1034 m along the hand's z axis
(between the finger pads), as Isaac Lab's Franka end-effector frame does.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from rlinf_isaac.envs.mujoco.task_spec import CubeSpec

__all__ = [
    "FRANKA_DH",
    "ARM_JOINT_LIMITS",
    "FINGER_RANGE",
    "HOME_QPOS",
    "TCP_OFFSET",
    "HAND_HALF_EXTENTS",
    "FINGER_HALF_EXTENTS",
    "FINGER_OFFSET",
    "TABLE_HALF_EXTENTS",
    "TABLE_CENTER_XY",
    "build_scene_xml",
]

# (a_{i-1}, d_i, alpha_{i-1}) for joints 1..7, then the flange (fixed).
FRANKA_DH: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
FLANGE_D = 0.107
ARM_JOINT_LIMITS: tuple[tuple[float, float], ...] = (
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
)
FINGER_RANGE = (0.0, 0.04)
# Isaac Lab's stack-task start pose of the arm; fingers open.
HOME_QPOS = (0.0444, -0.1894, -0.1107, -2.5148, 0.0044, 2.3775, 0.6952)
TCP_OFFSET = 0.1034
# Hand box (half extents in the hand frame; spans hand z in [0, 2 * hz]) and finger boxes
# (half extents; centred FINGER_OFFSET outward of each finger joint along hand y).
HAND_HALF_EXTENTS = (0.025, 0.1, 0.03)
FINGER_HALF_EXTENTS = (0.01, 0.006, 0.03)
FINGER_OFFSET = 0.014
TABLE_HALF_EXTENTS = (0.55, 0.6, 0.02)
TABLE_CENTER_XY = (0.45, 0.0)

# Per link: capsule (fromto in the link frame, radius), mass (kg), stiffness kp, damping kv,
# force limit (N m). Masses follow Franka's published dynamic parameters (rounded).
_LINKS = (
    ("0 0 -0.20 0 0 -0.03", 0.060, 4.97, 10000.0, 250.0, 300.0),
    ("0 0 -0.05 0 -0.20 0", 0.060, 0.65, 10000.0, 250.0, 300.0),
    ("0 0 -0.14 0 0 0", 0.055, 3.23, 10000.0, 250.0, 300.0),
    ("0 0 0 -0.0825 0.14 0", 0.055, 3.59, 10000.0, 250.0, 300.0),
    ("0 0.04 -0.22 0 0 0", 0.050, 1.23, 4000.0, 80.0, 100.0),
    ("0 0 -0.03 0.088 0 0", 0.045, 1.67, 4000.0, 80.0, 100.0),
    ("0 0 -0.02 0 0 0.08", 0.040, 0.74, 4000.0, 80.0, 100.0),
)


def _fmt(v: Sequence[float]) -> str:
    return " ".join(f"{x:.6g}" for x in v)


def _lookat_xyaxes(pos: np.ndarray, target: np.ndarray, up: np.ndarray) -> str:
    """MuJoCo camera ``xyaxes`` that make a camera at ``pos`` look at ``target``."""
    f = (target - pos) / np.linalg.norm(target - pos)
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, f)  # camera looks along -z, z = x cross y = -f
    return _fmt(np.concatenate([x, y]))


def _arm_xml() -> str:
    """Nested bodies link1..link7 + hand + fingers, as one MJCF string."""
    opened, closes = [], []
    for i, ((a, d, alpha), link) in enumerate(zip(FRANKA_DH, _LINKS), start=1):
        pos = (a, -math.sin(alpha) * d, math.cos(alpha) * d)  # RotX(alpha) @ (a, 0, d)
        quat = (math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0)  # RotX(alpha)
        fromto, radius, mass, *_ = link
        lo, hi = ARM_JOINT_LIMITS[i - 1]
        opened.append(
            f'<body name="link{i}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">'
            f'<inertial pos="0 0 0" mass="{mass}" diaginertia="0.01 0.01 0.01"/>'
            f'<joint name="joint{i}" class="arm" range="{lo} {hi}"/>'
            f'<geom class="link" fromto="{fromto}" size="{radius}"/>'
        )
        closes.append("</body>")
    return "".join(opened) + _hand_xml() + "".join(closes)


def _hand_xml() -> str:
    """Hand (rotated -45 deg about the flange z, as on the real robot), pads, wrist camera."""
    cam_pos = np.array([0.07, 0.0, 0.03])
    cam_axes = _lookat_xyaxes(cam_pos, np.array([0.0, 0.0, 0.16]), np.array([1.0, 0.0, 0.0]))
    fingers = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        fingers.append(
            f'<body name="{side}_finger" pos="0 0 0.0584" gravcomp="1">'
            f'<inertial pos="0 0 0.03" mass="0.015" diaginertia="1e-5 1e-5 1e-5"/>'
            f'<joint name="finger_{side}" class="finger" axis="0 {sign:g} 0"/>'
            f'<geom class="link" type="box" size="{_fmt(FINGER_HALF_EXTENTS)}" pos="0 {sign * FINGER_OFFSET:g} 0.03"/>'
            f'<geom name="{side}_pad" class="pad" size="0.011 0.004 0.016" pos="0 {sign * 0.004:g} 0.045"/>'
            "</body>"
        )
    return (
        f'<body name="hand" pos="0 0 {FLANGE_D}" quat="0.9238795 0 0 -0.3826834" gravcomp="1">'
        '<inertial pos="0 0 0.03" mass="0.73" diaginertia="0.001 0.0025 0.0017"/>'
        f'<geom class="link" type="box" size="{_fmt(HAND_HALF_EXTENTS)}" pos="0 0 {HAND_HALF_EXTENTS[2]:g}"/>'
        f'<site name="tcp" pos="0 0 {TCP_OFFSET}" size="0.005" rgba="1 0 0 0"/>'
        f'<camera name="wrist_cam" pos="{_fmt(cam_pos)}" xyaxes="{cam_axes}" fovy="75"/>'
        + "".join(fingers)
        + "</body>"
    )


def _cube_xml(cube: CubeSpec, index: int, size: float) -> str:
    h = size / 2
    return (
        f'<body name="{cube.name}" pos="{0.5 + 0.1 * index:g} {0.3:g} {h:g}">'
        f'<freejoint name="{cube.name}_joint"/>'
        f'<geom name="{cube.name}_geom" type="box" size="{h:g} {h:g} {h:g}" mass="0.1" '
        f'rgba="{_fmt(cube.rgba)}" condim="4" friction="1 0.01 0.0001"/>'
        "</body>"
    )


def _actuators_xml() -> str:
    arm = []
    for i, link in enumerate(_LINKS, start=1):
        *_, kp, kv, force = link
        lo, hi = ARM_JOINT_LIMITS[i - 1]
        arm.append(
            f'<position name="act{i}" joint="joint{i}" kp="{kp:g}" kv="{kv:g}" '
            f'ctrlrange="{lo} {hi}" forcerange="{-force:g} {force:g}"/>'
        )
    for side in ("left", "right"):
        arm.append(
            f'<position name="act_finger_{side}" joint="finger_{side}" kp="800" kv="10" '
            f'ctrlrange="{FINGER_RANGE[0]} {FINGER_RANGE[1]}" forcerange="-40 40"/>'
        )
    return "<actuator>" + "".join(arm) + "</actuator>"


def build_scene_xml(
    cubes: Sequence[CubeSpec],
    cube_size: float,
    image_size: tuple[int, int] = (84, 84),
    timestep: float = 0.0025,
) -> str:
    """The full scene MJCF: robot, table, ``cubes`` (free joints), ``table_cam``, ``wrist_cam``.

    image_size: (H, W) of the largest image that will be rendered (sizes the offscreen buffer).
    """
    h, w = image_size
    tx, ty = TABLE_CENTER_XY
    thx, thy, thz = TABLE_HALF_EXTENTS
    cam_pos = np.array([1.0, 0.0, 0.4])
    cam_axes = _lookat_xyaxes(cam_pos, np.array([0.35, 0.0, 0.15]), np.array([0.0, 0.0, 1.0]))
    return f"""<mujoco model="franka_stack_cube">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep:g}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="{max(w, 256)}" offheight="{max(h, 256)}"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.6 0.6 0.6" specular="0 0 0"/>
  </visual>
  <default>
    <default class="arm"><joint axis="0 0 1" armature="0.1" damping="1"/></default>
    <default class="finger"><joint type="slide" range="{FINGER_RANGE[0]} {FINGER_RANGE[1]}" armature="0.01" damping="5"/></default>
    <default class="link"><geom type="capsule" rgba="0.92 0.92 0.95 1" contype="2" conaffinity="1" density="0"/></default>
    <default class="pad"><geom type="box" rgba="0.15 0.15 0.15 1" contype="2" conaffinity="1" condim="4"
      friction="2 0.05 0.0001" solref="0.01 1" solimp="0.95 0.99 0.001" density="0"/></default>
  </default>
  <worldbody>
    <light name="sun" pos="0.5 0 1.5" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.5 0.5 0.5"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" rgba="0.35 0.37 0.4 1" contype="1" conaffinity="1"/>
    <geom name="table" type="box" size="{thx} {thy} {thz}" pos="{tx} {ty} {-thz}" rgba="0.62 0.5 0.38 1" contype="1" conaffinity="1"/>
    <geom name="base" type="cylinder" size="0.09 0.06" pos="0 0 0.06" rgba="0.92 0.92 0.95 1" contype="0" conaffinity="0"/>
    <camera name="table_cam" pos="{_fmt(cam_pos)}" xyaxes="{cam_axes}" fovy="47"/>
    {_arm_xml()}
    {"".join(_cube_xml(c, i, cube_size) for i, c in enumerate(cubes))}
  </worldbody>
  {_actuators_xml()}
</mujoco>
"""
