"""Quick success rate of SFT checkpoints, straight on the env (no Ray, no runner).

    python -m rlinf_isaac.sft.evaluate CKPT [CKPT ...] --task TASK [--episodes 100] [--device cuda]

Each checkpoint runs the deterministic policy (``mode="eval"``) on ``--episodes`` episodes
from reset states drawn with ``--seed`` (the same states for every checkpoint) and prints
one JSON line ``{"checkpoint", "task", "episodes", "successes", "success_rate", "wilson95"}``.
``--stages`` adds ``"stages": {"<top>_on_<bottom>": rate}``: the share of episodes in which each
stacking pair was built at some policy call (read from the simulator's scene), so partial
progress shows where success is still 0. Meant for choosing among SFT checkpoints; reported
results use ``eval_embodiment.sh``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["StageTracker", "evaluate_checkpoint", "main"]


class StageTracker:
    """Which stacking pairs each env's current episode has built, from the scene.

    A pair counts as built once the task's success rule holds for it
    (``StackTaskSpec.pairs_stacked``). A successful episode counts every pair (its last state
    may not be seen: the scene is read before each policy call)."""

    def __init__(self, spec: Any, num_envs: int):
        self.spec = spec
        self.names = [f"{top}_on_{bottom}" for top, bottom in spec.stack_pairs]
        self.built = np.zeros((num_envs, len(self.names)), bool)
        self.counts = np.zeros(len(self.names), np.int64)

    def see(self, cube_pos: np.ndarray) -> None:
        """cube_pos float [B, N, 3] (the spec's cube order)."""
        self.built |= self.spec.pairs_stacked(cube_pos)

    def end(self, done: np.ndarray, counted: np.ndarray, success: np.ndarray) -> None:
        """Episodes of envs ``done`` (int [M]) ended; those of ``counted`` (a subset) are tallied,
        with ``success`` bool [B]; the ended envs start over."""
        self.counts += (self.built[counted] | success[counted, None]).sum(0)
        self.built[done] = False

    def rates(self, episodes: int) -> dict[str, float]:
        return {name: float(c) / max(episodes, 1) for name, c in zip(self.names, self.counts)}


def evaluate_checkpoint(ckpt: str | Path, task: str, episodes: int, num_envs: int = 8, seed: int = 1000,
                        device: str = "cpu", num_action_chunks: int = 16,
                        max_episode_steps: int | None = None, env_kwargs: dict[str, Any] | None = None,
                        stages: bool = False) -> dict[str, Any]:
    """``device``: the policy's; ``env_kwargs`` go to the env factory (e.g. an Isaac Lab task's
    simulation ``device``, ``stack`` and ``python``); ``stages``: also report the stacking pairs
    built (:class:`StageTracker`)."""
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
    n = min(num_envs, episodes)
    tracker = StageTracker(_stack_spec(task), n) if stages else None
    with make_env(task, num_envs=n, auto_reset=True, **env_kwargs) as env:
        obs = env.reset(seed=seed)
        while finished < episodes:
            if tracker is not None:
                tracker.see(np.asarray(env.privileged_state()["cube_pos"]))
            with torch.no_grad():
                actions, _ = policy.predict(obs, mode="eval", generator=gen)
            obs, _, _, _, info = env.chunk_step(actions.cpu())
            ep = info["episode"]
            done = ep.done.numpy()
            take = done.nonzero()[0][: episodes - finished]  # never count past the asked number
            successes += int(ep.success_once.numpy()[take].sum())
            finished += len(take)
            if tracker is not None:
                tracker.end(done.nonzero()[0], take, ep.success_once.numpy().astype(bool))
    low, high = wilson_interval(successes, finished)
    out = {"checkpoint": str(ckpt), "task": task, "episodes": finished, "successes": successes,
           "success_rate": successes / finished, "wilson95": [low, high]}
    if tracker is not None:
        out["stages"] = tracker.rates(finished)
    return out


def _stack_spec(task: str) -> Any:
    """The stacking task spec of ``task`` (what the scripted expert knows), for ``stages``."""
    from rlinf_isaac.demos.expert import _expert_task

    try:
        return _expert_task(task)[0]
    except ValueError as exc:
        raise ValueError(f"--stages needs a cube-stacking task: {exc}") from None


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
    p.add_argument("--stages", action="store_true",
                   help="also report the share of episodes that built each stacking pair")
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
                                              a.num_action_chunks, a.max_episode_steps, env_kwargs,
                                              stages=a.stages))
        print(line, flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
