"""Isaac Lab backend: the Franka stack-cube visuomotor tasks behind our batched env contract.

The env worker holds an :class:`IsaacLabEnv`; the simulator (Isaac Sim + Isaac Lab 2.3, or
Isaac Lab 3.0 with or without Isaac Sim) runs in a separate process started by
:class:`~rlinf_isaac.envs.isaaclab.process.SimulatorProcess`, which builds the env with
``builder`` (default :func:`rlinf_isaac.envs.isaaclab.sim.launch.build_isaaclab_env`) and
steps it through :class:`~rlinf_isaac.envs.isaaclab.sim.stepper.ChunkStepper`. One request per
chunk crosses the process boundary, sent by ``chunk_step_async`` and collected by
``chunk_step_wait``, so the env worker's pipeline stages simulate concurrently. This process
never imports Isaac Lab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from rlinf_isaac.envs.base import (
    ACTION_DIM,
    BatchedEnv,
    ChunkStepResult,
    EnvSpec,
    Obs,
    as_env_ids,
    as_reset_state_ids,
    upscaled_video_frames,
    validate_actions,
)
from rlinf_isaac.envs.isaaclab.process import SimulatorError, SimulatorProcess
from rlinf_isaac.envs.isaaclab.wire import from_wire, to_wire

__all__ = ["IsaacLabEnvCfg", "IsaacLabEnv", "SimulatorError", "DEFAULT_BUILDER"]

DEFAULT_BUILDER = "rlinf_isaac.envs.isaaclab.sim.launch:build_isaaclab_env"
# Factory kwargs of the generic env config that mean nothing for Isaac Lab.
_IGNORED_FACTORY_KWARGS = ("num_workers", "render_backend", "video_cfg")


@dataclass
class IsaacLabEnvCfg:
    """Settings of one Isaac Lab env group (one simulator process, ``num_envs`` envs).

    task_id: one of our registered Isaac Lab task ids (rlinf_isaac/tasks/isaaclab_stack.py).
    image_size: (H, W) of both cameras; the camera cfgs are set to it, images are uint8.
    max_episode_steps: episode length in control steps (20 Hz: 600 steps = Isaac Lab's 30 s).
    reward_type: "sparse" (success term only), "staged" (+ per-step subtask rewards) or
        "shaped" (+ the change of a subtask potential; rlinf_isaac/tasks/isaaclab_stack.py).
    action_scale: arm action scale in Isaac Lab's IK-Rel action (None keeps Isaac Lab's 0.5).
    device: simulation device in the simulator process ("cuda:0", or "cpu" for 3.0 kit-less).
    python: interpreter of the simulator process (``env.<group>.isaaclab.python``; None: this
        one), e.g. Isaac Lab's python.sh.
    stack: ``env.<group>.isaaclab.stack``: ``isaac_sim`` (Kit, PhysX, RTX cameras), ``newton``
        (kit-less: MuJoCo-Warp physics, Warp cameras) or ``auto`` (Isaac Sim when installed).
    obs_transport: "cuda_ipc": observations of a simulator on this process's GPU arrive as CUDA
        IPC handles and stay on the GPU (needs the same torch build in both processes, else the
        pipe is used and the start-up line says why); "pipe": as numpy arrays on the CPU.
    reset_seeding: "batched" (envs given one reset-state id in one reset start identically; a
        few reset-event calls per reset) or "per_env" (an id is one start state whatever is reset
        with it; one call per env): see :mod:`rlinf_isaac.envs.isaaclab.sim.stepper`.
    capture_final_obs: return ended episodes' last observations in ``info["final_obs"]`` (what
        bootstrapping at truncation reads). False leaves it None, which saves one render of every
        camera on each step where an env ends; it is still captured while a video is asked for
        (the video shows the ended episode's last view) and without auto-reset.
    builder / builder_kwargs: how the simulator process builds the env (tests swap it).
    startup_timeout_s: app launch + env creation (+ shader / Warp compilation) limit.
    step_timeout_s: limit of one reset or one chunk; past it the simulator is killed.
    """

    task_id: str
    num_envs: int
    image_size: tuple[int, int] = (84, 84)
    max_episode_steps: int = 600
    reward_type: str = "sparse"
    action_scale: float | None = None
    seed: int = 0
    auto_reset: bool = True
    device: str = "cuda:0"
    headless: bool = True
    enable_cameras: bool = True
    python: str | None = None
    stack: str = "auto"
    obs_transport: str = "pipe"
    reset_seeding: str = "batched"
    capture_final_obs: bool = True
    builder: str = DEFAULT_BUILDER
    builder_kwargs: dict[str, Any] = field(default_factory=dict)
    startup_timeout_s: float = 900.0
    step_timeout_s: float = 300.0
    log_path: str | None = None
    log_tail_lines: int = 40
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. CUDA_VISIBLE_DEVICES

    def __post_init__(self):
        if isinstance(self.image_size, int):
            self.image_size = (self.image_size, self.image_size)
        self.image_size = tuple(int(s) for s in self.image_size)
        _check(self.num_envs >= 1, "env.num_envs", self.num_envs, "an integer >= 1")
        _check(len(self.image_size) == 2 and min(self.image_size) >= 16, "env.image_size",
               self.image_size, "an int or (H, W) with H, W >= 16")
        _check(self.max_episode_steps >= 1, "env.max_episode_steps", self.max_episode_steps, "an integer >= 1")
        _check(self.reward_type in ("sparse", "staged", "shaped"), "env.reward_type", self.reward_type,
               "'sparse', 'staged' or 'shaped'")
        _check(self.action_scale is None or (math.isfinite(self.action_scale) and self.action_scale > 0),
               "env.action_scale", self.action_scale, "None or a finite number > 0")
        for key in ("startup_timeout_s", "step_timeout_s"):
            value = getattr(self, key)
            _check(value > 0, f"env.extra.{key}", value, "a number of seconds > 0")
        _check(":" in self.builder, "env.extra.builder", self.builder, "'package.module:function'")
        _check(self.stack in ("auto", "newton", "isaac_sim"), "env.isaaclab.stack", self.stack,
               "'auto', 'newton' or 'isaac_sim'")
        _check(self.obs_transport in ("pipe", "cuda_ipc"), "env.extra.obs_transport", self.obs_transport,
               "'pipe' or 'cuda_ipc'")
        _check(self.reset_seeding in ("batched", "per_env"), "env.extra.reset_seeding", self.reset_seeding,
               "'batched' or 'per_env'")

    @classmethod
    def from_factory_kwargs(cls, task_id: str, **kwargs: Any) -> "IsaacLabEnvCfg":
        """Build from the task registry's factory kwargs (generic env config + ``extra``)."""
        for key in _IGNORED_FACTORY_KWARGS:
            kwargs.pop(key, None)
        kwargs.update(kwargs.pop("extra", None) or {})
        valid = {f for f in cls.__dataclass_fields__ if f != "task_id"}
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            raise TypeError(
                f"unknown Isaac Lab env argument(s) {unknown} for task {task_id!r}; valid: {sorted(valid)}"
            )
        return cls(task_id=task_id, **kwargs)

    def builder_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the builder (the default one, or a test's)."""
        base = {
            "task_id": self.task_id,
            "num_envs": self.num_envs,
            "image_size": list(self.image_size),
            "max_episode_steps": self.max_episode_steps,
            "reward_type": self.reward_type,
            "action_scale": self.action_scale,
            "seed": self.seed,
            "device": self.device,
        }
        if self.builder == DEFAULT_BUILDER:
            base.update(headless=self.headless, enable_cameras=self.enable_cameras, stack=self.stack)
        return {**base, **self.builder_kwargs}


def _usable_transport(asked: str) -> str:
    """CUDA IPC only where this process can open handles (a CUDA build with a GPU)."""
    return asked if asked != "cuda_ipc" or torch.cuda.is_available() else "pipe"


def _check(ok: bool, key: str, value: Any, valid: str) -> None:
    if not ok:
        raise ValueError(f"{key} = {value!r} is invalid; expected {valid}")


class IsaacLabEnv(BatchedEnv):
    """Batched Isaac Lab env; the simulator lives in a child process (see module docstring)."""

    def __init__(self, cfg: IsaacLabEnvCfg):
        from rlinf_isaac.tasks.isaaclab_stack import ISAACLAB_STACK_TASKS

        task = ISAACLAB_STACK_TASKS.get(cfg.task_id)
        if task is None:
            raise KeyError(
                f"env.task_id = {cfg.task_id!r} is not an Isaac Lab task; valid: {sorted(ISAACLAB_STACK_TASKS)}"
            )
        self.cfg, self.task, self.sim = cfg, task, None
        stepper = {
            "instruction": task.instruction,
            "image_size": list(cfg.image_size),
            "max_episode_steps": cfg.max_episode_steps,
            "auto_reset": cfg.auto_reset,
            "seed": cfg.seed,
            "reset_seeding": cfg.reset_seeding,
            "success_term": task.success_term,
            "camera_terms": list(task.camera_terms),
            "state_terms": list(task.state_terms),
        }
        prelaunch = None
        if cfg.builder == DEFAULT_BUILDER:
            prelaunch = {"headless": cfg.headless, "enable_cameras": cfg.enable_cameras, "device": cfg.device}
        self.sim = SimulatorProcess(
            cfg.builder, cfg.builder_arguments(), stepper, prelaunch_app=prelaunch,
            python=cfg.python, obs_transport=_usable_transport(cfg.obs_transport),
            startup_timeout_s=cfg.startup_timeout_s, log_path=cfg.log_path,
            log_tail_lines=cfg.log_tail_lines, extra_env=cfg.extra_env,
        )
        self.info = dict(self.sim.info)  # resolved Isaac Lab id, version, quat order, step_dt
        step_dt = float(self.info.get("step_dt", 0.05))
        self.spec = EnvSpec(
            task_id=cfg.task_id,
            num_envs=cfg.num_envs,
            image_size=cfg.image_size,
            instruction=task.instruction,
            max_episode_steps=cfg.max_episode_steps,
            control_hz=1.0 / step_dt,
        )
        if int(self.info["num_envs"]) != cfg.num_envs:
            self.close()
            raise SimulatorError(f"simulator built {self.info['num_envs']} envs, asked for {cfg.num_envs}")

    def privileged_state(self) -> dict:
        """Simulator truth for scripted experts (``ChunkStepper.privileged_state``): cube_pos
        [B, N, 3], cube_quat [B, N, 4] (w, x, y, z), ee_pos [B, 3], ee_quat [B, 4], fingers [B, 2]."""
        return self.sim.call("privileged", None, self.cfg.step_timeout_s)

    def describe(self) -> str:
        """The simulator process's own line: Isaac Lab version, task id, stack, envs and device,
        and how observations reach this process."""
        line = self.info.get("description") or super().describe()
        return f"{line}; {self.info['obs_transport']}" if self.info.get("obs_transport") else line

    def reset(
        self,
        seed: int | None = None,
        reset_state_ids: Sequence[int] | torch.Tensor | None = None,
        env_ids: Sequence[int] | torch.Tensor | None = None,
    ) -> Obs:
        if self._chunk_in_flight:
            raise RuntimeError("reset called while a chunk is pending: call chunk_step_wait first")
        ids = as_env_ids(env_ids, self.num_envs)
        pinned = as_reset_state_ids(reset_state_ids, ids.numel())
        payload = to_wire({"seed": seed, "reset_state_ids": pinned, "env_ids": ids})
        return from_wire(self.sim.call("reset", payload, self.cfg.step_timeout_s))

    def chunk_step(self, actions: torch.Tensor) -> ChunkStepResult:
        self.chunk_step_async(actions)
        return self.chunk_step_wait()

    def chunk_step_async(self, actions: torch.Tensor) -> None:
        """Send the chunk float [B, C, A] to the simulator process and return at once."""
        acts = validate_actions(actions, self.num_envs, ACTION_DIM)  # [B, C, A]
        self._chunk_sent()
        final_obs = self.cfg.capture_final_obs or self.video_request is not None
        self.sim.send("chunk_step", to_wire({"actions": acts, "final_obs": final_obs}))

    def chunk_step_ready(self) -> bool:
        """True when the simulator process has answered the pending chunk."""
        return self._chunk_in_flight and self.sim.ready()

    def chunk_step_wait(self) -> ChunkStepResult:
        """The simulator's result of the pending chunk (at most ``step_timeout_s`` away).

        While a video is asked for (``set_video``), ``info["video_frames"]`` holds the chunk's
        last observation images upscaled to the video size: the cameras render only at
        ``image_size`` (one frame per chunk). An env whose episode ended in the chunk shows its
        episode's last view, not the next episode's first."""
        self._chunk_collected()
        res = ChunkStepResult(**from_wire(self.sim.receive("chunk_step", self.cfg.step_timeout_s)))
        if self.video_request is not None:
            shown = res.info.get("final_obs") or res.obs  # final_obs: full batch, ended rows terminal
            frames = upscaled_video_frames(shown, *self.video_request)
            res.info["video_frames"] = {k: v.cpu() for k, v in frames.items()}
        return res

    @property
    def alive(self) -> bool:
        """True while the simulator process runs."""
        return self.sim is not None and self.sim.alive

    def close(self) -> None:
        if getattr(self, "sim", None) is not None:
            self.sim.close()
            self.sim = None

    def __del__(self):  # last resort: never leave a simulator behind
        try:
            self.close()
        except Exception:
            pass
