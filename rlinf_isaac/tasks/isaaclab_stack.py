"""Rewarded Isaac Lab stack-cube tasks (Franka, IK-Rel, visuomotor), for Isaac Lab 2.3 and 3.0.

Isaac Lab's stack tasks define no reward (``rewards = None``): they are made for imitation
learning. This module adds ours, in Isaac Lab's own reward-manager form, so rewards are
computed *before* Isaac Lab auto-resets a finished env:

* ``sparse``: ``1`` on the step where the ``success`` termination term fires. Only that
  term counts: a cube falling off the table also terminates the episode
  (``cube_*_dropping``), and that is a failure, not a success.
* ``staged``: sparse plus a small per-step shaping from the ``subtask_terms`` observation
  group, each flag weighted: ``r_t = w_succ * success_t + sum_k w_k * subtask_k,t``
  with subtasks ``grasp_1`` (cube_2 held), ``stack_1`` (cube_2 on cube_1) and
  ``grasp_2`` (cube_3 held). Paid every step, so holding a stage pays more the longer it lasts.
* ``shaped``: potential-based shaping (Ng et al. 1999) of the sparse reward with the
  weighted subtask flags as potential ``Phi = sum_k v_k * subtask_k``:
  ``r_t = w_succ * success_t + Phi(s_t) - Phi(s_t-1)``, with ``Phi`` of an episode's start
  taken as 0 (a constant per start state, so no action changes it). An episode's return is
  ``w_succ * success + Phi(s_T)``; with the potentials summing to less than ``w_succ`` (checked),
  any success beats any failure, and the optimal policy is the sparse one's.

Importing this module is cheap (no Isaac Lab, no simulator): the task ids are registered
with a factory that imports :mod:`rlinf_isaac.envs.isaaclab` only when an env is built.
The reward functions are duck-typed over the Isaac Lab env (``termination_manager``,
``observation_manager``), so they also run against the test fake on Python 3.11.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rlinf_isaac.envs.mujoco.task_spec import CubeSpec, StackTaskSpec
from rlinf_isaac.envs.registry import register_task

__all__ = [
    "STACK_INSTRUCTION",
    "IsaacLabStackTask",
    "StackRewardCfg",
    "ISAACLAB_STACK_TASKS",
    "stack_success_reward",
    "stack_subtask_reward",
    "stack_progress_reward",
    "add_stack_rewards",
    "make_isaaclab_stack_env",
]

STACK_INSTRUCTION = "Stack the red cube on the blue cube, then the green cube on the red cube."

REWARD_TYPES = ("sparse", "staged", "shaped")


@dataclass(frozen=True)
class StackRewardCfg:
    """Reward of the rewarded stack tasks (see module docstring for the formula).

    reward_type: "sparse" (success only), "staged" (success + per-step subtask rewards) or
        "shaped" (success + the change of the subtask potential).
    success_term: termination term that means success (never the ``*_dropping`` ones).
    subtask_group: observation group holding the subtask flags.
    subtask_weights: per-step weight of each subtask flag (staged only).
    potential_weights: each subtask flag's share of the potential (shaped only): red held 1/6,
        red on blue 1/3, green held 1/6, on the scale of the MuJoCo tasks' shaped potential
        (one third per stacking pair, half of it for the grasp).
    """

    reward_type: str = "sparse"
    success_weight: float = 1.0
    success_term: str = "success"
    subtask_group: str = "subtask_terms"
    subtask_weights: dict[str, float] = field(
        default_factory=lambda: {"grasp_1": 0.002, "stack_1": 0.005, "grasp_2": 0.002}
    )
    potential_weights: dict[str, float] = field(
        default_factory=lambda: {"grasp_1": 1 / 6, "stack_1": 1 / 3, "grasp_2": 1 / 6}
    )

    def __post_init__(self):
        if self.reward_type not in REWARD_TYPES:
            raise ValueError(
                f"env.reward_type must be one of {list(REWARD_TYPES)}, got {self.reward_type!r}"
            )
        if not (math.isfinite(self.success_weight) and self.success_weight > 0):
            raise ValueError(
                f"reward.success_weight must be a finite number > 0, got {self.success_weight}"
            )
        if "dropping" in self.success_term:
            raise ValueError(
                f"reward.success_term must be the success term, got {self.success_term!r}: "
                "a dropped cube ends the episode but is not a success"
            )
        for key in ("subtask_weights", "potential_weights"):
            for name, w in getattr(self, key).items():
                if not math.isfinite(w):
                    raise ValueError(f"reward.{key}.{name} must be finite, got {w}")
        reach = sum(max(0.0, w) for w in self.potential_weights.values())
        if self.reward_type == "shaped" and reach >= self.success_weight:
            raise ValueError(
                f"reward.potential_weights sum to {reach:g} (positive ones), not below success_weight "
                f"{self.success_weight:g}: a failed episode could then return more than a success"
            )


@dataclass(frozen=True)
class IsaacLabStackTask:
    """One of our Isaac Lab stack tasks.

    task_id: the id registered in our task registry.
    isaaclab_ids: Isaac Lab gym ids of the same task, newest first; the first one that the
        installed Isaac Lab registers is used (2.3 and 3.0 name the task differently).
    Expected spec of the Isaac Lab env cfg (checked against the real package by the
    Python 3.12 lane): camera terms, state terms, action terms, decimation, sim dt.
    """

    task_id: str
    isaaclab_ids: tuple[str, ...]
    instruction: str = STACK_INSTRUCTION
    cosmos: bool = False
    camera_terms: tuple[str, str] = ("table_cam", "wrist_cam")  # -> main_images, wrist_images
    state_terms: tuple[str, str, str] = ("eef_pos", "eef_quat", "gripper_pos")
    subtask_terms: tuple[str, ...] = ("grasp_1", "stack_1", "grasp_2")
    action_terms: tuple[str, str] = ("arm_action", "gripper_action")
    success_term: str = "success"
    failure_terms: tuple[str, ...] = ("cube_1_dropping", "cube_2_dropping", "cube_3_dropping")
    arm_action_scale: float = 0.5
    decimation: int = 5
    sim_dt: float = 0.01  # 100 Hz physics, 20 Hz control
    cube_edge: float = 0.0468  # m: the stack height Isaac Lab's cubes_stacked checks

    @property
    def expert_spec(self) -> StackTaskSpec:
        """The task as the scripted expert sees it: cube_1 (blue), cube_2 (red), cube_3 (green);
        red goes on blue, then green on red."""
        cubes = (CubeSpec("cube_1", (0.1, 0.25, 0.9, 1.0)), CubeSpec("cube_2", (0.9, 0.12, 0.1, 1.0)),
                 CubeSpec("cube_3", (0.15, 0.8, 0.2, 1.0)))
        return StackTaskSpec(task_id=self.task_id, instruction=self.instruction, cubes=cubes,
                             stack_pairs=(("cube_2", "cube_1"), ("cube_3", "cube_2")), cube_size=self.cube_edge)


_V23 = "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor{}-v0"
_V30 = "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor{}"


_REWARDED = "Isaac-Stack-Cube-Franka-IK-Rel-Visuomotor{}-Rewarded-v0"


def _task_pair(suffix: str, cosmos: bool) -> list[IsaacLabStackTask]:
    ids = (_V30.format(suffix), _V23.format(suffix))
    # Both Isaac Lab spellings, plus a "-Rewarded-v0" alias, are registered: each resolves
    # to whichever spelling the installed version has.
    ours = (*reversed(ids), _REWARDED.format(suffix))
    return [IsaacLabStackTask(task_id=t, isaaclab_ids=ids, cosmos=cosmos) for t in ours]


ISAACLAB_STACK_TASKS: dict[str, IsaacLabStackTask] = {
    t.task_id: t for t in _task_pair("", False) + _task_pair("-Cosmos", True)
}


# --------------------------------------------------------------------------------------
# Reward terms (Isaac Lab reward-manager functions: ``func(env, **params) -> float [N]``)
# --------------------------------------------------------------------------------------


def stack_success_reward(env: Any, term: str = "success"):
    """1.0 where the success termination term fired this step, float [N].

    The termination manager is computed before the reward manager inside
    ``ManagerBasedRLEnv.step``, so this reads the current step's value.
    """
    return env.termination_manager.get_term(term).float()


def stack_subtask_reward(env: Any, group: str = "subtask_terms", weights: dict | None = None):
    """Weighted sum of the subtask flags, float [N]: ``sum_k w_k * flag_k``."""
    flags = env.observation_manager.compute_group(group)
    total = None
    for name, w in (weights or {}).items():
        value = flags[name].reshape(flags[name].shape[0], -1)[:, 0].float() * w  # [N]
        total = value if total is None else total + value
    if total is None:
        raise ValueError(f"reward.subtask_weights is empty; subtask terms in {group!r}: {list(flags)}")
    return total


def stack_progress_reward(env: Any, group: str = "subtask_terms", weights: dict | None = None):
    """The change of the subtask potential this step, float [N]: ``Phi(s_t) - Phi(s_t-1)``.

    ``Phi = sum_k w_k * flag_k`` (:func:`stack_subtask_reward`). The previous potential is kept
    on the env (``env._rlinf_stack_potential``); on an episode's first step
    (``episode_length_buf == 1``: Isaac Lab counts the step before computing rewards) it is
    taken as 0, so after an auto-reset nothing carries over from the episode before.
    """
    phi = stack_subtask_reward(env, group, weights)  # a new tensor: kept as is for the next step
    prev = getattr(env, "_rlinf_stack_potential", None)
    if prev is None:
        prev = phi.new_zeros(phi.shape)
    env._rlinf_stack_potential = phi
    return phi - prev.masked_fill(env.episode_length_buf.to(phi.device) <= 1, 0.0)


def add_stack_rewards(env_cfg: Any, reward: StackRewardCfg, term_cfg_cls: Any, step_dt: float) -> Any:
    """Install our reward terms into an Isaac Lab env cfg (``env_cfg.rewards``) and return it.

    term_cfg_cls: Isaac Lab's ``RewardTermCfg`` (passed in so this module never imports
    Isaac Lab). Isaac Lab's reward manager multiplies each term by ``weight * step_dt``;
    the weights are divided by ``step_dt`` so a success step is worth exactly
    ``success_weight``: ``r = f(env) * (w / dt) * dt = w * f(env)``.
    """
    if step_dt <= 0:
        raise ValueError(f"step_dt must be > 0 (sim.dt * decimation), got {step_dt}")
    terms = {
        "success": term_cfg_cls(
            func=stack_success_reward,
            weight=reward.success_weight / step_dt,
            params={"term": reward.success_term},
        )
    }
    if reward.reward_type == "staged":
        terms["subtasks"] = term_cfg_cls(
            func=stack_subtask_reward,
            weight=1.0 / step_dt,
            params={"group": reward.subtask_group, "weights": dict(reward.subtask_weights)},
        )
    if reward.reward_type == "shaped":
        terms["progress"] = term_cfg_cls(
            func=stack_progress_reward,
            weight=1.0 / step_dt,
            params={"group": reward.subtask_group, "weights": dict(reward.potential_weights)},
        )
    env_cfg.rewards = terms  # Isaac Lab's reward manager accepts a dict of term cfgs
    return env_cfg


# --------------------------------------------------------------------------------------
# Registration (cheap: the factory imports the adapter lazily)
# --------------------------------------------------------------------------------------


def make_isaaclab_stack_env(task_id: str, **kwargs: Any):
    """Build the Isaac Lab env of ``task_id`` (see :class:`rlinf_isaac.envs.isaaclab.IsaacLabEnvCfg`)."""
    from rlinf_isaac.envs.isaaclab import IsaacLabEnv, IsaacLabEnvCfg

    return IsaacLabEnv(IsaacLabEnvCfg.from_factory_kwargs(task_id, **kwargs))


def _register(task: IsaacLabStackTask) -> None:
    def factory(**kwargs: Any):
        return make_isaaclab_stack_env(task.task_id, **kwargs)

    kind = "Cosmos variant, " if task.cosmos else ""
    register_task(task.task_id, "isaaclab", f"Isaac Lab Franka stack 3 cubes ({kind}IK-Rel, table+wrist cams)")(
        factory
    )


for _task in ISAACLAB_STACK_TASKS.values():
    _register(_task)
