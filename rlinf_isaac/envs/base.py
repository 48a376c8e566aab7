"""The env contract shared by every simulator backend (MuJoCo, Isaac Lab).

An env is *batched*: one object owns ``B`` independent environments and speaks torch
tensors. The policy acts in chunks of ``C`` actions, so the stepping call is
``chunk_step(actions[B, C, A])``; it executes the ``C`` actions one after the other and
returns per-step rewards and done flags.

Dimension names (fixed across the project): B envs, C actions per chunk, A action dim (7),
D state dim (8), H, W image size.

Episode semantics inside a chunk
--------------------------------
* When env ``b`` terminates or truncates at sub-step ``c``, the remaining actions of its
  chunk are *not* executed: sub-steps ``c+1 .. C-1`` have reward 0, ``terminated`` and
  ``truncated`` False, ``success`` False and ``valid`` False. So each episode ends on
  exactly one flagged sub-step.
* With ``auto_reset=True`` a finished env is reset at the end of the chunk; the
  observation returned for it is the first observation of its new episode, and
  ``info["final_obs"]`` holds the last observation of the finished episode (needed to
  bootstrap a value at truncation). With ``auto_reset=False`` a finished env stays frozen
  (every later sub-step is invalid) until ``reset`` is called.

Video views
-----------
Videos for people are rendered apart from the policy's observations. ``set_video(S, N)``
asks the env for the views of its first N envs at S px (``env.*.video_cfg.frame_size``,
independent of ``image_size``); from the next chunk on, ``info["video_frames"]`` holds them
(until ``set_video(None)``). The observations stay exactly what they are without it.
Backends that cannot render at another size upscale their observation images instead
(:func:`upscaled_video_frames`, one frame per chunk; the Isaac Lab adapter does).

Reset states
------------
Every episode starts from a *reset state* named by an integer id. The same id gives a
bit-identical initial state (robot, objects, rendered images): GRPO forms its groups by
resetting G envs to one id. Ids are drawn from the env's seeded generator unless the
caller pins them.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, Sequence, TypedDict

import torch

__all__ = [
    "ACTION_DIM",
    "STATE_DIM",
    "Obs",
    "ChunkStepResult",
    "BatchedEnv",
    "EnvSpec",
    "EpisodeStats",
    "validate_actions",
    "upscaled_video_frames",
    "as_env_ids",
    "as_reset_state_ids",
    "wilson_interval",
]

ACTION_DIM = 7  # delta xyz (3) + delta axis-angle (3) + gripper (1, negative closes)
STATE_DIM = 8  # ee position (3) + ee axis-angle (3) + two finger positions (2)


class Obs(TypedDict):
    """One batched observation.

    main_images: uint8 [B, H, W, 3], table camera.
    wrist_images: uint8 [B, H, W, 3], wrist camera.
    states: float32 [B, D], D = 8 (ee pos, ee axis-angle, finger positions). The axis-angle's
        reference is the backend's: Isaac Lab's absolute ee orientation (as RLinf's GR00T
        checkpoints expect), MuJoCo's relative to gripper-down (continuous there; see
        envs/mujoco/stack_env.py). A checkpoint's state statistics belong to one backend.
    task_descriptions: list[str] of length B, the instruction of each env.
    """

    main_images: torch.Tensor
    wrist_images: torch.Tensor
    states: torch.Tensor
    task_descriptions: list[str]


@dataclass
class EpisodeStats:
    """Statistics of the episodes that *ended* during one chunk step.

    done: bool [B], True where an episode ended in this chunk.
    success_once: bool [B], the ended episode was successful at some step.
    returns: float32 [B], undiscounted sum of rewards of the ended episode.
    episode_len: int64 [B], number of env steps of the ended episode.
    Rows where ``done`` is False hold zeros and carry no meaning.
    """

    done: torch.Tensor
    success_once: torch.Tensor
    returns: torch.Tensor
    episode_len: torch.Tensor


@dataclass
class ChunkStepResult:
    """What ``chunk_step`` returns.

    obs: observation after the chunk (reset observation for auto-reset envs).
    reward: float32 [B, C].
    terminated: bool [B, C], episode ended by the task (success, failure).
    truncated: bool [B, C], episode ended by the step limit.
    info: dict with at least
        ``success`` bool [B, C], task success at each sub-step;
        ``valid`` bool [B, C], the sub-step was executed (False after a done);
        ``episode`` :class:`EpisodeStats` of the episodes that ended in this chunk;
        ``final_obs`` :class:`Obs` or None, last observation of the ended episodes
            (full batch; rows where ``episode.done`` is False repeat ``obs``);
        ``reset_state_ids`` int64 [B], the reset-state id of each env's current episode;
        ``diverged`` bool [B], the physics diverged and the env was reset.
    and, only while a video is asked for (:meth:`BatchedEnv.set_video`),
        ``video_frames`` ``{"main_images": uint8 [N, F, S, S', 3], "wrist_images": ...}``:
            the table and wrist views of the first N envs at S px (S' = S for square
            cameras), F = C frames (after each sub-step; envs whose episode ended earlier in
            the chunk repeat their last frame) or F = 1 (after the chunk, upscaled
            observations of a backend that cannot render at S).
    """

    obs: Obs
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        # Allows ``obs, reward, terminated, truncated, info = env.chunk_step(a)``.
        return iter((self.obs, self.reward, self.terminated, self.truncated, self.info))


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a batched env, known before the first reset."""

    task_id: str
    num_envs: int
    image_size: tuple[int, int]  # (H, W)
    instruction: str
    max_episode_steps: int
    control_hz: float
    action_dim: int = ACTION_DIM
    state_dim: int = STATE_DIM


class BatchedEnv(abc.ABC):
    """Abstract batched env. Backends implement ``reset``, ``chunk_step``, ``close``."""

    spec: EnvSpec

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    @abc.abstractmethod
    def reset(
        self,
        seed: int | None = None,
        reset_state_ids: Sequence[int] | torch.Tensor | None = None,
        env_ids: Sequence[int] | torch.Tensor | None = None,
    ) -> Obs:
        """Reset envs and return the batched observation of *all* B envs.

        seed: reseeds the env's generator (reset-state ids drawn afterwards depend only
            on it). None keeps the current generator state.
        reset_state_ids: int [N] ids to start from, one per reset env; None draws them.
        env_ids: int [N] which envs to reset; None resets all B.
        """

    @abc.abstractmethod
    def chunk_step(self, actions: torch.Tensor) -> ChunkStepResult:
        """Execute a chunk of actions float [B, C, A] and return a :class:`ChunkStepResult`."""

    _chunk_in_flight = False  # a chunk_step_async awaits its chunk_step_wait
    video_request: tuple[int, int] | None = None  # (S, N) of the last set_video, None: no video

    def set_video(self, frame_size: int | None, num_envs: int | None = None) -> None:
        """Ask for video views (``info["video_frames"]``, see :class:`ChunkStepResult`) of the
        first ``num_envs`` envs (None: all) at ``frame_size`` px from the next chunk on, or
        stop (``frame_size=None``). Never changes the observations. Call it between chunks.
        Backends override it to start their renderer (calling this one first)."""
        if frame_size is None:
            self.video_request = None
            return
        if int(frame_size) < 8:
            raise ValueError(f"set_video: frame_size must be >= 8 px or None, got {frame_size}")
        n = self.num_envs if num_envs is None else max(0, min(int(num_envs), self.num_envs))
        self.video_request = (int(frame_size), n)

    def _chunk_sent(self) -> None:
        """Mark a chunk as started (every ``chunk_step_async`` calls it before starting one)."""
        if self._chunk_in_flight:
            raise RuntimeError("chunk_step_async called twice without chunk_step_wait")
        self._chunk_in_flight = True

    def _chunk_collected(self) -> None:
        """Mark the started chunk as collected (every ``chunk_step_wait`` calls it first)."""
        if not self._chunk_in_flight:
            raise RuntimeError("chunk_step_wait called without a pending chunk_step_async")
        self._chunk_in_flight = False

    def chunk_step_async(self, actions: torch.Tensor) -> None:
        """Start executing a chunk float [B, C, A]; :meth:`chunk_step_wait` returns its result.

        Backends whose simulation runs in other processes override the pair (and
        :meth:`chunk_step_ready`) so that the caller can do other work (step another pipeline
        stage, wait for inference) while the chunk runs. The default runs it synchronously
        inside ``chunk_step_wait``.
        """
        self._chunk_sent()
        self._pending_actions = actions

    def chunk_step_ready(self) -> bool:
        """Whether :meth:`chunk_step_wait` would find the pending chunk simulated already.

        The default (synchronous) form simulates inside ``chunk_step_wait``, in the caller's
        process, so the caller may run it whenever it likes: True.
        """
        return True

    def chunk_step_wait(self) -> ChunkStepResult:
        """The result of the chunk started by :meth:`chunk_step_async`."""
        self._chunk_collected()
        actions, self._pending_actions = self._pending_actions, None
        return self.chunk_step(actions)

    def describe(self) -> str:
        """One line on what simulates these envs (printed at start-up)."""
        return f"{type(self).__name__}: {self.spec.task_id}, {self.num_envs} envs"

    def close(self) -> None:  # noqa: B027  (optional hook: nothing to release by default)
        """Release simulator resources (processes, renderers). Idempotent."""

    def __enter__(self) -> "BatchedEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def validate_actions(actions: Any, num_envs: int, action_dim: int = ACTION_DIM) -> torch.Tensor:
    """Check an action chunk before it reaches the physics; return it as float32 on CPU.

    actions: float [B, C, A]. Raises ValueError/TypeError naming what is wrong.
    """
    if not isinstance(actions, torch.Tensor):
        raise TypeError(
            f"actions must be a torch.Tensor of shape [B={num_envs}, C, A={action_dim}], "
            f"got {type(actions).__name__}"
        )
    if actions.ndim != 3 or actions.shape[0] != num_envs or actions.shape[2] != action_dim:
        raise ValueError(
            f"actions must have shape [B={num_envs}, C, A={action_dim}] "
            f"(envs, actions per chunk, action dim), got {tuple(actions.shape)}"
        )
    if actions.shape[1] < 1:
        raise ValueError("actions must hold at least one action per chunk (C >= 1), got C = 0")
    if not actions.is_floating_point():
        raise TypeError(f"actions must be a floating-point tensor, got dtype {actions.dtype}")
    bad = ~torch.isfinite(actions)
    if bool(bad.any()):
        b, c, a = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"actions contain NaN or inf ({int(bad.sum())} entries; first at env {b}, "
            f"chunk step {c}, dim {a}): refusing to send them to the simulator"
        )
    return actions.detach().to("cpu", torch.float32)


def upscaled_video_frames(obs: Obs, frame_size: int, num_envs: int | None = None) -> dict[str, torch.Tensor]:
    """Video views of a backend that renders only at the policy's size: the observation images
    of the first ``num_envs`` envs resized (bilinear) to height ``frame_size``, one frame:
    ``{"main_images": uint8 [N, 1, S, S', 3], "wrist_images": ...}`` (S' keeps the aspect)."""
    import torch.nn.functional as F

    out = {}
    for key in ("main_images", "wrist_images"):
        x = obs[key] if num_envs is None else obs[key][:num_envs]
        h, w = x.shape[1:3]
        size = (int(frame_size), max(1, round(frame_size * w / h)))
        y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", align_corners=False)
        out[key] = y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)[:, None].contiguous()
    return out


def as_env_ids(env_ids: Sequence[int] | torch.Tensor | None, num_envs: int) -> torch.Tensor:
    """Normalise ``env_ids`` to an int64 tensor [N] of unique, in-range env indices."""
    if env_ids is None:
        return torch.arange(num_envs)
    ids = torch.as_tensor(env_ids, dtype=torch.int64).reshape(-1)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_envs):
        raise ValueError(f"env_ids must lie in [0, {num_envs - 1}], got {ids.tolist()}")
    if ids.unique().numel() != ids.numel():
        raise ValueError(f"env_ids must be unique, got {ids.tolist()}")
    return ids


def as_reset_state_ids(
    reset_state_ids: Sequence[int] | torch.Tensor | None, num: int
) -> torch.Tensor | None:
    """Normalise pinned reset-state ids to int64 [num] (None stays None)."""
    if reset_state_ids is None:
        return None
    ids = torch.as_tensor(reset_state_ids, dtype=torch.int64).reshape(-1)
    if ids.numel() != num:
        raise ValueError(
            f"reset_state_ids must hold one id per reset env ({num}), got {ids.numel()}"
        )
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"reset_state_ids must be >= 0, got {ids.tolist()}")
    return ids


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (used by eval reports)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
