"""A small manager-based env with the structure of Isaac Lab's Franka stack visuomotor task.

Generated from the spec that the Python 3.12 lane checks against the real package
(rlinf_isaac/tasks/isaaclab_stack.py): the same observation groups and terms (``policy``: table_cam,
wrist_cam, eef_pos, eef_quat, gripper_pos; ``subtask_terms``: grasp_1, stack_1,
grasp_2), the same termination terms (time_out, cube_*_dropping, success), reset events
in ``event_manager._mode_term_cfgs["reset"]``, a reward manager that scales terms by
``weight * step_dt``, and Isaac Lab's step order: terminations -> rewards -> auto-reset
of finished envs (``_reset_idx``) -> observations. Like Isaac Lab it returns its
``terminated`` / ``truncated`` / reward buffers and rewrites them in place at every step,
and it reports ``eef_quat`` in WXYZ (2.3) or XYZW (3.0) order.

Kinematics, not physics: the end effector moves by ``scale * action``; a cube within 2 cm
of a closing gripper is held and follows it; an opened gripper drops the cube onto
whatever is below (another cube if their xy are within 2 cm, else the table, or the floor
off the table's edge, which triggers ``cube_*_dropping``).
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import torch

CUBE = 0.0468  # cube edge (m), as Isaac Lab's blocks
TABLE_HALF = 0.45  # table top spans x in 0.5 +- 0.45, y in +- 0.45


def _axis_angle_to_quat_wxyz(v: torch.Tensor) -> torch.Tensor:
    angle = v.norm(dim=-1, keepdim=True)
    axis = torch.where(angle > 1e-9, v / angle.clamp_min(1e-12), torch.zeros_like(v))
    return torch.cat([torch.cos(angle / 2), axis * torch.sin(angle / 2)], dim=-1)


def _quat_mul_wxyz(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


# ------------------------------------------------------------------ reset event terms


def randomize_cube_positions(env, env_ids, pose_range, min_separation=0.1):
    """Like Isaac Lab's: python ``random`` samples cube xy with a minimum separation."""
    for e in torch.as_tensor(env_ids).tolist():
        placed: list[tuple[float, float]] = []
        for k in range(3):
            for _ in range(100):
                x = random.uniform(*pose_range["x"])
                y = random.uniform(*pose_range["y"])
                if all(math.hypot(x - px, y - py) >= min_separation for px, py in placed):
                    break
            placed.append((x, y))
            env.cube_pos[e, k] = torch.tensor([x, y, CUBE / 2])


def randomize_joint_state(env, env_ids, std=0.02):
    """Like Isaac Lab's joint noise at reset: torch Gaussian noise on the ee start pose."""
    ids = torch.as_tensor(env_ids)
    env.ee_pos[ids] = torch.tensor([0.45, 0.0, 0.35]) + std * torch.randn(len(ids), 3)
    env.ee_quat[ids] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # WXYZ, gripper pointing down
    env.gripper[ids] = 0.04
    env.held[ids] = -1


# ------------------------------------------------------------------ managers


class TerminationManager:
    """Holds one bool [N] buffer per term; ``get_term`` returns it (rewritten in place)."""

    def __init__(self, env, terms: dict[str, Any], time_out_terms: tuple[str, ...]):
        self.env, self.terms, self.time_out_terms = env, terms, time_out_terms
        self._term_dones = {k: torch.zeros(env.num_envs, dtype=torch.bool) for k in terms}
        self.active_terms = list(terms)

    def compute(self) -> torch.Tensor:
        for name, func in self.terms.items():
            self._term_dones[name][:] = func(self.env)
        self.time_outs = torch.zeros(self.env.num_envs, dtype=torch.bool)
        self.terminated = torch.zeros(self.env.num_envs, dtype=torch.bool)
        for name, value in self._term_dones.items():
            if name in self.time_out_terms:
                self.time_outs |= value
            else:
                self.terminated |= value
        return self.time_outs | self.terminated

    def get_term(self, name: str) -> torch.Tensor:
        return self._term_dones[name]


class ObservationManager:
    def __init__(self, env, groups: dict[str, dict[str, Any]]):
        self.env, self.groups = env, groups
        self.active_terms = {g: list(t) for g, t in groups.items()}

    def compute_group(self, group: str, update_history: bool = False) -> dict[str, torch.Tensor]:
        return {name: func(self.env) for name, func in self.groups[group].items()}

    def compute(self, update_history: bool = False) -> dict[str, dict[str, torch.Tensor]]:
        return {g: self.compute_group(g) for g in self.groups}


class EventManager:
    def __init__(self, env, reset_terms: list[SimpleNamespace]):
        self.env = env
        self._mode_term_cfgs = {"reset": reset_terms}

    def apply(self, mode: str, env_ids) -> None:
        for term in self._mode_term_cfgs.get(mode, []):
            term.func(self.env, env_ids, **term.params)


class RewardManager:
    """Isaac Lab's rule: ``r = sum_k func_k(env) * weight_k * dt``."""

    def __init__(self, env, rewards_cfg):
        if isinstance(rewards_cfg, dict):
            items = rewards_cfg.items()
        else:
            items = vars(rewards_cfg).items() if rewards_cfg is not None else []
        self.env, self.terms = env, {k: v for k, v in items if v is not None}

    def compute(self, dt: float) -> torch.Tensor:
        total = torch.zeros(self.env.num_envs)
        for term in self.terms.values():
            total += term.func(self.env, **term.params) * term.weight * dt
        return total


class RewardTermCfg(SimpleNamespace):
    """Stand-in with the fields of Isaac Lab's ``RewardTermCfg`` (func, weight, params)."""

    def __init__(self, func, weight: float, params: dict | None = None):
        super().__init__(func=func, weight=weight, params=params or {})


# ------------------------------------------------------------------ the env


class FakeStackEnv:
    """Manager-based stack env (N envs) with Isaac Lab's step order and in-place buffers."""

    def __init__(self, num_envs=4, quat_order="wxyz", cam_hw=(32, 40), episode_length=50,
                 decimation=5, sim_dt=0.01, arm_scale=0.5, rewards_cfg=None, device="cpu"):
        self.num_envs, self.device, self.quat_order = num_envs, device, quat_order
        self.step_dt = decimation * sim_dt
        self.max_episode_length = episode_length
        self.cam_hw, self.arm_scale = cam_hw, arm_scale
        N = num_envs
        self.ee_pos, self.ee_quat = torch.zeros(N, 3), torch.zeros(N, 4)
        self.gripper = torch.zeros(N)
        self.held = torch.full((N,), -1, dtype=torch.int64)
        self.cube_pos = torch.zeros(N, 3, 3)
        self.episode_length_buf = torch.zeros(N, dtype=torch.int64)
        self.reward_buf = torch.zeros(N)
        self.reset_terminated = torch.zeros(N, dtype=torch.bool)
        self.reset_time_outs = torch.zeros(N, dtype=torch.bool)
        self.num_resets = torch.zeros(N, dtype=torch.int64)  # calls of _reset_idx per env
        self.observation_manager = ObservationManager(self, {
            "policy": {"table_cam": self._table_cam, "wrist_cam": self._wrist_cam,
                       "eef_pos": lambda env: env.ee_pos.clone(), "eef_quat": self._eef_quat,
                       "gripper_pos": lambda env: torch.stack([env.gripper, -env.gripper], -1)},
            "subtask_terms": {"grasp_1": lambda env: env.held == 1, "stack_1": lambda env: env._on(1, 0),
                              "grasp_2": lambda env: env.held == 2},
        })
        self.termination_manager = TerminationManager(self, {
            "time_out": lambda env: env.episode_length_buf >= env.max_episode_length,
            **{f"cube_{k + 1}_dropping": (lambda env, k=k: env.cube_pos[:, k, 2] < -0.05) for k in range(3)},
            "success": lambda env: env._on(1, 0) & env._on(2, 1) & (env.held < 0) & (env.gripper > 0.03),
        }, time_out_terms=("time_out",))
        pose_range = {"x": (0.4, 0.6), "y": (-0.1, 0.1)}
        self.event_manager = EventManager(self, [
            SimpleNamespace(func=randomize_joint_state, params={"std": 0.02}),
            SimpleNamespace(func=randomize_cube_positions, params={"pose_range": pose_range}),
        ])
        self.reward_manager = RewardManager(self, rewards_cfg)

    # -------------------------------------------------------------- observations
    def _eef_quat(self, env) -> torch.Tensor:
        q = self.ee_quat.clone()
        return q[:, [1, 2, 3, 0]] if self.quat_order == "xyzw" else q  # [N, 4] WXYZ -> XYZW

    def _pix(self, xy: torch.Tensor, h: int, w: int):
        r = ((xy[..., 0] - 0.05) / 0.9 * (h - 1)).round().long().clamp(0, h - 1)
        c = ((xy[..., 1] + 0.45) / 0.9 * (w - 1)).round().long().clamp(0, w - 1)
        return r, c

    def _table_cam(self, env) -> torch.Tensor:
        """Top-down uint8 [N, h, w, 3]: grey table, a coloured 3x3 square per cube (brighter when higher)."""
        h, w = self.cam_hw
        img = torch.full((self.num_envs, h, w, 3), 90, dtype=torch.uint8)
        r, c = self._pix(self.cube_pos[..., :2], h, w)  # [N, 3]
        for e in range(self.num_envs):
            for k in range(3):
                if self.cube_pos[e, k, 2] < -0.05:
                    continue
                shade = int(min(255, 120 + 600 * float(self.cube_pos[e, k, 2])))
                img[e, max(0, r[e, k] - 1):r[e, k] + 2, max(0, c[e, k] - 1):c[e, k] + 2, k] = shade
        er, ec = self._pix(self.ee_pos[:, :2], h, w)
        img[torch.arange(self.num_envs), er, ec] = 255
        return img

    def _wrist_cam(self, env) -> torch.Tensor:
        """uint8 [N, h, w, 3] whose brightness encodes ee height and gripper opening."""
        h, w = self.cam_hw
        v = (self.ee_pos[:, 2].clamp(0, 0.5) * 400 + self.gripper * 1000).clamp(0, 255).to(torch.uint8)
        return v.view(-1, 1, 1, 1).expand(self.num_envs, h, w, 3).clone()

    def _on(self, upper: int, lower: int) -> torch.Tensor:
        d = self.cube_pos[:, upper] - self.cube_pos[:, lower]
        return (d[:, :2].norm(dim=-1) < 0.02) & ((d[:, 2] - CUBE).abs() < 0.005) & (self.held != upper)

    # -------------------------------------------------------------- dynamics
    def _apply(self, action: torch.Tensor) -> None:
        a = action.to(torch.float32)
        self.ee_pos += self.arm_scale * a[:, :3] / 5  # one of `decimation` substeps
        dq = _axis_angle_to_quat_wxyz(self.arm_scale * a[:, 3:6] / 5)
        self.ee_quat = _quat_mul_wxyz(dq, self.ee_quat)
        close = a[:, 6] < 0
        for e in range(self.num_envs):
            if close[e] and self.held[e] < 0 and self.gripper[e] > 0.03:
                dist = (self.cube_pos[e] - self.ee_pos[e]).norm(dim=-1)
                k = int(dist.argmin())
                if dist[k] < 0.02:
                    self.held[e] = k
            if not close[e] and self.held[e] >= 0:
                self._drop(e, int(self.held[e]))
            self.gripper[e] = 0.0 if close[e] else 0.04
            if self.held[e] >= 0:
                self.cube_pos[e, self.held[e]] = self.ee_pos[e]

    def _drop(self, e: int, k: int) -> None:
        self.held[e] = -1
        x, y = float(self.cube_pos[e, k, 0]), float(self.cube_pos[e, k, 1])
        if abs(x - 0.5) > TABLE_HALF or abs(y) > TABLE_HALF:
            self.cube_pos[e, k, 2] = -1.0  # off the table: falls to the floor
            return
        z = CUBE / 2
        for j in range(3):
            if j != k and (self.cube_pos[e, j, :2] - self.cube_pos[e, k, :2]).norm() < 0.02:
                z = max(z, float(self.cube_pos[e, j, 2]) + CUBE)
        self.cube_pos[e, k, 2] = z

    # -------------------------------------------------------------- Isaac Lab API
    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        self.event_manager.apply("reset", env_ids)
        self.episode_length_buf[env_ids] = 0
        self.num_resets[env_ids] += 1

    def reset(self, seed=None, env_ids=None, options=None):
        # the state lives on the CPU whatever ``device`` says; ids and actions arrive on ``device``
        ids = torch.arange(self.num_envs) if env_ids is None else torch.as_tensor(env_ids).cpu()
        self._reset_idx(ids)
        return self.observation_manager.compute(), {}

    def step(self, action: torch.Tensor):
        if action.shape != (self.num_envs, 7) or str(action.device) != str(self.device):
            raise ValueError(f"action must be ({self.num_envs}, 7) on {self.device}, got {tuple(action.shape)}")
        action = action.cpu()
        self.last_action = action.clone()
        for _ in range(5):
            self._apply(action)
        self.episode_length_buf += 1
        reset_buf = self.termination_manager.compute()
        self.reset_terminated[:] = self.termination_manager.terminated  # in place, like Isaac Lab
        self.reset_time_outs[:] = self.termination_manager.time_outs
        self.reward_buf[:] = self.reward_manager.compute(dt=self.step_dt)
        ids = reset_buf.nonzero().flatten()
        if ids.numel():
            self._reset_idx(ids)
        obs = self.observation_manager.compute(update_history=True)
        return obs, self.reward_buf, self.reset_terminated, self.reset_time_outs, {}

    def close(self) -> None:
        self.closed = True


def build_fake_env(task_id: str, num_envs: int, image_size, max_episode_steps: int, reward_type: str,
                   action_scale=None, seed: int = 0, device: str = "cpu", quat_order: str = "wxyz",
                   fault: str | None = None, fault_after: int = 0) -> dict:
    """Builder for the simulator process (same signature as the real one, plus faults).

    fault: None, "exit" (the process exits with code 7 at step ``fault_after``), "hang"
    (the process stops answering at step ``fault_after``), or "init_error".
    """
    from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS, StackRewardCfg, add_stack_rewards

    if fault == "init_error":
        raise RuntimeError("fake Isaac Lab failed to create the env (test fault)")
    task = ISAACLAB_STACK_TASKS[task_id]
    env = FakeStackEnv(num_envs=num_envs, quat_order=quat_order, arm_scale=action_scale or task.arm_action_scale,
                       episode_length=max_episode_steps + 1, device=device)
    cfg = SimpleNamespace(rewards=None)
    add_stack_rewards(cfg, StackRewardCfg(reward_type=reward_type), RewardTermCfg, env.step_dt)
    env.reward_manager = RewardManager(env, cfg.rewards)
    if fault in ("exit", "hang"):
        _inject_fault(env, fault, fault_after)
    print(f"[fake isaaclab] built {num_envs} envs for {task_id}", flush=True)
    return {"env": env, "stepper": {"quat_order": quat_order},
            "info": {"isaaclab_id": task.isaaclab_ids[0], "isaaclab_version": "fake", "step_dt": env.step_dt}}


def _inject_fault(env: FakeStackEnv, fault: str, after: int) -> None:
    import os
    import time

    step, count = env.step, [0]

    def faulty_step(action):
        count[0] += 1
        if count[0] > after:
            print(f"[fake isaaclab] injected fault {fault!r} at step {count[0]}", flush=True)
            if fault == "exit":
                os._exit(7)
            time.sleep(3600)
        return step(action)

    env.step = faulty_step
