"""The generated Franka USD: reproducible, Isaac Lab's names and joint structure, our MuJoCo model's frames."""

import math

import numpy as np
import pytest

pytest.importorskip("pxr")

from rlinf_isaac.envs.isaaclab.assets import franka  # noqa: E402


@pytest.fixture(scope="module")
def stage():
    from pxr import Usd

    return Usd.Stage.Open(str(franka.FRANKA_USD))


def test_regenerating_reproduces_the_committed_file():
    assert franka.FRANKA_USD.read_text() == franka.usda_text(), (
        "assets/franka_panda.usda is out of date: python -m rlinf_isaac.envs.isaaclab.assets.franka")


def test_bodies_and_joints_carry_isaac_labs_franka_names(stage):
    from pxr import UsdPhysics

    bodies = [p.GetName() for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI)]
    assert bodies == [link.name for link in franka.LINKS]
    assert bodies[:8] == [f"panda_link{i}" for i in range(8)] and bodies[8:] == [
        "panda_hand", "panda_leftfinger", "panda_rightfinger"]
    moving = [p.GetName() for p in stage.Traverse() if p.IsA(UsdPhysics.RevoluteJoint) or p.IsA(UsdPhysics.PrismaticJoint)]
    assert moving == [*franka.ARM_JOINTS, *franka.FINGER_JOINTS]
    assert stage.GetDefaultPrim().HasAPI(UsdPhysics.ArticulationRootAPI)
    # gravity compensation on every body (Newton's MuJoCo solver reads mjc:gravcomp)
    assert all(stage.GetPrimAtPath(f"/panda/{b}").GetAttribute("mjc:gravcomp").Get() == 1.0 for b in bodies)


def test_fingers_are_coupled_leader_driven_follower_mimics(stage):
    from pxr import UsdPhysics

    lead, follow = (stage.GetPrimAtPath(f"/panda/joints/{j}") for j in franka.FINGER_JOINTS)
    assert lead.HasAPI(UsdPhysics.DriveAPI, "linear") and not follow.HasAPI(UsdPhysics.DriveAPI, "linear")
    assert "NewtonMimicAPI" in follow.GetAppliedSchemas()
    assert follow.GetRelationship("newton:mimicJoint").GetTargets() == [lead.GetPath()]
    assert (follow.GetAttribute("newton:mimicCoef0").Get(), follow.GetAttribute("newton:mimicCoef1").Get()) == (0, 1)
    for j in (lead, follow):
        assert (j.GetAttribute("physics:lowerLimit").Get(), j.GetAttribute("physics:upperLimit").Get()) == \
            pytest.approx((0.0, 0.04))
        # the same geared-drive inertia on both: the coupling holds under the leader's damping
        assert j.GetAttribute("newton:armature").Get() == pytest.approx(franka.FINGER_ARMATURE)


def test_body_frames_compose_to_our_mujoco_franka(stage):
    """Each body's composed rest pose equals the same body of the MuJoCo model at q = 0 (the
    same kinematics: Franka's modified DH table, the hand turned -45 deg 0.107 m past link 7)."""
    import mujoco
    from pxr import Usd, UsdGeom

    from rlinf_isaac.envs.mujoco.scene import build_scene_xml
    from rlinf_isaac.tasks.stack_cube import STACK_TWO

    model = mujoco.MjModel.from_xml_string(build_scene_xml(STACK_TWO.cubes, 0.047))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)  # qpos 0: every joint at 0, fingers closed
    cache = UsdGeom.XformCache(Usd.TimeCode.Default())
    names = {f"panda_link{i}": f"link{i}" for i in range(1, 8)}
    names.update(panda_hand="hand", panda_leftfinger="left_finger", panda_rightfinger="right_finger")
    for ours, theirs in names.items():
        m = np.array(cache.GetLocalToWorldTransform(stage.GetPrimAtPath(f"/panda/{ours}"))).T  # row-major -> [4, 4]
        b = model.body(theirs).id
        np.testing.assert_allclose(m[:3, 3], data.xpos[b], atol=1e-6, err_msg=ours)
        np.testing.assert_allclose(m[:3, :3], data.xmat[b].reshape(3, 3), atol=1e-6, err_msg=ours)
    hand = np.array(cache.GetLocalToWorldTransform(stage.GetPrimAtPath("/panda/panda_hand"))).T
    assert hand[:3, 3] == pytest.approx((0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107), abs=1e-6)  # at q = 0
    np.testing.assert_allclose(hand[:3, 2], (0.0, 0.0, -1.0), atol=1e-9)  # pointing down at q = 0


def test_joint_limits_are_frankas(stage):
    from rlinf_isaac.envs.mujoco.scene import ARM_JOINT_LIMITS

    for name, (lo, hi) in zip(franka.ARM_JOINTS, ARM_JOINT_LIMITS):
        j = stage.GetPrimAtPath(f"/panda/joints/{name}")
        assert j.GetAttribute("physics:lowerLimit").Get() == pytest.approx(math.degrees(lo), rel=1e-6)
        assert j.GetAttribute("physics:upperLimit").Get() == pytest.approx(math.degrees(hi), rel=1e-6)
