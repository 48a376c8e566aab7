"""Isaac Lab adapter core: turns a ``ManagerBasedRLEnv`` into our chunked env contract.

Runs inside the simulator process (see :mod:`rlinf_isaac.envs.isaaclab.process`). It never
imports Isaac Lab: it speaks to the env through the manager-based API only
(``step``, ``reset``, ``termination_manager``, ``observation_manager``,
``event_manager``), which is what lets the same code run against the Python 3.11 test fake.

What it takes care of:

* Isaac Lab auto-resets a finished env *inside* ``step`` and reuses ``terminated`` /
  ``truncated`` / reward buffers in place: every value is cloned when read, the last
  observation before the reset is captured by a hook on ``_reset_idx`` (when asked for:
  capturing it renders every camera once more on each step where an env ends), and finished
  envs are masked for the rest of the chunk (then reset again to their reset state, so the
  observation returned is the true first observation of the new episode).
* Reset-state ids: every reset-mode event term runs under random generators (python, numpy,
  torch) seeded from the reset-state ids. ``reset_seeding="batched"`` (the default) calls a
  term once per *layer*: envs that share an id in one reset go to different layers that hold
  the same id sequence, so they draw the same numbers and start from the same state (GRPO
  groups), and the same ids in the same order start the same way at every reset (fixed
  evaluation episodes); a few calls per reset instead of one per env. ``"per_env"`` calls it
  once per env, seeded from that env's id alone: an id then names one start state whatever
  else is reset with it, at one term call per env.
* Quaternion order: 2.3 gives WXYZ, 3.0 gives XYZW; both become axis-angle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from rlinf_isaac.envs.base import (
    ACTION_DIM,
    EpisodeStats,
    Obs,
    as_env_ids,
    as_reset_state_ids,
    validate_actions,
)

__all__ = [
    "StepperCfg",
    "ChunkStepper",
    "ResetSeeder",
    "seed_layers",
    "layer_seed",
    "quat_to_axis_angle",
    "to_wxyz",
    "binarize_gripper",
    "as_torch",
]

QUAT_ORDERS = ("wxyz", "xyzw")
RESET_SEEDINGS = ("batched", "per_env")
_ID_SPACE = 2**31 - 1


@dataclass
class StepperCfg:
    """Adapter settings (sent to the simulator process).

    image_size: (H, W) of the returned uint8 images (resized if the camera differs).
    quat_order: order of the ``eef_quat`` observation: "wxyz" (Isaac Lab 2.x) or "xyzw" (3.x).
    max_episode_steps: episodes are truncated after this many env steps.
    obs_on_sim_device: keep the observation tensors (images, states) on the simulator's device
        (for CUDA IPC to the env worker); False: on the CPU. Everything else is on the CPU.
    reset_seeding: "batched" or "per_env": how reset event terms are seeded from the reset-state
        ids (module docstring).
    capture_final_obs: default of ``chunk_step``'s ``final_obs``: return ended episodes' last
        observations in ``info["final_obs"]`` (else None there). Always captured without
        auto-reset (a finished env keeps showing its last view).
    """

    instruction: str
    image_size: tuple[int, int] = (84, 84)
    quat_order: str = "wxyz"
    max_episode_steps: int = 600
    auto_reset: bool = True
    seed: int = 0
    success_term: str = "success"
    obs_group: str = "policy"
    camera_terms: tuple[str, str] = ("table_cam", "wrist_cam")
    state_terms: tuple[str, str, str] = ("eef_pos", "eef_quat", "gripper_pos")
    capture_final_obs: bool = True
    obs_on_sim_device: bool = False
    reset_seeding: str = "batched"
    # scene entities behind privileged_state(): the cubes (in stacking order), the end-effector
    # frame sensor, the robot and its finger joints
    object_names: tuple[str, ...] = ("cube_1", "cube_2", "cube_3")
    ee_frame: str = "ee_frame"
    robot: str = "robot"
    finger_joints: tuple[str, str] = ("panda_finger_joint1", "panda_finger_joint2")

    def __post_init__(self):
        if self.quat_order not in QUAT_ORDERS:
            raise ValueError(f"quat_order must be one of {list(QUAT_ORDERS)}, got {self.quat_order!r}")
        h, w = self.image_size
        if not (h >= 1 and w >= 1):
            raise ValueError(f"image_size must be (H, W) with H, W >= 1, got {self.image_size}")
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if self.reset_seeding not in RESET_SEEDINGS:
            raise ValueError(f"reset_seeding must be one of {list(RESET_SEEDINGS)}, got {self.reset_seeding!r}")


def as_torch(x: Any) -> torch.Tensor:
    """Isaac Lab 3.0 exposes warp-backed data through ``.torch``; 2.3 gives tensors."""
    return x.torch if hasattr(x, "torch") and not isinstance(x, torch.Tensor) else torch.as_tensor(x)


def to_wxyz(quat: torch.Tensor, order: str) -> torch.Tensor:
    """Reorder quaternions float [N, 4] from ``order`` to WXYZ."""
    if order == "wxyz":
        return quat
    if order == "xyzw":
        return quat[..., [3, 0, 1, 2]]  # [N, 4] (x, y, z, w) -> (w, x, y, z)
    raise ValueError(f"quaternion order must be one of {list(QUAT_ORDERS)}, got {order!r}")


def quat_to_axis_angle(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """Axis-angle (rotation vector) float [N, 3] of unit quaternions float [N, 4] (WXYZ), as
    robosuite's ``quat2axisangle`` computes it (the state RLinf's Isaac Lab checkpoints read).

    angle = 2 * atan2(|v|, w) in [0, 2 pi), axis = v / |v|; small angles use 2 * v / w (first
    order). No hemisphere canonicalisation: q and -q give angles theta and 2 pi - theta about
    opposite axes. The gripper pointing down is a rotation by pi (w = 0): a hand tilting
    through it moves the simulator's quaternion through w = 0 continuously, and so does this
    vector, where forcing w >= 0 would flip its sign between +pi and -pi at every crossing.
    """
    q = quat_wxyz / quat_wxyz.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, v = q[..., 0], q[..., 1:]
    s = v.norm(dim=-1)  # |sin(angle / 2)|
    angle = 2.0 * torch.atan2(s, w)
    small = torch.where(w > 0, 2.0 / w.clamp_min(1e-12), torch.zeros_like(w))  # v ~ 0: angle 0 (or 2 pi: 0)
    scale = torch.where(s > 1e-7, angle / s.clamp_min(1e-12), small)
    return v * scale.unsqueeze(-1)


def binarize_gripper(actions: torch.Tensor) -> torch.Tensor:
    """Gripper command to exactly -1 (close, a < 0) or +1 (open); actions float [..., A]."""
    out = actions.clone()
    out[..., -1] = torch.where(actions[..., -1] < 0, -1.0, 1.0)
    return out


class ResetSeeder:
    """Seeds Isaac Lab's reset events from the reset-state ids (module docstring).

    Wraps each term of ``event_manager``'s "reset" mode so that it runs once per layer of
    :func:`seed_layers` under python/numpy/torch generators seeded by :func:`layer_seed`.
    """

    def __init__(self, env: Any, state_id_of: Callable[[int], int], per_env: bool = False):
        self.env = env
        self.state_id_of = state_id_of
        terms = _reset_event_terms(env)
        for k, term in enumerate(terms):
            if not getattr(term.func, "_rlinf_seeded", False):
                term.func = _SeededTerm(term.func, k, state_id_of, per_env)
        self.num_terms = len(terms)


def seed_layers(ids: list[int], per_env: bool = False) -> list[list[int]]:
    """Positions 0..n-1 of reset-state ids ``ids`` -> layers (lists of positions), one term call each.

    Batched: ids with the same multiplicity m in this reset form m layers, layer j holding
    the j-th position of each such id, ids in first-appearance order; every one of the m
    layers then has the same id sequence. per_env: one layer per position.
    E.g. ids [7, 3, 7, 3, 9] -> [[4], [0, 1], [2, 3]]: 9 once (one layer), 7 and 3 twice (two
    layers, both with ids (7, 3)).
    """
    if per_env:
        return [[i] for i in range(len(ids))]
    where: dict[int, list[int]] = {}
    for pos, i in enumerate(ids):
        where.setdefault(i, []).append(pos)
    by_count: dict[int, list[list[int]]] = {}
    for positions in where.values():
        by_count.setdefault(len(positions), []).append(positions)
    return [[positions[j] for positions in groups] for m, groups in sorted(by_count.items()) for j in range(m)]


def layer_seed(ids: list[int], k: int) -> int:
    """Seed of reset event term ``k`` for a layer whose reset-state ids are ``ids`` (in order).

    ``h`` folds the ids (``h = id_0``, then ``h = (h * 1_000_003 + id) mod (2^31 - 1)``), and
    the seed is ``(h * 1_000_003 + k * 7919) mod (2^31 - 1)``: a layer of one env is seeded
    from its id alone, as in per_env mode.
    """
    h = int(ids[0]) % _ID_SPACE
    for i in ids[1:]:
        h = (h * 1_000_003 + int(i)) % _ID_SPACE
    return (h * 1_000_003 + k * 7919) % _ID_SPACE


class _SeededTerm:
    """A reset event term called once per layer under seeded generators; forwards other
    attributes (e.g. ``reset`` of class-based terms) to the wrapped term."""

    _rlinf_seeded = True

    def __init__(self, func: Callable, k: int, state_id_of: Callable[[int], int], per_env: bool = False):
        self.__wrapped__, self.k, self.state_id_of, self.per_env = func, k, state_id_of, per_env

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __call__(self, env, env_ids, *args, **kwargs):
        envs = _ids_list(env_ids, env.num_envs)
        ids = [self.state_id_of(e) for e in envs]
        devices = [torch.device(env.device)] if torch.device(env.device).type == "cuda" else []
        # one save / restore of every generator around the whole reset, not one per layer
        with torch.random.fork_rng(devices=devices):
            py_state, np_state = random.getstate(), np.random.get_state()
            try:
                for layer in seed_layers(ids, self.per_env):
                    seed = layer_seed([ids[p] for p in layer], self.k)
                    random.seed(seed)
                    np.random.seed(seed)
                    torch.manual_seed(seed)
                    self.__wrapped__(env, torch.tensor([envs[p] for p in layer], device=env.device), *args, **kwargs)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def _ids_list(env_ids: Any, num_envs: int) -> list[int]:
    """Env ids as Isaac Lab passes them (None, slice, int tensor [N]) -> python ints."""
    if env_ids is None:
        return list(range(num_envs))
    if isinstance(env_ids, slice):
        return list(range(num_envs))[env_ids]
    return torch.as_tensor(env_ids).reshape(-1).cpu().tolist()


def _reset_event_terms(env: Any) -> list:
    manager = getattr(env, "event_manager", None)
    if manager is None:
        return []
    modes = getattr(manager, "_mode_term_cfgs", {})
    return list(modes.get("reset", []))


class _FinalObsHook:
    """Captures the policy observation of envs just before Isaac Lab auto-resets them, for the
    whole batch at once: after a step taken with ``armed`` set, ``rows[term][e]`` holds env e's
    last row where ``mask[e]`` (bool [B], CPU) is set. Unarmed it costs nothing."""

    def __init__(self, env: Any, group: str):
        self.env, self.group = env, group
        self.rows: dict[str, torch.Tensor] = {}
        self.mask = torch.zeros(int(env.num_envs), dtype=torch.bool)
        original = env._reset_idx

        def reset_idx(env_ids, *args, **kwargs):
            if self.armed:
                self._capture(env_ids)
            return original(env_ids, *args, **kwargs)

        self.armed = False
        env._reset_idx = reset_idx

    def clear(self) -> None:
        self.mask.zero_()

    def _capture(self, env_ids: Any) -> None:
        obs = self.env.observation_manager.compute_group(self.group)
        ids = torch.as_tensor(_ids_list(env_ids, self.env.num_envs), dtype=torch.int64)
        for k, v in obs.items():
            v = as_torch(v)
            buf = self.rows.get(k)
            if buf is None or buf.shape != v.shape or buf.dtype != v.dtype or buf.device != v.device:
                buf = self.rows[k] = torch.zeros_like(v)
            at = ids.to(v.device)
            buf[at] = v[at]
        self.mask[ids] = True


def _rows_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bool [B] -> [B, 1, ...] on ``like``'s device, broadcastable against ``like``."""
    return mask.to(like.device).reshape(-1, *([1] * (like.ndim - 1)))


class ChunkStepper:
    """Our batched env contract over one Isaac Lab ``ManagerBasedRLEnv`` (B = env.num_envs).

    ``reset`` and ``chunk_step`` follow :class:`rlinf_isaac.envs.base.BatchedEnv`
    (same arguments, same returns); this object lives where the simulator lives.
    """

    def __init__(self, env: Any, cfg: StepperCfg, refresh: Callable[[Any], dict] | None = None):
        """refresh: ``refresh(env) -> observation groups`` recomputed after a reset, for backends
        whose sensors update only when physics steps (Newton's frame sensors: without it the
        end-effector pose of a reset env reads its pre-reset value)."""
        self.env, self.cfg, self.refresh = env, cfg, refresh
        self.B = int(env.num_envs)
        self.device = torch.device(str(env.device))
        self.obs_device = self.device if cfg.obs_on_sim_device else torch.device("cpu")
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.state_ids = torch.zeros(self.B, dtype=torch.int64)  # current episode's id
        self.pending_ids = self._draw(self.B)  # id for the env's next reset
        self.ep_return = torch.zeros(self.B)
        self.ep_len = torch.zeros(self.B, dtype=torch.int64)
        self.ep_success = torch.zeros(self.B, dtype=torch.bool)
        self.frozen = torch.zeros(self.B, dtype=torch.bool)  # finished, auto_reset=False
        self.last_obs: Obs | None = None
        self.seeder = ResetSeeder(env, lambda e: int(self.pending_ids[e]), per_env=cfg.reset_seeding == "per_env")
        self.hook = _FinalObsHook(env, cfg.obs_group)

    def _draw(self, n: int) -> torch.Tensor:
        return torch.randint(0, _ID_SPACE, (n,), generator=self.gen, dtype=torch.int64)

    # ---------------------------------------------------------------- observations
    def _image(self, x: Any) -> torch.Tensor:
        """Camera term -> uint8 [B, H, W, 3] at the configured size."""
        img = as_torch(x).detach()[..., :3]
        if img.is_floating_point():  # normalised or [0, 1] float images
            img = (img.clamp(0, 1) * 255.0 if img.max() <= 1.0 else img.clamp(0, 255)).round()
        h, w = self.cfg.image_size
        if tuple(img.shape[1:3]) != (h, w):
            x4 = img.permute(0, 3, 1, 2).float()  # [B, H0, W0, 3] -> [B, 3, H0, W0]
            x4 = F.interpolate(x4, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            img = x4.round().clamp(0, 255).permute(0, 2, 3, 1)  # [B, 3, H, W] -> [B, H, W, 3]
        return img.to(self.obs_device, torch.uint8).contiguous()

    def make_obs(self, group: dict[str, Any]) -> Obs:
        """Our observation from the Isaac Lab policy group (dict of term -> [B, ...])."""
        main, wrist = self.cfg.camera_terms
        pos_t, quat_t, grip_t = self.cfg.state_terms
        dev = self.obs_device
        quat = to_wxyz(as_torch(group[quat_t]).float().to(dev), self.cfg.quat_order)
        states = torch.cat(
            [
                as_torch(group[pos_t]).float().to(dev),  # [B, 3]
                quat_to_axis_angle(quat),  # [B, 3]
                as_torch(group[grip_t]).float().to(dev).reshape(self.B, -1)[:, :2],  # [B, 2]
            ],
            dim=-1,
        )  # [B, 8]
        return {
            "main_images": self._image(group[main]),
            "wrist_images": self._image(group[wrist]),
            "states": states,
            "task_descriptions": [self.cfg.instruction] * self.B,
        }

    def privileged_state(self) -> dict[str, np.ndarray]:
        """Simulator truth for scripted experts, in each env's robot base frame (the env origin):
        cube_pos [B, N, 3], cube_quat [B, N, 4] (w, x, y, z), ee_pos [B, 3], ee_quat [B, 4] (the
        end-effector frame: the tool centre point), fingers [B, 2] (m, per finger)."""
        scene, order = self.env.scene, self.cfg.quat_order
        origins = as_torch(scene.env_origins)[:, :3].float().cpu()  # [B, 3]
        cubes = [scene[name].data for name in self.cfg.object_names]
        ee = scene[self.cfg.ee_frame].data
        robot = scene[self.cfg.robot]
        fingers = [robot.joint_names.index(j) for j in self.cfg.finger_joints]
        return {
            "cube_pos": torch.stack([as_torch(c.root_pos_w).float().cpu() - origins for c in cubes], 1).numpy(),
            "cube_quat": torch.stack([to_wxyz(as_torch(c.root_quat_w).float().cpu(), order) for c in cubes], 1).numpy(),
            "ee_pos": (as_torch(ee.target_pos_w)[:, 0].float().cpu() - origins).numpy(),
            "ee_quat": to_wxyz(as_torch(ee.target_quat_w)[:, 0].float().cpu(), order).numpy(),
            "fingers": as_torch(robot.data.joint_pos)[:, fingers].float().cpu().numpy(),
        }

    # ---------------------------------------------------------------- reset
    def reset(self, seed=None, reset_state_ids=None, env_ids=None) -> Obs:
        """Reset ``env_ids`` (all if None) to the given reset-state ids (drawn if None)."""
        if seed is not None:
            self.gen.manual_seed(int(seed))
            self.pending_ids = self._draw(self.B)
        ids = as_env_ids(env_ids, self.B)
        pinned = as_reset_state_ids(reset_state_ids, ids.numel())
        if ids.numel() == 0:
            return self.last_obs if self.last_obs is not None else self._reset_ids(ids, None)
        return self._reset_ids(ids, pinned)

    def _reset_ids(self, ids: torch.Tensor, pinned: torch.Tensor | None) -> Obs:
        if pinned is not None:
            self.pending_ids[ids] = pinned
        self.state_ids[ids] = self.pending_ids[ids]
        full = ids.numel() == self.B
        obs, _ = self.env.reset(env_ids=None if full else ids.to(self.device))
        if self.refresh is not None:
            obs = self.refresh(self.env)
        self.pending_ids[ids] = self._draw(ids.numel())
        self.ep_return[ids], self.ep_len[ids], self.ep_success[ids] = 0.0, 0, False
        self.frozen[ids] = False
        self.last_obs = self.make_obs(obs[self.cfg.obs_group])
        return self.last_obs

    # ---------------------------------------------------------------- step
    def chunk_step(self, actions: torch.Tensor, final_obs: bool | None = None) -> dict[str, Any]:
        """Execute actions float [B, C, A]; returns the fields of a ChunkStepResult.

        final_obs: capture ended episodes' last observations for ``info["final_obs"]`` (None:
            ``cfg.capture_final_obs``); False leaves ``info["final_obs"]`` None and saves a render
            of every camera on each step where an env ends.
        Returns dict(obs, reward [B, C], terminated [B, C], truncated [B, C], info).
        """
        if self.last_obs is None:
            raise RuntimeError("chunk_step called before reset(): reset the env first")
        capture = self.cfg.capture_final_obs if final_obs is None else bool(final_obs)
        capture = capture or not self.cfg.auto_reset
        acts = binarize_gripper(validate_actions(actions, self.B, ACTION_DIM))
        C = acts.shape[1]
        out = {k: torch.zeros(self.B, C, dtype=torch.bool) for k in ("terminated", "truncated", "success", "valid")}
        reward = torch.zeros(self.B, C)
        ended = self.frozen.clone()  # envs whose episode is over (this or an earlier chunk)
        final = {"mask": torch.zeros(self.B, dtype=torch.bool), "rows": {}}  # envs ended in the chunk, last rows
        group = None
        for c in range(C):
            live = ~ended
            obs, rew, ter, tru = self._env_step(acts[:, c], capture)
            group = obs[self.cfg.obs_group]
            succ = as_torch(self.env.termination_manager.get_term(self.cfg.success_term)).cpu().clone()
            self.ep_len += live.long()
            tru = tru | (self.ep_len >= self.cfg.max_episode_steps)  # our own step limit
            reward[live, c] = rew[live]
            out["terminated"][live, c] = ter[live]
            out["truncated"][live, c] = tru[live] & ~ter[live]
            out["success"][live, c] = succ[live]
            out["valid"][live, c] = True
            self.ep_return += torch.where(live, rew, torch.zeros_like(rew))
            self.ep_success |= live & succ
            new_done = live & (ter | tru)
            if capture:
                self._collect_final(new_done, group, final)
            ended |= new_done
        return self._finish_chunk(ended, group, final, reward, out)

    def _env_step(self, act: torch.Tensor, capture: bool):
        """One Isaac Lab step with (N, 7) actions on the env's device; clones in-place buffers.
        capture: the hook captures the last observation of envs Isaac Lab resets in the step."""
        self.hook.clear()
        self.hook.armed = capture
        try:
            obs, rew, ter, tru, _ = self.env.step(act.to(self.device))
        finally:
            self.hook.armed = False
        # Isaac Lab reuses these buffers in place at the next step: clone now.
        return (
            obs,
            as_torch(rew).detach().float().cpu().clone().reshape(self.B),
            as_torch(ter).detach().bool().cpu().clone().reshape(self.B),
            as_torch(tru).detach().bool().cpu().clone().reshape(self.B),
        )

    def _collect_final(self, new_done: torch.Tensor, group: dict, final: dict) -> None:
        """Remember the last policy-group row of each env that just finished (bool [B]
        ``new_done``): the row the hook captured before Isaac Lab reset it in the step, else (our
        step limit) the step's own observation. Whole-batch tensor ops, no loop over envs."""
        if not bool(new_done.any()):
            return
        captured = self.hook.mask & new_done
        for k, v in group.items():
            v = as_torch(v)
            src = v
            if bool(captured.any()):
                src = torch.where(_rows_mask(captured, v), self.hook.rows[k], v)
            buf = final["rows"].get(k)
            if buf is None:
                buf = final["rows"][k] = torch.zeros_like(v)
            buf.copy_(torch.where(_rows_mask(new_done, v), src, buf))
        final["mask"] |= new_done

    def _finish_chunk(self, ended, group, final, reward, out) -> dict[str, Any]:
        """Episode stats, final observations, auto-resets; returns the chunk result fields."""
        done = ended & ~self.frozen  # episodes that ended in this chunk
        stats = EpisodeStats(
            done=done.clone(),
            success_once=self.ep_success & done,
            returns=torch.where(done, self.ep_return, torch.zeros_like(self.ep_return)),
            episode_len=torch.where(done, self.ep_len, torch.zeros_like(self.ep_len)),
        )
        obs = self.make_obs(group)
        final_obs = None
        if bool(final["mask"].any()):
            merged = {k: torch.where(_rows_mask(final["mask"], as_torch(v)), final["rows"][k], as_torch(v))
                      for k, v in group.items()}
            final_obs = _where_rows(done, self.make_obs(merged), obs)
        done_ids = done.nonzero().flatten()
        if self.cfg.auto_reset and done_ids.numel():
            obs = self._reset_ids(done_ids, None)  # same id as Isaac Lab's internal reset
        elif not self.cfg.auto_reset:
            if final_obs is not None:
                obs = _where_rows(done, final_obs, obs)
            obs = _where_rows(self.frozen, self.last_obs, obs)  # frozen envs keep their last view
            self.frozen |= done
        self.last_obs = obs
        info = {
            "success": out["success"],
            "valid": out["valid"],
            "episode": stats,
            "final_obs": final_obs,
            "reset_state_ids": self.state_ids.clone(),
            "diverged": torch.zeros(self.B, dtype=torch.bool),
        }
        return {
            "obs": obs,
            "reward": reward,
            "terminated": out["terminated"],
            "truncated": out["truncated"],
            "info": info,
        }


def _where_rows(mask: torch.Tensor, a: Obs, b: Obs) -> Obs:
    """Row-wise select between two observations: rows of ``a`` where mask [B] is True."""
    out: dict[str, Any] = {}
    for k, va in a.items():
        vb = b[k]
        if isinstance(va, torch.Tensor):
            out[k] = torch.where(_rows_mask(mask, va), va, vb)
        else:
            out[k] = [x if bool(f) else y for x, y, f in zip(va, vb, mask)]
    return out  # type: ignore[return-value]
