"""The Franka Panda as a USD articulation for Isaac Lab on Newton, written from the project's own model.

Isaac Lab's Franka asset lives on NVIDIA's asset servers; this one is generated from the
kinematics of our MuJoCo Franka (``envs/mujoco/scene.py``: Franka's modified DH table, the
hand 0.107 m past the flange and turned -45 deg about it, fingers 0.0584 m out of the hand),
with the names, frames and joint structure of Isaac Lab's Franka, so that the stack task's
robot cfg (``FRANKA_PANDA_HIGH_PD_CFG``: actuator regexes ``panda_joint[1-7]``,
``panda_finger_joint1``, ``panda_finger_joint2``), its end-effector offsets from ``panda_hand``
and its wrist-camera pose apply unchanged:

* bodies ``panda_link0`` .. ``panda_link7``, ``panda_hand``, ``panda_leftfinger``,
  ``panda_rightfinger``, flat under the articulation root, each in Franka's own link frame;
* revolute ``panda_joint1`` .. ``panda_joint7`` about each link's z axis, with Franka's limits,
  effort limits and drives; prismatic ``panda_finger_joint1`` (leading, driven) and
  ``panda_finger_joint2``, which mimics it (``NewtonMimicAPI``: q2 = q1);
* masses, centres of mass and principal inertias from Franka's published dynamic model;
  ``mjc:gravcomp = 1`` on every body (Newton's MuJoCo solver cancels gravity on the arm, as
  the task's ``disable_gravity`` does under PhysX);
* primitive geometry (capsules, boxes), each a visual and a collider.

    python -m rlinf_isaac.envs.isaaclab.assets.franka            # rewrite franka_panda.usda
    python -m rlinf_isaac.envs.isaaclab.assets.franka --check    # exit 1 if it differs

Needs ``pxr`` (``usd-core`` or ``usd-exchange``), which the Isaac Lab lane has.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlinf_isaac.envs.mujoco.scene import (
    ARM_JOINT_LIMITS,
    FINGER_HALF_EXTENTS,
    FINGER_OFFSET,
    FINGER_RANGE,
    FRANKA_DH,
    HAND_HALF_EXTENTS,
)

__all__ = ["FRANKA_USD", "LINKS", "ARM_JOINTS", "FINGER_JOINTS", "link_poses", "write_franka_usd", "main"]

FRANKA_USD = Path(__file__).resolve().parent / "franka_panda.usda"
ROOT = "/panda"
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
FLANGE_D = 0.107  # link7 -> hand
HAND_YAW = -math.pi / 4  # the hand is turned -45 deg about the flange's z axis
FINGER_Z = 0.0584  # finger joints above the hand origin
ARM_EFFORT = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N m
ARM_ARMATURE = 0.01  # kg m^2, reflected rotor inertia (small: the task's PD gains track well)
FINGER_EFFORT = 200.0  # N
# kg, reflected inertia of the gripper's geared drive, on both fingers. MuJoCo's implicitfast
# integrator applies the leading finger's drive damping after the constraint solve, so the
# follower of the finger coupling, which has no damping of its own, runs ahead of the leader
# (on 15 g fingers it overshot its joint limit) unless the damping impulse per physics step is
# small against the finger inertia: 150 N s/m x 2 ms / 2 kg = 0.15. Measured: closing from open,
# the fingers stay within 0.5 mm of each other.
FINGER_ARMATURE = 2.0
# leading finger: stiffness N/m, damping N s/m. Overdamped: the fingers close at ~0.2 m/s
# (Franka's gripper: 0.1 m/s per finger) instead of kicking the cube away; a closed grip on a
# 4.7 cm cube presses with ~23 N per finger.
FINGER_DRIVE = (1000.0, 150.0)
ARM_DRIVE = (400.0, 80.0)  # the task's high-PD gains (its robot cfg sets them too)
WHITE, DARK = (0.92, 0.92, 0.95), (0.15, 0.15, 0.15)


@dataclass(frozen=True)
class Link:
    """A body: mass (kg), centre of mass and principal inertia (kg m^2) in its frame, and its
    capsules ``((from, to), radius)`` in its frame."""

    name: str
    mass: float
    com: tuple[float, float, float]
    inertia: tuple[float, float, float]
    capsules: tuple[tuple[tuple[tuple[float, float, float], tuple[float, float, float]], float], ...] = ()


# Franka's published link masses, centres of mass and (rounded, principal) inertias; the
# capsules follow the MuJoCo model's link geometry.
LINKS = (
    Link("panda_link0", 2.92, (-0.025, 0.0, 0.06), (0.0079, 0.0115, 0.0135), ((((-0.04, 0, 0.02), (0.0, 0, 0.14)), 0.09),)),
    Link("panda_link1", 4.97, (0.0039, 0.0021, -0.0476), (0.7034, 0.7066, 0.0091), ((((0, 0, -0.20), (0, 0, -0.03)), 0.060),)),
    Link("panda_link2", 0.65, (-0.0031, -0.0287, 0.0035), (0.0080, 0.0281, 0.0260), ((((0, 0, -0.05), (0, -0.20, 0)), 0.060),)),
    Link("panda_link3", 3.23, (0.0275, 0.0393, -0.0665), (0.0372, 0.0362, 0.0108), ((((0, 0, -0.14), (0, 0, 0)), 0.055),)),
    Link("panda_link4", 3.59, (-0.0532, 0.1044, 0.0275), (0.0259, 0.0196, 0.0283), ((((0, 0, 0), (-0.0825, 0.14, 0)), 0.055),)),
    Link("panda_link5", 1.23, (-0.0120, 0.0411, -0.0384), (0.0355, 0.0295, 0.0086), ((((0, 0.04, -0.22), (0, 0, 0)), 0.050),)),
    Link("panda_link6", 1.67, (0.0601, -0.0141, -0.0105), (0.0020, 0.0044, 0.0054), ((((0, 0, -0.03), (0.088, 0, 0)), 0.045),)),
    Link("panda_link7", 0.74, (0.0105, -0.0043, 0.0616), (0.0125, 0.0100, 0.0048), ((((0, 0, -0.02), (0, 0, 0.08)), 0.040),)),
    Link("panda_hand", 0.73, (-0.01, 0.0, 0.03), (0.0010, 0.0025, 0.0017)),
    Link("panda_leftfinger", 0.015, (0.0, 0.0, 0.03), (2.4e-6, 2.4e-6, 7.5e-7)),
    Link("panda_rightfinger", 0.015, (0.0, 0.0, 0.03), (2.4e-6, 2.4e-6, 7.5e-7)),
)


# --- frames ----------------------------------------------------------------------------------


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _pose(rot: np.ndarray, pos) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rot, pos
    return t


def _quat_wxyz(r: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    q = np.array([w, x, y, z]) / np.linalg.norm([w, x, y, z])
    return tuple(float(v) for v in (q if q[0] >= 0 else -q))


def parent_transforms() -> dict[str, tuple[str, np.ndarray]]:
    """``{body: (parent body, 4x4 pose of the body in its parent at q = 0)}``: link i sits at
    ``RotX(alpha_{i-1}) @ (a_{i-1}, 0, d_i)`` in link i-1 (modified DH), turned RotX(alpha_{i-1})."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    for i, (a, d, alpha) in enumerate(FRANKA_DH, start=1):
        rot = _rot_x(alpha)
        out[f"panda_link{i}"] = (f"panda_link{i - 1}", _pose(rot, rot @ np.array([a, 0.0, d])))
    out["panda_hand"] = ("panda_link7", _pose(_rot_z(HAND_YAW), (0.0, 0.0, FLANGE_D)))
    out["panda_leftfinger"] = ("panda_hand", _pose(np.eye(3), (0.0, 0.0, FINGER_Z)))
    out["panda_rightfinger"] = ("panda_hand", _pose(np.eye(3), (0.0, 0.0, FINGER_Z)))
    return out


def link_poses() -> dict[str, np.ndarray]:
    """4x4 pose of every body in the robot's base frame with every joint at 0 (fingers closed)."""
    poses = {"panda_link0": np.eye(4)}
    for body, (parent, t) in parent_transforms().items():  # parents come first
        poses[body] = poses[parent] @ t
    return poses


# --- USD -------------------------------------------------------------------------------------


def _vec3(v):
    from pxr import Gf

    return Gf.Vec3f(*(float(x) for x in v))


def _quatf(r: np.ndarray):
    from pxr import Gf

    w, x, y, z = _quat_wxyz(r)
    return Gf.Quatf(w, Gf.Vec3f(x, y, z))


def _place(xformable, pos, rot: np.ndarray, scale=None) -> None:
    from pxr import Gf

    xformable.AddTranslateOp().Set(Gf.Vec3d(*(float(v) for v in pos)))
    xformable.AddOrientOp().Set(_quatf(rot))
    if scale is not None:
        xformable.AddScaleOp().Set(_vec3(scale))


def _collider(prim, color) -> None:
    from pxr import UsdGeom, UsdPhysics

    UsdGeom.Gprim(prim).CreateDisplayColorAttr([_vec3(color)])
    UsdPhysics.CollisionAPI.Apply(prim)


def _capsule(stage, path: str, p0, p1, radius: float, color) -> None:
    """A capsule from ``p0`` to ``p1`` (body frame): its axis is z, turned onto p1 - p0."""
    from pxr import UsdGeom

    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    z = axis / length
    ref = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(ref, z)
    x /= np.linalg.norm(x)
    cap = UsdGeom.Capsule.Define(stage, path)
    cap.CreateAxisAttr("Z")
    cap.CreateHeightAttr(length)
    cap.CreateRadiusAttr(radius)
    _place(cap, (p0 + p1) / 2, np.stack([x, np.cross(z, x), z], axis=1))
    _collider(cap.GetPrim(), WHITE)


def _box(stage, path: str, center, half_extents, color) -> None:
    from pxr import UsdGeom

    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(1.0)
    _place(cube, center, np.eye(3), scale=[2 * h for h in half_extents])
    _collider(cube.GetPrim(), color)


def _body(stage, link: Link, pose: np.ndarray):
    from pxr import Sdf, UsdGeom, UsdPhysics

    xf = UsdGeom.Xform.Define(stage, f"{ROOT}/{link.name}")
    _place(xf, pose[:3, 3], pose[:3, :3])
    prim = xf.GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(prim)
    mass = UsdPhysics.MassAPI.Apply(prim)
    mass.CreateMassAttr(link.mass)
    mass.CreateCenterOfMassAttr(_vec3(link.com))
    mass.CreateDiagonalInertiaAttr(_vec3(link.inertia))
    prim.CreateAttribute("mjc:gravcomp", Sdf.ValueTypeNames.Float).Set(1.0)
    for k, ((p0, p1), radius) in enumerate(link.capsules):
        _capsule(stage, f"{ROOT}/{link.name}/capsule_{k}", p0, p1, radius, WHITE)
    return prim


def _joint(stage, kind: str, name: str, parent: str, child: str, t_parent: np.ndarray, child_rot=None):
    """A joint whose frame is ``t_parent`` in ``parent`` and (``child_rot``, origin) in ``child``."""
    from pxr import Sdf, UsdPhysics

    cls = {"revolute": UsdPhysics.RevoluteJoint, "prismatic": UsdPhysics.PrismaticJoint,
           "fixed": UsdPhysics.FixedJoint}[kind]
    j = cls.Define(stage, f"{ROOT}/joints/{name}")
    if parent:
        j.CreateBody0Rel().SetTargets([Sdf.Path(f"{ROOT}/{parent}")])
    j.CreateBody1Rel().SetTargets([Sdf.Path(f"{ROOT}/{child}")])
    j.CreateLocalPos0Attr(_vec3(t_parent[:3, 3]))
    j.CreateLocalRot0Attr(_quatf(t_parent[:3, :3]))
    j.CreateLocalPos1Attr(_vec3((0.0, 0.0, 0.0)))
    j.CreateLocalRot1Attr(_quatf(np.eye(3) if child_rot is None else child_rot))
    return j


def _drive(joint, kind: str, stiffness: float, damping: float, max_force: float) -> None:
    from pxr import UsdPhysics

    drive = UsdPhysics.DriveAPI.Apply(joint.GetPrim(), kind)
    drive.CreateTypeAttr("force")
    drive.CreateStiffnessAttr(stiffness)
    drive.CreateDampingAttr(damping)
    drive.CreateMaxForceAttr(max_force)


def _arm_joints(stage, parents: dict) -> None:
    from pxr import Sdf

    for i, name in enumerate(ARM_JOINTS, start=1):
        parent, t = parents[f"panda_link{i}"]
        j = _joint(stage, "revolute", name, parent, f"panda_link{i}", t)
        j.CreateAxisAttr("Z")
        lo, hi = ARM_JOINT_LIMITS[i - 1]
        j.CreateLowerLimitAttr(math.degrees(lo))
        j.CreateUpperLimitAttr(math.degrees(hi))
        # USD angular drive gains are per degree
        _drive(j, "angular", ARM_DRIVE[0] * math.pi / 180, ARM_DRIVE[1] * math.pi / 180, ARM_EFFORT[i - 1])
        j.GetPrim().CreateAttribute("newton:armature", Sdf.ValueTypeNames.Float).Set(ARM_ARMATURE)


def _gripper(stage, parents: dict) -> None:
    """Hand (fixed to link7), two fingers on prismatic joints along the hand's +y / -y: the
    right finger's joint frame is turned 180 deg about z, so both joints open along their +y."""
    from pxr import Sdf

    parent, t = parents["panda_hand"]
    _joint(stage, "fixed", "panda_hand_joint", parent, "panda_hand", t)
    turn = _rot_z(math.pi)
    for k, (name, finger, rot) in enumerate(((FINGER_JOINTS[0], "panda_leftfinger", np.eye(3)),
                                             (FINGER_JOINTS[1], "panda_rightfinger", turn))):
        _, t = parents[finger]
        j = _joint(stage, "prismatic", name, "panda_hand", finger, _pose(rot, t[:3, 3]), child_rot=rot)
        j.CreateAxisAttr("Y")
        j.CreateLowerLimitAttr(FINGER_RANGE[0])
        j.CreateUpperLimitAttr(FINGER_RANGE[1])
        j.GetPrim().CreateAttribute("newton:armature", Sdf.ValueTypeNames.Float).Set(FINGER_ARMATURE)
        if k == 0:
            _drive(j, "linear", *FINGER_DRIVE, FINGER_EFFORT)
        else:  # the follower: q2 = coef0 + coef1 * q1
            prim = j.GetPrim()
            prim.AddAppliedSchema("NewtonMimicAPI")
            prim.CreateRelationship("newton:mimicJoint").SetTargets([Sdf.Path(f"{ROOT}/joints/{FINGER_JOINTS[0]}")])
            prim.CreateAttribute("newton:mimicCoef0", Sdf.ValueTypeNames.Float).Set(0.0)
            prim.CreateAttribute("newton:mimicCoef1", Sdf.ValueTypeNames.Float).Set(1.0)


def _gripper_geometry(stage) -> None:
    """Hand box and finger boxes with dark pads, as in the MuJoCo model."""
    hx, hy, hz = HAND_HALF_EXTENTS
    _box(stage, f"{ROOT}/panda_hand/palm", (0.0, 0.0, hz), HAND_HALF_EXTENTS, WHITE)
    for name, sign in (("panda_leftfinger", 1.0), ("panda_rightfinger", -1.0)):
        _box(stage, f"{ROOT}/{name}/finger", (0.0, sign * FINGER_OFFSET, 0.03), FINGER_HALF_EXTENTS, WHITE)
        _box(stage, f"{ROOT}/{name}/pad", (0.0, sign * 0.004, 0.045), (0.011, 0.004, 0.016), DARK)


def build_stage():
    """The Franka articulation as an in-memory USD stage (Z up, metres, kilograms).

    Needs Newton's USD schemas registered (``newton_usd_schemas``): the mimic attributes are then
    written as the schema's own, the same text in every process."""
    import newton_usd_schemas  # noqa: F401  (registers NewtonMimicAPI with USD)
    from pxr import Usd, UsdGeom, UsdPhysics

    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, ROOT).GetPrim()
    stage.SetDefaultPrim(root)
    UsdPhysics.ArticulationRootAPI.Apply(root)
    poses, parents = link_poses(), parent_transforms()
    for link in LINKS:
        _body(stage, link, poses[link.name])
    _joint(stage, "fixed", "root_joint", "", "panda_link0", np.eye(4))
    _arm_joints(stage, parents)
    _gripper(stage, parents)
    _gripper_geometry(stage)
    return stage


def usda_text() -> str:
    """The generated asset as USDA text (deterministic: the same text on every run)."""
    stage = build_stage()  # keep the stage alive while its layer is exported
    text = stage.GetRootLayer().ExportToString()
    header = "#usda 1.0\n"
    body = text.split("\n", 1)[1] if text.startswith("#usda") else text
    return header + "# Generated by python -m rlinf_isaac.envs.isaaclab.assets.franka; do not edit.\n" + body


def write_franka_usd(path: Path | str = FRANKA_USD) -> Path:
    """Write the asset to ``path`` (atomically); returns the path."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(usda_text())
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(FRANKA_USD), help="where to write the USDA file")
    p.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = p.parse_args(argv)
    if args.check:
        same = Path(args.out).exists() and Path(args.out).read_text() == usda_text()
        print(f"{args.out}: {'up to date' if same else 'differs: regenerate it'}")
        return 0 if same else 1
    print(f"wrote {write_franka_usd(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
