"""Scripted stacking expert from privileged state, and a CLI to run / record it.

For each stacking pair (top, bottom) the expert walks through waypoints: above the top
cube, descend, close, lift, above the bottom cube, descend, open, retreat. Each step it
turns the waypoint error into the env's 7-D IK-Rel action:
``a[:3] = clip(g (p_wp - p_ee), max_step) / scale``, ``a[3:6] = clip(g axis_angle(R_wp R_ee^T), max_rot_step) / scale``
(``g``: the tracking gain),
``a[6] = -1`` (close) or ``+1`` (open). If a lift finds the cube not held, it retries the pair.
The grasp yaw is face-aligned with the cube and, of the two footprints a parallel gripper
has, the one whose 20 cm hand bar and fingers clear the other cubes (the bar would otherwise
land on the stack already built when the last cube lies within ~13 cm of it along the bar).

CLI::

    python -m rlinf_isaac.demos.expert --task TASK --episodes N [--num-envs B] [--record DIR]
        [--video PATH [--video-size S] [--video-envs N]] [--seed S] [--max-episode-steps T] [--funnel M]
        [--sim-device cpu --isaaclab-stack newton --isaaclab-python PY]   # Isaac Lab tasks
    python -m rlinf_isaac.demos.expert --list

The last output line is JSON: ``{"task": ..., "episodes": N, "success_rate": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch

from rlinf_isaac.envs.mujoco import scene
from rlinf_isaac.envs.mujoco.kinematics import R_DOWN, matrix_to_axis_angle
from rlinf_isaac.envs.mujoco.task_spec import StackTaskSpec

__all__ = ["ExpertConfig", "ScriptedExpert", "run_expert", "main"]

# Phases of one pair, in order.
ABOVE, DESCEND, CLOSE, LIFT, CARRY, PLACE, OPEN, RETREAT = range(8)


@dataclass
class ExpertConfig:
    """Waypoint geometry (m), speeds (m or rad per step) and gripper wait times (steps)."""

    hover: float = 0.10
    lift: float = 0.12
    place_clearance: float = 0.004
    max_step: float = 0.02
    slow_step: float = 0.01
    max_rot_step: float = 0.15
    reach_tol: float = 0.006
    rot_tol: float = 0.05  # rad: largest gripper orientation error at which a descent to a cube starts
    close_steps: int = 6
    open_steps: int = 4
    clearance: float = 0.01  # wanted xy gap (m) between the gripper footprint and other cubes at a grasp
    # commanded motion = tracking_gain x waypoint error (capped at the step): > 1 where the arm
    # covers only part of each commanded step (a controller whose joint targets lag)
    tracking_gain: float = 1.0
    # m: 0 starts a descent (to a cube, onto the stack) once the hover waypoint is reached within
    # reach_tol. > 0 starts it within this xy distance of the cube and lowers the target in
    # proportion to the xy error left (hover height at ``funnel``, the cube's at 0): the descent
    # then corrects xy on the way down, and the actions change smoothly with the hand's offset.
    funnel: float = 0.0

    def __post_init__(self) -> None:
        for k in ("hover", "lift", "max_step", "slow_step", "max_rot_step", "reach_tol", "rot_tol", "clearance",
                  "tracking_gain"):
            if getattr(self, k) <= 0:
                raise ValueError(f"expert.{k} must be > 0, got {getattr(self, k)}")
        if self.funnel < 0:
            raise ValueError(f"expert.funnel must be >= 0, got {self.funnel}")


def _rz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _wrap_half_pi(yaw: float) -> float:
    """The member of {yaw + k pi} in [-pi/2, pi/2) (a gripper footprint repeats every pi)."""
    return float((yaw + np.pi / 2) % np.pi - np.pi / 2)


def _rect_gap(across: np.ndarray, along: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """Distance [M] from points (across, along) [M] to the centred rectangle |x| <= hx, |y| <= hy (0 inside)."""
    return np.hypot(np.maximum(np.abs(across) - hx, 0.0), np.maximum(np.abs(along) - hy, 0.0))


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


class ScriptedExpert:
    """Per-env waypoint state machines; ``act(state) -> actions float32 [B, 7]``."""

    def __init__(self, task: StackTaskSpec, num_envs: int, action_scale: float = 0.5,
                 config: ExpertConfig | None = None):
        self.task, self.num_envs, self.scale = task, num_envs, action_scale
        self.cfg = config or ExpertConfig()
        self._pairs = [(task.cube_index(t), task.cube_index(u)) for t, u in task.stack_pairs]
        self.reset()

    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        """Restart the state machine of ``env_ids`` (all envs when None)."""
        ids = range(self.num_envs) if env_ids is None else env_ids
        if env_ids is None:
            self._pair = np.zeros(self.num_envs, np.int64)
            self._phase = np.zeros(self.num_envs, np.int64)
            self._timer = np.zeros(self.num_envs, np.int64)
            self._yaw = np.zeros(self.num_envs)
        for b in ids:
            self._pair[b] = self._phase[b] = self._timer[b] = 0

    def act(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """state: privileged_state() dict (cube_pos [B, N, 3], cube_quat [B, N, 4], ee_pos [B, 3],
        ee_quat [B, 4], fingers [B, 2]). Returns actions float32 [B, 7]."""
        out = np.zeros((self.num_envs, 7), np.float32)
        for b in range(self.num_envs):
            out[b] = self._act_one(b, {k: v[b] for k, v in state.items()})
        return out

    def _grasp_yaw(self, s: dict[str, np.ndarray], top: int) -> float:
        """Gripper yaw for grasping cube ``top``: a face-aligned yaw whose hand and fingers clear the other cubes.

        A parallel gripper can take a cube across either pair of faces, so there are two
        footprints (cube yaw + k pi/2, k even or odd); each is taken at its member nearest yaw 0
        (the home yaw), which keeps the wrist joint within +-pi/2 of home. The nearer one is
        used unless it comes within ``clearance`` of a cube and the other footprint is clearer
        (the 20 cm hand bar otherwise lands on the stack already built).
        """
        cube_yaw = float(np.arctan2(*_quat_to_matrix(s["cube_quat"][top])[[1, 0], 0]))
        yaws = [_wrap_half_pi(cube_yaw + k * np.pi / 2) for k in (0, 1)]
        yaws.sort(key=abs)
        gaps = [self._footprint_gap(s, top, y) for y in yaws]
        if gaps[0] >= self.cfg.clearance or gaps[0] >= gaps[1]:
            return yaws[0]
        return yaws[1]

    def _footprint_gap(self, s: dict[str, np.ndarray], top: int, yaw: float) -> float:
        """Smallest xy gap (m) between the gripper at the grasp of ``top`` with ``yaw`` and any other cube.

        The open fingers (down to the cube) meet every other cube; the hand bar, whose underside
        sits ``TCP_OFFSET - 2 hz`` above the TCP, meets only cubes whose top reaches that height.
        Cubes are disks of radius size / sqrt(2) (their circumscribed circle).
        """
        size = self.task.cube_size
        pos = s["cube_pos"]
        others = np.array([k for k in range(len(pos)) if k != top], np.int64)
        rel = pos[others, :2] - pos[top, :2]  # [M, 2]
        across = rel @ np.array([np.cos(yaw), np.sin(yaw)])  # hand x = Rz(yaw) R_down e_x
        along = rel @ np.array([np.sin(yaw), -np.cos(yaw)])  # hand y (finger axis) = Rz(yaw) R_down e_y
        hand_bottom = pos[top, 2] + scene.TCP_OFFSET - 2 * scene.HAND_HALF_EXTENTS[2]
        tall = pos[others, 2] + size / 2 > hand_bottom
        finger_reach = scene.FINGER_RANGE[1] + scene.FINGER_OFFSET + scene.FINGER_HALF_EXTENTS[1]
        gap = _rect_gap(across, along, scene.FINGER_HALF_EXTENTS[0], finger_reach)
        gap_hand = np.where(tall, _rect_gap(across, along, *scene.HAND_HALF_EXTENTS[:2]), np.inf)
        return float(np.min(np.minimum(gap, gap_hand), initial=np.inf) - size / np.sqrt(2))

    def _act_one(self, b: int, s: dict[str, np.ndarray]) -> np.ndarray:
        if self._pair[b] >= len(self._pairs):  # all pairs done: stay open and still
            return np.array([0, 0, 0, 0, 0, 0, 1.0], np.float32)
        top, bottom = self._pairs[self._pair[b]]
        ee_rot = _quat_to_matrix(s["ee_quat"])
        if self._phase[b] == ABOVE and self._timer[b] == 0:
            self._yaw[b] = self._grasp_yaw(s, top)
        target, grip, tol, step = self._waypoint(b, s, top, bottom)
        err = target - s["ee_pos"]
        rot_err = matrix_to_axis_angle(_rz(self._yaw[b]) @ R_DOWN @ ee_rot.T)  # axis_angle(R_wp R_ee^T)
        n_rot = np.linalg.norm(rot_err)
        aligned = self._phase[b] != ABOVE or n_rot < self.cfg.rot_tol  # descend only once turned to the grasp yaw
        near = np.linalg.norm(err) < tol
        if self.cfg.funnel > 0 and self._phase[b] in (ABOVE, CARRY):  # descend from anywhere inside the funnel
            near = np.linalg.norm(err[:2]) < self.cfg.funnel
        self._advance(b, s, top, near and aligned)
        gain = self.cfg.tracking_gain
        dpos = gain * err * min(1.0, step / max(gain * np.linalg.norm(err), 1e-9))
        drot = gain * rot_err * min(1.0, self.cfg.max_rot_step / max(gain * n_rot, 1e-9))
        return np.concatenate([dpos / self.scale, drot / self.scale, [grip]]).astype(np.float32)

    def _waypoint(self, b: int, s: dict, top: int, bottom: int) -> tuple[np.ndarray, float, float, float]:
        """(target TCP position [3], gripper command, reach tolerance, max step) of the current phase."""
        c, size = self.cfg, self.task.cube_size
        p_top, p_bot = s["cube_pos"][top], s["cube_pos"][bottom]
        stack_z = p_bot[2] + size + c.place_clearance
        ph = self._phase[b]
        table = {
            ABOVE: (p_top + [0, 0, c.hover], 1.0, c.reach_tol, c.max_step),
            DESCEND: (p_top + [0, 0, -0.003], 1.0, 0.004, c.slow_step),
            CLOSE: (s["ee_pos"], -1.0, 1.0, c.slow_step),
            LIFT: (np.array([*s["ee_pos"][:2], size / 2 + c.lift]), -1.0, 0.01, c.max_step),
            CARRY: (np.array([*p_bot[:2], stack_z + c.hover]), -1.0, c.reach_tol, c.max_step),
            PLACE: (np.array([*p_bot[:2], stack_z]), -1.0, 0.004, c.slow_step),
            OPEN: (s["ee_pos"], 1.0, 1.0, c.slow_step),
            RETREAT: (np.array([*s["ee_pos"][:2], stack_z + c.hover]), 1.0, 0.01, c.max_step),
        }
        target, grip, tol, step = table[ph]
        target = np.asarray(target, float)
        if c.funnel > 0 and ph in (DESCEND, PLACE):  # lower in proportion to the xy error left
            xy_err = np.linalg.norm(target[:2] - s["ee_pos"][:2])
            target = target + [0, 0, c.hover * min(1.0, xy_err / c.funnel)]
        return target, grip, tol, step

    def _advance(self, b: int, s: dict, top: int, reached: bool) -> None:
        ph = self._phase[b]
        self._timer[b] += 1
        waits = {CLOSE: self.cfg.close_steps, OPEN: self.cfg.open_steps}
        if ph in waits:
            reached = self._timer[b] >= waits[ph]
        if ph == CARRY and s["cube_pos"][top][2] < self.task.cube_size:  # dropped: retry the pair
            self._phase[b], self._timer[b] = ABOVE, 0
            return
        if reached:
            self._phase[b], self._timer[b] = ph + 1, 0
            if self._phase[b] > RETREAT:
                self._pair[b] += 1
                self._phase[b] = ABOVE


# Per backend. Isaac Lab's IK-Rel task drives the arm with joint PD gains 400 / 80 (a 0.2 s
# time constant): within one 50 ms control step the arm covers about a fifth of the commanded
# motion, so its expert commands larger steps with gain on the error (it still converges without
# overshoot at ~3 mm / step near a waypoint). The funnel (descents from within 3 cm, yaw within
# 0.15 rad) makes the actions a smooth function of the hand's offset instead of waiting for 4-6 mm
# a cloned policy cannot see, and keeps the expert working under more action noise
# (docs/RESULTS.md#isaac-lab-configs).
EXPERT_CONFIGS = {
    "mujoco": ExpertConfig(),
    "isaaclab": ExpertConfig(max_step=0.06, slow_step=0.03, max_rot_step=0.4, tracking_gain=3.0, funnel=0.03,
                             rot_tol=0.15),
}


def _expert_task(task_id: str) -> tuple[StackTaskSpec, str, float]:
    """(the task as the expert sees it, backend, the env's default arm action scale)."""
    from rlinf_isaac.envs.registry import get_task

    backend = get_task(task_id).backend
    if backend == "mujoco":
        from rlinf_isaac.envs.mujoco.stack_env import MujocoStackConfig
        from rlinf_isaac.tasks.stack_cube import TASK_SPECS

        return TASK_SPECS[task_id], backend, MujocoStackConfig.action_scale
    if backend == "isaaclab":
        from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS

        task = ISAACLAB_STACK_TASKS[task_id]
        return task.expert_spec, backend, task.arm_action_scale
    raise ValueError(f"task {task_id!r} is a {backend} task; the scripted expert knows mujoco and isaaclab tasks")


def run_expert(task_id: str, episodes: int, num_envs: int = 8, seed: int = 0, record: str | None = None,
               video: str | None = None, action_noise: float = 0.0, num_workers: int = 0,
               video_size: int = 256, video_envs: int = 16, funnel: float | None = None,
               **env_kwargs: Any) -> dict[str, Any]:
    """Roll the expert for ``episodes`` episodes (one action per chunk); returns the summary dict.

    ``video``: write the rollout video there (the training videos' renderer, logging/video.py:
    table and wrist views of the first ``video_envs`` envs at ``video_size`` px, every step).

    ``num_workers`` > 0 steps the envs in that many simulator processes (the env contract is
    the same; the recording stays in this process, one dataset).

    ``funnel``: the expert's ``ExpertConfig.funnel`` (None: its backend's setting).

    ``action_noise`` > 0 executes ``a + N(0, action_noise^2)`` on the arm dims (a[:6], in
    action units) while recording the clean ``a`` (DART-style noise injection): the dataset
    then shows how the expert recovers from the small errors a cloned policy makes.
    """
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    from rlinf_isaac.envs.registry import make_env

    spec, backend, default_scale = _expert_task(task_id)
    if backend == "mujoco":
        env_kwargs.setdefault("render_every_step", False)
    if backend == "isaaclab":  # the recorder never reads ended episodes' last observations
        env_kwargs.setdefault("capture_final_obs", False)
    env = make_env(task_id, num_envs=num_envs, seed=seed, num_workers=num_workers, **env_kwargs)
    # the env's scale (simulator processes expose no cfg to read it from): as passed, else its default
    scale = env_kwargs.get("action_scale") or default_scale
    config = EXPERT_CONFIGS[backend] if funnel is None else replace(EXPERT_CONFIGS[backend], funnel=funnel)
    expert = ScriptedExpert(spec, num_envs, scale, config)
    recorder = _Recorder(record, num_envs) if record else None
    clip = None
    if video:
        from rlinf_isaac.logging.video import VideoRecorder

        env.set_video(video_size, video_envs)
        clip = VideoRecorder(frame_size=video_size, max_envs=video_envs, fps=20, preview_max_side=None)
    try:
        results = _rollout(env, expert, episodes, recorder, clip, action_noise, seed)
        if clip is not None and clip.num_frames:
            clip.finish().save(video)
    finally:
        env.close()
        if recorder is not None:
            recorder.close()
        if clip is not None:
            clip.close()
    return {"task": task_id, "episodes": len(results), "success_rate": float(np.mean(results)) if results else 0.0}


def _rollout(env, expert: ScriptedExpert, episodes: int, recorder, video, action_noise: float = 0.0,
             seed: int = 0) -> list[bool]:
    noise_rng = np.random.default_rng([seed, 0xDA27])
    obs = env.reset()
    results: list[bool] = []
    started = env.num_envs  # episodes begun so far (each env's first episode counts)
    active = np.ones(env.num_envs, bool)
    while len(results) < episodes:
        act = expert.act(env.privileged_state())
        act[~active] = 0.0
        executed = act.copy()
        if action_noise > 0:
            executed[:, :6] += noise_rng.normal(0.0, action_noise, (act.shape[0], 6))
            executed[~active] = 0.0
        res = env.chunk_step(torch.from_numpy(executed)[:, None])  # [B, 7] -> [B, C=1, 7]
        if video is not None:
            video.add_chunk(res.info["video_frames"], res.reward, res.info["success"], res.info["valid"],
                            res.obs["task_descriptions"])
        if recorder is not None:
            recorder.step(obs, act, res.reward[:, 0].numpy(), active)
        done = res.info["episode"].done.numpy()
        for b in np.flatnonzero(done & active):
            ok = bool(res.info["episode"].success_once[b])
            results.append(ok)
            if recorder is not None:
                recorder.end(b, obs["task_descriptions"][b], ok)
            expert.reset([b])
            if started >= episodes:
                active[b] = False
            started += 1
        obs = res.obs
        if not active.any():
            break
    return results[:episodes]


class _Recorder:
    """Buffers per-env episodes and writes them with LeRobotDatasetWriter."""

    def __init__(self, root: str, num_envs: int):
        from rlinf_isaac.demos.dataset import LeRobotDatasetWriter

        self.writer = LeRobotDatasetWriter(root, fps=20, overwrite=False)
        self.buf: list[dict[str, list]] = [self._empty() for _ in range(num_envs)]
        try:
            from tqdm import tqdm

            self.bar = tqdm(desc="episodes", unit="ep", file=sys.stderr)
        except ImportError:  # pragma: no cover
            self.bar = None

    @staticmethod
    def _empty() -> dict[str, list]:
        return {k: [] for k in ("main", "wrist", "states", "actions", "rewards")}

    def step(self, obs, actions: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        for b in np.flatnonzero(active):
            e = self.buf[b]
            e["main"].append(obs["main_images"][b].numpy())
            e["wrist"].append(obs["wrist_images"][b].numpy())
            e["states"].append(obs["states"][b].numpy())
            e["actions"].append(actions[b])
            e["rewards"].append(rewards[b])

    def end(self, b: int, instruction: str, success: bool) -> None:
        e, self.buf[b] = self.buf[b], self._empty()
        self.writer.add_episode(
            main_images=np.stack(e["main"]), wrist_images=np.stack(e["wrist"]),
            states=np.stack(e["states"]).astype(np.float32), actions=np.stack(e["actions"]).astype(np.float32),
            instruction=instruction, success=success, rewards=np.asarray(e["rewards"], np.float32),
        )
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    from rlinf_isaac.envs.isaaclab.cli import add_simulator_arguments, simulator_kwargs

    p = argparse.ArgumentParser(prog="python -m rlinf_isaac.demos.expert", description=__doc__.split("\n")[0])
    p.add_argument("--task", help="registered task id (see --list)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=0,
                   help="simulator processes stepping the envs (0: in this process)")
    p.add_argument("--record", default=None, help="write a LeRobot dataset to this directory")
    p.add_argument("--video", default=None, help="write a rollout video (table and wrist cameras) to this path")
    p.add_argument("--video-size", type=int, default=256, help="px of each camera view in the video")
    p.add_argument("--video-envs", type=int, default=16, help="envs shown in the video (the first ones)")
    p.add_argument("--image-size", type=int, default=84)
    p.add_argument("--funnel", type=float, default=None,
                   help="m: start descents within this xy distance and lower with the xy error left "
                        "(ExpertConfig.funnel; default: the backend's, 0 = from the reached hover point)")
    p.add_argument("--action-noise", type=float, default=0.0,
                   help="std of Gaussian noise added to the executed arm actions (recorded actions stay clean)")
    p.add_argument("--max-episode-steps", type=int, default=None, help="episode length (default: the env's)")
    add_simulator_arguments(p)
    p.add_argument("--list", action="store_true", help="print registered task ids, one per line")
    args = p.parse_args(argv)
    from rlinf_isaac.envs.registry import get_task, list_tasks

    if args.list:
        print("\n".join(list_tasks()))
        return 0
    if args.task is None:
        p.error("--task is required (or --list)")
    entry = get_task(args.task)
    if entry.backend not in EXPERT_CONFIGS:
        p.error(f"--task {args.task!r} is a {entry.backend} task; the scripted expert knows {sorted(EXPERT_CONFIGS)} tasks")
    if args.episodes < 1 or args.num_envs < 1:
        p.error(f"--episodes and --num-envs must be >= 1, got {args.episodes}, {args.num_envs}")
    num_envs = min(args.num_envs, args.episodes)
    if not 0 <= args.num_workers <= num_envs:
        p.error(f"--num-workers must be in [0, {num_envs}] (the envs are split over the processes), "
                f"got {args.num_workers}")
    env_kwargs: dict[str, Any] = {"image_size": args.image_size}
    if args.max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = args.max_episode_steps
    env_kwargs.update(simulator_kwargs(args, entry.backend))
    summary = run_expert(args.task, args.episodes, num_envs, args.seed, args.record, args.video,
                         action_noise=args.action_noise, num_workers=args.num_workers, funnel=args.funnel,
                         video_size=args.video_size, video_envs=args.video_envs, **env_kwargs)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
