"""Batched MuJoCo Franka stack-cube env: B ``MjData`` sharing one ``MjModel`` in one process.

Action (A = 7, Isaac Lab's IK-Rel): ``a[:3] * action_scale`` is a world-frame translation of
the tool centre point, ``a[3:6] * action_scale`` a world-frame axis-angle rotation applied
on the left (R_des = R(delta) R_cur), ``a[6] < 0`` closes the gripper, otherwise it opens.
Each control step (``control_hz``, 20 Hz by default) takes one damped-least-squares IK step
to joint position targets and runs ``1 / (control_hz * physics_dt)`` physics sub-steps.

State (8): TCP position (3, world frame), TCP rotation relative to the gripper-down
orientation ``R_DOWN`` as an axis-angle ``axis_angle(R_DOWN^T R_tcp)`` (3), finger joint
positions (2). Relative to gripper-down the rotation stays far from pi in this task, so the
vector is continuous; the absolute axis-angle (Isaac Lab's convention) sits at angle pi when
the gripper points down and flips sign between neighbouring poses, which made its x
component a +-1 coin toss after min-max normalisation.

Rewards (``reward_type``):

* ``sparse``: r = 1 at a step where the task succeeds, else 0.
* ``staged``: with P stacking pairs (top, bottom) built in order, k the number of leading
  pairs already stacked and (t, u) the next pair,
  ``reach = 1 - tanh(10 |p_tcp - p_t|)``, ``grasp`` = 1 when both finger pads touch t,
  ``lift = clip((z_t - s/2) / 0.05, 0, 1)``, ``place = 1 - tanh(10 |p_t - (p_u + s e_z)|)``,
  ``progress = (reach + grasp + grasp * lift + grasp * place) / 4`` and
  ``r = (k + progress + success) / (P + 1)`` (progress = 0 once all pairs are stacked), so
  r lies in [0, 1] and equals 1 exactly at success. Paid every step, it makes loitering
  pay: holding a lifted cube near its target for 100 steps earns ~45, succeeding ends the
  episode with 1 (a PPO run on it collapsed to 0 success, though at a 2.5x higher lr than
  the sparse runs). Kept for comparison.
* ``shaped``: potential-based shaping (Ng et al. 1999) of the sparse reward with the staged
  value as potential Phi: ``r = success + Phi(s') - Phi(s)``. An episode's return telescopes
  to ``success + Phi(s_T) - Phi(s_0)``, so any success (return ``2 - Phi(s_0)``) beats any
  failure (below ``1 - Phi(s_0)``) and the optimal policy is the sparse one's, while every
  reach, grasp, lift and place shows up in the return.

Terminations: success, or a cube off the table (below z = -0.05 m or outside the table
top); truncation at ``max_episode_steps``. A diverged simulation (NaN/inf state or a
MuJoCo bad-qpos/qvel/qacc warning) ends the episode as truncated with reward 0, sets
``info["diverged"]`` and logs a warning. MuJoCo's own C warnings go to the
``rlinf_isaac.envs.mujoco`` logger (see ``gl.route_mujoco_warnings``), never to a
``MUJOCO_LOG.TXT`` in the working directory.

Rendering: the policy's two cameras are rendered at ``image_size`` once per chunk (and after
resets). While a video is asked for (:meth:`MujocoStackEnv.set_video`), a second renderer with
its own offscreen buffer renders both cameras of the first N envs at the video size after every
sub-step into ``info["video_frames"]``; the policy's renderer and images are untouched by it.
``render_every_step`` (benchmarks) adds ``info["frames"]``, the table camera at ``image_size``
after every sub-step.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from rlinf_isaac.envs.base import (
    BatchedEnv,
    ChunkStepResult,
    EnvSpec,
    EpisodeStats,
    Obs,
    as_env_ids,
    as_reset_state_ids,
    validate_actions,
)
from rlinf_isaac.envs.mujoco import scene
from rlinf_isaac.envs.mujoco.gl import import_mujoco
from rlinf_isaac.envs.mujoco.kinematics import (
    R_DOWN,
    axis_angle_to_matrix,
    dls_step,
    matrix_to_axis_angle,
    matrix_to_quat,
)
from rlinf_isaac.envs.mujoco.task_spec import StackTaskSpec

__all__ = ["MujocoStackConfig", "MujocoStackEnv", "REWARD_TYPES"]

log = logging.getLogger(__name__)
REWARD_TYPES = ("sparse", "staged", "shaped")
_LIVE: "weakref.WeakSet[MujocoStackEnv]" = weakref.WeakSet()  # closed at exit, before GL teardown
_RAMP_SEGMENTS = 5  # joint targets move to the IK solution in this many equal steps
_MAX_JOINT_STEP = 0.5  # rad: cap on one IK step's joint change (guards against huge raw actions)


@dataclass
class MujocoStackConfig:
    """Options of :class:`MujocoStackEnv` (checked in ``__post_init__``)."""

    image_size: int | tuple[int, int] = 84
    reward_type: str = "sparse"
    max_episode_steps: int = 400
    auto_reset: bool = True
    seed: int = 0
    render_backend: str | None = None
    action_scale: float = 0.5
    physics_dt: float = 0.0025
    control_hz: float = 20.0
    ik_damping: float = 0.01
    ik_updates: int = 2  # IK re-solves per control step (must divide the sub-step count)
    render_every_step: bool = False
    env_index_offset: int = 0  # global index of env 0 (vector-env shards); seeds per-env generators

    def __post_init__(self) -> None:
        hw = (self.image_size, self.image_size) if isinstance(self.image_size, int) else tuple(self.image_size)
        if len(hw) != 2 or not all(isinstance(v, int) and 8 <= v <= 512 for v in hw):
            raise ValueError(f"env.image_size must be an int or (H, W) in [8, 512], got {self.image_size!r}")
        self.image_size = hw
        if self.reward_type not in REWARD_TYPES:
            raise ValueError(f"env.reward_type must be one of {REWARD_TYPES}, got {self.reward_type!r}")
        if self.max_episode_steps < 1:
            raise ValueError(f"env.max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if not self.action_scale > 0:
            raise ValueError(f"env.action_scale must be > 0, got {self.action_scale}")
        substeps = 1.0 / (self.control_hz * self.physics_dt)
        if self.physics_dt <= 0 or self.control_hz <= 0 or abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(
                f"env.physics_dt ({self.physics_dt}) x env.control_hz ({self.control_hz}) must give "
                f"a whole number of physics sub-steps per control step, got {substeps:.4f}"
            )
        if self.ik_updates < 1 or self.substeps % (self.ik_updates * _RAMP_SEGMENTS):
            raise ValueError(
                f"env.ik_updates x {_RAMP_SEGMENTS} ramp segments must divide the {self.substeps} physics "
                f"sub-steps, got env.ik_updates = {self.ik_updates}"
            )
        if self.env_index_offset < 0:
            raise ValueError(f"env.env_index_offset must be >= 0, got {self.env_index_offset}")

    @property
    def substeps(self) -> int:
        return int(round(1.0 / (self.control_hz * self.physics_dt)))


class MujocoStackEnv(BatchedEnv):
    """B stack-cube envs in one process (see the module docstring for actions and rewards)."""

    def __init__(self, task: StackTaskSpec, num_envs: int, config: MujocoStackConfig | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.task, self.cfg = task, config or MujocoStackConfig()
        self._mj = import_mujoco(self.cfg.render_backend)
        h, w = self.cfg.image_size
        xml = scene.build_scene_xml(task.cubes, task.cube_size, (h, w), self.cfg.physics_dt)
        self.model = self._mj.MjModel.from_xml_string(xml)
        self.datas = [self._mj.MjData(self.model) for _ in range(num_envs)]
        self.spec = EnvSpec(task.task_id, num_envs, (h, w), task.instruction,
                            self.cfg.max_episode_steps, self.cfg.control_hz)
        self._ids()
        self._renderer = None
        self._video_renderer = None  # video views at set_video's size (its own GL context and buffer)
        self._closed = False
        b = num_envs
        self._main = np.zeros((b, h, w, 3), np.uint8)
        self._wrist = np.zeros((b, h, w, 3), np.uint8)
        self._states = np.zeros((b, 8), np.float32)
        self._steps = np.zeros(b, np.int64)
        self._returns = np.zeros(b, np.float64)
        self._potential = np.zeros(b, np.float64)  # Phi(s) of the shaped reward
        self._success_once = np.zeros(b, bool)
        self._frozen = np.zeros(b, bool)
        self._reset_ids = np.zeros(b, np.int64)
        self._seed_generators(self.cfg.seed)
        _LIVE.add(self)
        self.reset()

    # ------------------------------------------------------------------ model ids
    def _ids(self) -> None:
        m, mj = self.model, self._mj
        self._tcp = mj.mj_name2id(m, mj.mjtObj.mjOBJ_SITE, "tcp")
        self._arm_dofs = np.array([m.jnt_dofadr[mj.mj_name2id(m, mj.mjtObj.mjOBJ_JOINT, f"joint{i}")]
                                   for i in range(1, 8)])
        self._arm_qpos = self._arm_dofs.copy()  # hinge joints: qpos address == dof address here
        self._finger_qpos = np.array([m.jnt_qposadr[mj.mj_name2id(m, mj.mjtObj.mjOBJ_JOINT, f"finger_{s}")]
                                      for s in ("left", "right")])
        self._cube_body = np.array([mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, c.name) for c in self.task.cubes])
        self._cube_geom = np.array([mj.mj_name2id(m, mj.mjtObj.mjOBJ_GEOM, f"{c.name}_geom")
                                    for c in self.task.cubes])
        self._cube_qpos = np.array([m.jnt_qposadr[m.body_jntadr[i]] for i in self._cube_body])
        self._cube_qvel = np.array([m.jnt_dofadr[m.body_jntadr[i]] for i in self._cube_body])
        self._pads = tuple(mj.mj_name2id(m, mj.mjtObj.mjOBJ_GEOM, f"{s}_pad") for s in ("left", "right"))
        self._pairs = [(self.task.cube_index(t), self.task.cube_index(u)) for t, u in self.task.stack_pairs]
        self._jac = np.zeros((6, self.model.nv))

    # ------------------------------------------------------------------ reset
    def _seed_generators(self, seed: int) -> None:
        off = self.cfg.env_index_offset
        self._rngs = [np.random.default_rng([int(seed), off + b]) for b in range(self.num_envs)]

    def reset(self, seed=None, reset_state_ids=None, env_ids=None) -> Obs:
        """See :meth:`BatchedEnv.reset`. Per-env generators are seeded by (seed, global env index)."""
        if seed is not None:
            self._seed_generators(seed)
        ids = as_env_ids(env_ids, self.num_envs)
        pinned = as_reset_state_ids(reset_state_ids, ids.numel())
        for n, b in enumerate(ids.tolist()):
            rid = int(pinned[n]) if pinned is not None else self._draw_id(b)
            self._reset_env(b, rid)
        self._observe(ids.tolist())
        return self._obs_from_cache()

    def _draw_id(self, b: int) -> int:
        return int(self._rngs[b].integers(0, 2**31 - 1))

    def initial_state(self, reset_state_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Arm joints [7] and cube poses [N, 4] (x, y, z, yaw) of a reset state.

        Drawn from a generator seeded by (crc32(task_id), reset_state_id) only.
        """
        rng = np.random.default_rng([zlib.crc32(self.task.task_id.encode()), int(reset_state_id)])
        sp = self.task.spawn
        n = len(self.task.cubes)
        for _ in range(10_000):  # rejection sampling of pairwise-distant cube positions
            xy = np.stack([rng.uniform(*sp.x_range, n), rng.uniform(*sp.y_range, n)], axis=1)
            dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(n) * 1e9
            if dist.min() >= sp.min_distance:
                break
        else:
            raise RuntimeError(f"could not place {n} cubes {sp.min_distance} m apart in {sp}")
        yaw = rng.uniform(*sp.yaw_range, n)
        z = np.full(n, self.task.cube_size / 2)
        q_arm = np.asarray(scene.HOME_QPOS) + rng.uniform(-sp.joint_noise, sp.joint_noise, 7)
        return q_arm, np.concatenate([xy, z[:, None], yaw[:, None]], axis=1)

    def _reset_env(self, b: int, rid: int) -> None:
        mj, d = self._mj, self.datas[b]
        q_arm, cubes = self.initial_state(rid)
        mj.mj_resetData(self.model, d)
        d.qpos[self._arm_qpos] = q_arm
        d.qpos[self._finger_qpos] = scene.FINGER_RANGE[1]
        for k, (x, y, z, yaw) in enumerate(cubes):
            a = self._cube_qpos[k]
            d.qpos[a : a + 7] = (x, y, z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        d.ctrl[:7] = q_arm
        d.ctrl[7:9] = scene.FINGER_RANGE[1]
        mj.mj_forward(self.model, d)
        self._reset_ids[b] = rid
        self._steps[b], self._returns[b] = 0, 0.0
        self._success_once[b] = self._frozen[b] = False
        self._potential[b] = self.staged_reward(b, False) if self.cfg.reward_type == "shaped" else 0.0

    # ------------------------------------------------------------------ stepping
    def chunk_step(self, actions: torch.Tensor) -> ChunkStepResult:
        """Run actions float [B, C, A]; returns per-step reward/terminated/truncated [B, C] + info."""
        acts = validate_actions(actions, self.num_envs).numpy().astype(np.float64)
        b_, c_ = acts.shape[:2]
        out = {k: np.zeros((b_, c_), bool) for k in ("terminated", "truncated", "success", "valid")}
        reward = np.zeros((b_, c_), np.float32)
        done, diverged = np.zeros(b_, bool), np.zeros(b_, bool)
        frames = self._new_frames(c_)
        video = self._new_video_frames(c_)
        for c in range(c_):
            for b in range(b_):
                stepped = not (self._frozen[b] or done[b])
                if stepped:
                    self._sub_step(b, c, acts[b, c], out, reward, diverged)
                    done[b] = out["terminated"][b, c] or out["truncated"][b, c]
                if frames is not None:
                    self._frame(b, c, frames, stepped)
                if video is not None and b < len(video["main_images"]):
                    self._video_frame(b, c, video, stepped)
        self._observe(np.flatnonzero(out["valid"].any(1)).tolist())
        episode = self._episode_stats(done)
        final_obs = self._finish_episodes(done)
        info: dict[str, Any] = {
            "success": torch.from_numpy(out["success"]),
            "valid": torch.from_numpy(out["valid"]),
            "episode": episode,
            "final_obs": final_obs,
            "reset_state_ids": torch.from_numpy(self._reset_ids.copy()),
            "diverged": torch.from_numpy(diverged),
        }
        if frames is not None:
            info["frames"] = torch.from_numpy(frames)
        if video is not None:
            info["video_frames"] = {k: torch.from_numpy(v) for k, v in video.items()}
        return ChunkStepResult(self._obs_from_cache(), torch.from_numpy(reward),
                               torch.from_numpy(out["terminated"]), torch.from_numpy(out["truncated"]), info)

    def _sub_step(self, b: int, c: int, act: np.ndarray, out: dict, reward: np.ndarray, diverged: np.ndarray) -> None:
        out["valid"][b, c] = True
        self._steps[b] += 1
        if not self._control_step(b, act):
            log.warning("MuJoCo diverged in env %d (reset state %d, step %d); resetting it",
                        b + self.cfg.env_index_offset, self._reset_ids[b], self._steps[b])
            diverged[b] = out["truncated"][b, c] = True
            steps = self._steps[b]
            self._reset_env(b, int(self._reset_ids[b]))  # a sane state to render; episode ends here
            self._steps[b] = steps
            return
        success = self.is_success(b)
        r = self._reward(b, success)
        reward[b, c] = r
        self._returns[b] += r
        self._success_once[b] |= success
        out["success"][b, c] = success
        out["terminated"][b, c] = success or self.cube_off_table(b)
        out["truncated"][b, c] = not out["terminated"][b, c] and self._steps[b] >= self.cfg.max_episode_steps

    def _reward(self, b: int, success: bool) -> float:
        """The step reward of env b after its control step (module docstring, ``reward_type``)."""
        kind = self.cfg.reward_type
        if kind == "sparse":
            return float(success)
        phi = self.staged_reward(b, success)
        if kind == "staged":
            return phi
        r = float(success) + phi - self._potential[b]  # shaped: r = success + Phi(s') - Phi(s)
        self._potential[b] = phi
        return r

    def _control_step(self, b: int, act: np.ndarray) -> bool:
        """IK-Rel action -> joint targets -> physics sub-steps. False if the physics diverged.

        The desired pose is fixed at the start of the step (measured pose + scaled delta);
        joint targets are recomputed ``ik_updates`` times within the step, closing the
        task-space loop as Isaac Lab's differential IK does every physics step.
        """
        mj, m, d = self._mj, self.model, self.datas[b]
        s = self.cfg.action_scale
        pos_des = d.site_xpos[self._tcp] + act[:3] * s  # p_des = p + scale * a[:3]
        rot_des = axis_angle_to_matrix(act[3:6] * s) @ d.site_xmat[self._tcp].reshape(3, 3)  # R_des = R(delta) R
        d.ctrl[7:9] = scene.FINGER_RANGE[0] if act[6] < 0 else scene.FINGER_RANGE[1]
        lo, hi = m.actuator_ctrlrange[:7].T
        n = self.cfg.ik_updates
        for k in range(n):
            if k:
                mj.mj_kinematics(m, d)
                mj.mj_comPos(m, d)
            rot = d.site_xmat[self._tcp].reshape(3, 3)
            err = np.concatenate([pos_des - d.site_xpos[self._tcp], matrix_to_axis_angle(rot_des @ rot.T)])
            mj.mj_jacSite(m, d, self._jac[:3], self._jac[3:], self._tcp)
            dq = np.clip(dls_step(self._jac[:, self._arm_dofs], err, self.cfg.ik_damping), -_MAX_JOINT_STEP, _MAX_JOINT_STEP)
            q0 = d.qpos[self._arm_qpos].copy()
            seg = self.cfg.substeps // n // _RAMP_SEGMENTS
            for j in range(1, _RAMP_SEGMENTS + 1):  # ramp all joints together: fewer hand-pitch transients
                d.ctrl[:7] = np.clip(q0 + dq * min(1.0, 2 * j / _RAMP_SEGMENTS), lo, hi)  # q + dq min(1, 2j/S)
                mj.mj_step(m, d, nstep=seg)
        mj.mj_forward(m, d)  # positions, contacts and Jacobians consistent with the new state
        bad = sum(d.warning[w].number for w in (mj.mjtWarning.mjWARN_BADQACC, mj.mjtWarning.mjWARN_BADQPOS,
                                                mj.mjtWarning.mjWARN_BADQVEL))
        return bad == 0 and bool(np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all())

    def _episode_stats(self, done: np.ndarray) -> EpisodeStats:
        z = ~done
        return EpisodeStats(
            done=torch.from_numpy(done.copy()),
            success_once=torch.from_numpy(np.where(z, False, self._success_once)),
            returns=torch.from_numpy(np.where(z, 0.0, self._returns).astype(np.float32)),
            episode_len=torch.from_numpy(np.where(z, 0, self._steps).astype(np.int64)),
        )

    def _finish_episodes(self, done: np.ndarray) -> Obs | None:
        """Snapshot final observations, then auto-reset (or freeze) the envs that finished."""
        if not done.any():
            return None
        final_obs = self._obs_from_cache()
        ended = np.flatnonzero(done).tolist()
        if self.cfg.auto_reset:
            for b in ended:
                self._reset_env(b, self._draw_id(b))
            self._observe(ended)
        else:
            self._frozen[ended] = True
        return final_obs

    # ------------------------------------------------------------------ task logic
    def _cube_pos(self, b: int) -> np.ndarray:
        return self.datas[b].xpos[self._cube_body]  # [N, 3]

    def pairs_stacked(self, b: int) -> list[bool]:
        """Per stacking pair: xy offset < threshold and height gap = cube size within tolerance."""
        return self.task.pairs_stacked(self._cube_pos(b)).tolist()

    def is_success(self, b: int) -> bool:
        """All pairs stacked, gripper open, cubes nearly at rest (Isaac Lab ``cubes_stacked``)."""
        d, sp = self.datas[b], self.task.success
        if not all(self.pairs_stacked(b)):
            return False
        if d.qpos[self._finger_qpos].min() < sp.min_finger_opening:
            return False
        speeds = [np.linalg.norm(d.qvel[a : a + 3]) for a in self._cube_qvel]
        return bool(max(speeds) < sp.max_cube_speed)

    def cube_off_table(self, b: int) -> bool:
        p = self._cube_pos(b)
        (cx, cy), (hx, hy, _) = scene.TABLE_CENTER_XY, scene.TABLE_HALF_EXTENTS
        outside = (np.abs(p[:, 0] - cx) > hx) | (np.abs(p[:, 1] - cy) > hy)
        return bool((p[:, 2] < -0.05).any() or outside.any())

    def is_grasped(self, b: int, cube: int) -> bool:
        """Both finger pads touch cube ``cube`` (index into task.cubes)."""
        d = self.datas[b]
        g1, g2 = d.contact.geom1[: d.ncon], d.contact.geom2[: d.ncon]
        cg = self._cube_geom[cube]
        touch = [bool((((g1 == pad) & (g2 == cg)) | ((g2 == pad) & (g1 == cg))).any()) for pad in self._pads]
        return all(touch)

    def staged_reward(self, b: int, success: bool) -> float:
        """r = (k + progress + success) / (P + 1); see the module docstring."""
        stacked, s = self.pairs_stacked(b), self.task.cube_size
        k = 0
        while k < len(stacked) and stacked[k]:
            k += 1
        progress = 0.0
        if k < len(stacked):
            t, u = self._pairs[k]
            p, tcp = self._cube_pos(b), self.datas[b].site_xpos[self._tcp]
            reach = 1.0 - np.tanh(10.0 * np.linalg.norm(tcp - p[t]))
            grasp = float(self.is_grasped(b, t))
            lift = float(np.clip((p[t, 2] - s / 2) / 0.05, 0.0, 1.0))
            place = 1.0 - np.tanh(10.0 * np.linalg.norm(p[t] - (p[u] + np.array([0.0, 0.0, s]))))
            progress = (reach + grasp + grasp * lift + grasp * place) / 4.0
        return float((k + progress + float(success)) / (len(stacked) + 1))

    # ------------------------------------------------------------------ observations
    def _ensure_renderer(self):
        if self._renderer is None:
            h, w = self.cfg.image_size
            self._renderer = self._mj.Renderer(self.model, h, w)
        return self._renderer

    def _render(self, b: int, camera: str, out: np.ndarray) -> None:
        r = self._ensure_renderer()
        r.update_scene(self.datas[b], camera=camera)
        r.render(out=out)

    def _observe(self, env_ids: Sequence[int]) -> None:
        """Render both cameras and refresh the state vector of ``env_ids`` into the cache."""
        for b in env_ids:
            self._render(b, "table_cam", self._main[b])
            self._render(b, "wrist_cam", self._wrist[b])
            d = self.datas[b]
            rot = d.site_xmat[self._tcp].reshape(3, 3)
            self._states[b, :3] = d.site_xpos[self._tcp]
            self._states[b, 3:6] = matrix_to_axis_angle(R_DOWN.T @ rot)
            self._states[b, 6:8] = d.qpos[self._finger_qpos]

    def _new_frames(self, c: int) -> np.ndarray | None:
        if not self.cfg.render_every_step:
            return None
        h, w = self.cfg.image_size
        return np.zeros((self.num_envs, c, h, w, 3), np.uint8)

    def _frame(self, b: int, c: int, frames: np.ndarray, stepped: bool) -> None:
        """Main-camera frame of env b after sub-step c (repeats the last one if b did not step)."""
        if stepped:
            self._render(b, "table_cam", frames[b, c])
        else:
            frames[b, c] = frames[b, c - 1] if c > 0 else self._main[b]

    def set_video(self, frame_size: int | None, num_envs: int | None = None) -> None:
        """See :meth:`BatchedEnv.set_video`: starts a renderer at ``frame_size`` px (its own
        offscreen buffer, grown in the model's visual options if needed) for the video views."""
        super().set_video(frame_size, num_envs)
        if self.video_request is None:
            return
        s = self.video_request[0]
        r = self._video_renderer
        if r is not None and (r.height, r.width) != (s, s):
            r.close()
            self._video_renderer = r = None
        if r is None:
            self._ensure_renderer()  # the policy's renderer keeps the buffer it was made with
            g = self.model.vis.global_
            g.offwidth, g.offheight = max(g.offwidth, s), max(g.offheight, s)
            self._video_renderer = self._mj.Renderer(self.model, s, s)

    def _new_video_frames(self, c: int) -> dict[str, np.ndarray] | None:
        if self.video_request is None or self.video_request[1] == 0:
            return None
        s, n = self.video_request
        return {k: np.zeros((n, c, s, s, 3), np.uint8) for k in ("main_images", "wrist_images")}

    def _video_frame(self, b: int, c: int, video: dict[str, np.ndarray], stepped: bool) -> None:
        """Both cameras of env b at the video size after sub-step c (an env that did not step
        repeats its previous frame; at c = 0 its current state is rendered)."""
        for key, camera in (("main_images", "table_cam"), ("wrist_images", "wrist_cam")):
            if stepped or c == 0:
                r = self._video_renderer
                r.update_scene(self.datas[b], camera=camera)
                r.render(out=video[key][b, c])
            else:
                video[key][b, c] = video[key][b, c - 1]

    def _obs_from_cache(self) -> Obs:
        return Obs(
            main_images=torch.from_numpy(self._main.copy()),
            wrist_images=torch.from_numpy(self._wrist.copy()),
            states=torch.from_numpy(self._states.copy()),
            task_descriptions=[self.task.instruction] * self.num_envs,
        )

    # ------------------------------------------------------------------ privileged state, close
    def privileged_state(self) -> dict[str, np.ndarray]:
        """Simulator truth for scripted experts: cube_pos [B, N, 3], cube_quat [B, N, 4] (w, x, y, z),
        ee_pos [B, 3], ee_quat [B, 4], fingers [B, 2] (m, per finger)."""
        ds = self.datas
        return {
            "cube_pos": np.stack([d.xpos[self._cube_body] for d in ds]),
            "cube_quat": np.stack([d.xquat[self._cube_body] for d in ds]),
            "ee_pos": np.stack([d.site_xpos[self._tcp] for d in ds]),
            "ee_quat": np.stack([matrix_to_quat(d.site_xmat[self._tcp].reshape(3, 3)) for d in ds]),
            "fingers": np.stack([d.qpos[self._finger_qpos] for d in ds]),
        }

    def describe(self) -> str:
        return (f"MuJoCo {self._mj.__version__}: {self.spec.task_id}, {self.num_envs} envs, "
                f"{os.environ.get('MUJOCO_GL', 'default')} rendering")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in ("_renderer", "_video_renderer"):
            r = getattr(self, name)
            if r is not None:
                r.close()
                setattr(self, name, None)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter shutdown
        try:
            self.close()
        except Exception:
            pass


@atexit.register
def _close_all() -> None:
    for env in list(_LIVE):
        env.close()
