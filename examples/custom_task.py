"""Example: add a new MuJoCo task and run it through the env contract (and the trainer).

What it shows
    A new stack-cube variant, "green on red" with a wider spawn box and its own
    instruction, defined as data (``StackTaskSpec``) and registered with
    ``register_task``. ``make_env`` builds it like any built-in task; the scripted expert
    (or random action chunks) steps it, and the script prints what the env contract
    returns: observation shapes/dtypes, the instruction, rewards [B, C], done flags and
    the ``info`` keys, then the success rate.

How long (2-core CPU)
    ``python examples/custom_task.py``                    ~6 s (2 envs, expert, 1 episode each)
    ``python examples/custom_task.py --random-chunks 3``  ~5 s
    ``python examples/custom_task.py train ...``          ~45 s for 1 global step (mostly Ray start-up)

Pointing a training config at the task
    Ray env workers are separate processes: they find the task only if the module that
    registers it is imported *in them*. The built-in tasks are imported by
    ``rlinf_isaac.tasks`` (tasks/__init__.py). For a task of your own, either

    1. put the spec in a module under ``tasks/`` and import it from ``tasks/__init__.py``
       (then ``bash run_embodiment.sh cpu_quickstart env.train.task_id=<id> env.eval.task_id=<id>``
       just works), or
    2. without touching the package, launch training through this script::

           python examples/custom_task.py train cpu_quickstart runner.max_steps=2

       ``train`` registers the task in this process, then starts Ray with a worker setup
       hook (Ray's ``worker_process_setup_hook``) that registers it in every Ray worker
       process too, sets ``env.train.task_id`` / ``env.eval.task_id`` and runs the
       normal TrainRunner (the rest of the arguments are the usual config name and
       Hydra overrides).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Sequence

import numpy as np
import torch

from rlinf_isaac.envs.mujoco.task_spec import CubeSpec, SpawnSpec, StackTaskSpec
from rlinf_isaac.envs.registry import get_task, list_tasks, make_env, register_task

__all__ = ["GREEN_ON_RED", "register_green_on_red", "make_green_on_red_env", "describe_step", "run_demo"]

RED = CubeSpec("cube_red", (0.9, 0.12, 0.1, 1.0))
GREEN = CubeSpec("cube_green", (0.15, 0.8, 0.2, 1.0))
GREEN_ON_RED = StackTaskSpec(
    task_id="MuJoCo-Stack-Green-On-Red-Franka-IK-Rel-Visuomotor-v0",
    instruction="Stack the green cube on the red cube.",
    cubes=(RED, GREEN),
    stack_pairs=(("cube_green", "cube_red"),),  # (top, bottom)
    spawn=SpawnSpec(x_range=(0.42, 0.62), y_range=(-0.15, 0.15), yaw_range=(-0.8, 0.8), min_distance=0.12),
)
DEFAULT_MAX_STEPS = 250  # the expert needs ~65 steps (20 Hz) for one pair


def make_green_on_red_env(num_envs: int, max_episode_steps: int | None = None, num_workers: int = 0,
                          **kwargs: Any):
    """Factory with the signature the env workers call: ``(num_envs, image_size=..., seed=..., ...)``."""
    if num_workers:
        raise ValueError(
            f"env.train.num_workers={num_workers}: this example task runs in-process only (0); "
            "simulator subprocesses import only the tasks of rlinf_isaac.tasks")
    from rlinf_isaac.envs.mujoco.stack_env import MujocoStackConfig, MujocoStackEnv  # heavy: lazy

    cfg = MujocoStackConfig(max_episode_steps=max_episode_steps or DEFAULT_MAX_STEPS, **kwargs)
    return MujocoStackEnv(GREEN_ON_RED, num_envs, cfg)


def register_green_on_red() -> str:
    """Register the task (idempotent: safe in every process); returns its id."""
    tid = GREEN_ON_RED.task_id
    if tid not in list_tasks():
        register_task(tid, backend="mujoco", description="Franka stacks green on red (example task)")(
            make_green_on_red_env)
    return tid


def describe_step(obs: dict, result) -> list[str]:
    """Human-readable lines about one reset observation and one ``chunk_step`` result."""
    lines = [f"  obs[{k}]: {tuple(v.shape)} {v.dtype}" for k, v in obs.items() if torch.is_tensor(v)]
    lines.append(f"  obs[task_descriptions][0]: {obs['task_descriptions'][0]!r}")
    lines.append(f"  reward {tuple(result.reward.shape)} terminated {tuple(result.terminated.shape)} "
                 f"truncated {tuple(result.truncated.shape)}  (B envs, C actions per chunk)")
    lines.append(f"  info keys: {sorted(result.info)}; success {tuple(result.info['success'].shape)}")
    return lines


def _expert_episode(env, expert, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Run one expert episode in every env (C = 1 action per chunk); returns (success [B], length [B])."""
    B = env.num_envs
    success, length, done = np.zeros(B, bool), np.zeros(B, np.int64), np.zeros(B, bool)
    for _ in range(max_steps):
        act = torch.from_numpy(expert.act(env.privileged_state()))[:, None]  # [B, A] -> [B, C=1, A]
        act[torch.from_numpy(done)] = 0.0
        res = env.chunk_step(act)
        ep = res.info["episode"]
        new = ep.done.numpy() & ~done
        success[new], length[new] = ep.success_once.numpy()[new], ep.episode_len.numpy()[new]
        done |= new
        if done.all():
            break
    return success, length


def run_demo(num_envs: int = 2, image_size: int = 64, random_chunks: int = 0, chunk: int = 4,
             seed: int = 0) -> dict[str, Any]:
    """Build the task, print its contract outputs, roll the expert (or random chunks).

    Returns {"task_id", "obs_shapes", "reward_shape", "success" (list[bool] or None), "seconds"}.
    """
    t0, tid = time.time(), register_green_on_red()
    print(f"registered {tid!r} ({get_task(tid).description}); mujoco tasks: {len(list_tasks('mujoco'))}")
    env = make_env(tid, num_envs=num_envs, image_size=image_size, seed=seed, auto_reset=False)
    try:
        obs = env.reset(seed=seed)
        gen = torch.Generator().manual_seed(seed)
        act = torch.rand(num_envs, chunk, 7, generator=gen) * 2 - 1  # [B, C, A] uniform in [-1, 1]
        res = env.chunk_step(act)
        print(f"first chunk (random actions, C={chunk}):", *describe_step(obs, res), sep="\n")
        out = {"task_id": tid, "obs_shapes": {k: tuple(v.shape) for k, v in obs.items() if torch.is_tensor(v)},
               "reward_shape": tuple(res.reward.shape), "success": None}
        for i in range(random_chunks - 1):
            res = env.chunk_step(torch.rand(num_envs, chunk, 7, generator=gen) * 2 - 1)
            print(f"random chunk {i + 2}: reward sum per env {res.reward.sum(1).tolist()}")
        if random_chunks == 0:
            from rlinf_isaac.demos.expert import ScriptedExpert

            env.reset(seed=seed + 1)
            success, length = _expert_episode(env, ScriptedExpert(GREEN_ON_RED, num_envs, env.cfg.action_scale),
                                              env.spec.max_episode_steps)
            print(f"scripted expert: success {success.tolist()} in {length.tolist()} steps")
            out["success"] = success.tolist()
    finally:
        env.close()
    out["seconds"] = round(time.time() - t0, 1)
    print(f"done in {out['seconds']} s")
    return out


def _setup_worker() -> None:
    """Ray worker_process_setup_hook: register the example task in each Ray worker process."""
    register_green_on_red()


def train(argv: Sequence[str]) -> int:
    """``train [CONFIG] [key=value ...]``: the normal trainer, with this task registered everywhere."""
    import os

    import ray
    from ray import cloudpickle

    from rlinf_isaac.runners.cli import main_train

    if __name__ != "__main__":  # imported under a name Ray workers cannot import: ship the code itself
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    tid = register_green_on_red()
    env = {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}  # as rlinf_isaac.cluster.worker_group.start_ray
    os.environ.update(env)
    ray.init(include_dashboard=False, log_to_driver=True,
             runtime_env={"env_vars": env, "worker_process_setup_hook": _setup_worker})
    argv = list(argv)
    head = argv[:1] if argv and "=" not in argv[0] else []
    try:
        return main_train(head + [f"env.train.task_id={tid}", f"env.eval.task_id={tid}"] + argv[len(head):])
    finally:
        ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return train(argv[1:])
    p = argparse.ArgumentParser(description="Register a new MuJoCo stack task and step it.")
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--random-chunks", type=int, default=0, help="step N random chunks instead of the expert")
    p.add_argument("--chunk", type=int, default=4, help="actions per random chunk (C)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    run_demo(a.num_envs, a.image_size, a.random_chunks, a.chunk, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
