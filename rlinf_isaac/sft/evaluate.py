"""Quick success rate of SFT checkpoints, straight on the env (no Ray, no runner).

    python -m rlinf_isaac.sft.evaluate CKPT [CKPT ...] --task TASK [--episodes 100] [--device cuda]

Each checkpoint runs the deterministic policy (``mode="eval"``) on ``--episodes`` episodes
from reset states drawn with ``--seed`` (the same states for every checkpoint) and prints
one JSON line ``{"checkpoint", "task", "episodes", "successes", "success_rate", "wilson95"}``.
Meant for choosing among SFT checkpoints; reported results use ``eval_embodiment.sh``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["evaluate_checkpoint", "main"]


def evaluate_checkpoint(ckpt: str | Path, task: str, episodes: int, num_envs: int = 8, seed: int = 1000,
                        device: str = "cpu", num_action_chunks: int = 16,
                        max_episode_steps: int | None = None, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``device``: the policy's; ``env_kwargs`` go to the env factory (e.g. an Isaac Lab task's
    simulation ``device``, ``stack`` and ``python``)."""
    env_kwargs = dict(env_kwargs or {})
    import torch

    from rlinf_isaac.envs.base import wilson_interval
    from rlinf_isaac.envs.registry import make_env
    from rlinf_isaac.models.gr00t.policy import GR00TPolicy, GR00TPolicyConfig

    policy = GR00TPolicy.from_pretrained(ckpt, GR00TPolicyConfig(add_value_head=False,
                                                                 num_action_chunks=num_action_chunks), device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    successes = finished = 0
    if max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = max_episode_steps
    with make_env(task, num_envs=min(num_envs, episodes), auto_reset=True, **env_kwargs) as env:
        obs = env.reset(seed=seed)
        while finished < episodes:
            with torch.no_grad():
                actions, _ = policy.predict(obs, mode="eval", generator=gen)
            obs, _, _, _, info = env.chunk_step(actions.cpu())
            ep = info["episode"]
            done = ep.done.numpy()
            take = done.nonzero()[0][: episodes - finished]  # never count past the asked number
            successes += int(ep.success_once.numpy()[take].sum())
            finished += len(take)
    low, high = wilson_interval(successes, finished)
    return {"checkpoint": str(ckpt), "task": task, "episodes": finished, "successes": successes,
            "success_rate": successes / finished, "wilson95": [low, high]}


def main(argv: Sequence[str] | None = None) -> int:
    from rlinf_isaac.envs.isaaclab.cli import add_simulator_arguments, simulator_kwargs
    from rlinf_isaac.envs.registry import get_task

    p = argparse.ArgumentParser(prog="python -m rlinf_isaac.sft.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", help="local checkpoint directories (config.json + model.safetensors)")
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--device", default="cpu", help="the policy's device")
    p.add_argument("--num-action-chunks", type=int, default=16, help="actions executed per policy call")
    p.add_argument("--max-episode-steps", type=int, default=None, help="default: the task's own limit")
    p.add_argument("--json", default=None, help="also append the JSON lines to this file")
    add_simulator_arguments(p)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    if a.episodes < 1 or a.num_envs < 1:
        p.error(f"--episodes and --num-envs must be >= 1, got {a.episodes}, {a.num_envs}")
    for ckpt in a.checkpoints:
        if not (Path(ckpt) / "config.json").is_file():
            p.error(f"{ckpt!r} is not a checkpoint directory (no config.json); pass e.g. OUT/sft/final")
    env_kwargs = simulator_kwargs(a, get_task(a.task).backend)
    for ckpt in a.checkpoints:
        line = json.dumps(evaluate_checkpoint(ckpt, a.task, a.episodes, a.num_envs, a.seed, a.device,
                                              a.num_action_chunks, a.max_episode_steps, env_kwargs))
        print(line, flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
