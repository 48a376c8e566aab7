"""Env throughput: env-steps/s of the MuJoCo stack env with both 84x84 cameras.

Modes: (a) observation rendered once per chunk of ``--chunk`` steps, as the RL pipeline
does; (b) every step (``render_every_step``: the table camera at the policy's size; what
videos cost, both cameras at ``video_cfg.frame_size``, is ``video_cost.py``'s). Runs 1 process and, with
``--workers N``, a SubprocVectorEnv of N processes. Prints a table, then one JSON line.

    python benchmarks/env_throughput.py --num-envs 8 --workers 2 --chunks 6
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("LP_NUM_THREADS", "1")

import torch  # noqa: E402

from rlinf_isaac.envs.registry import make_env  # noqa: E402


def measure(task: str, num_envs: int, workers: int, chunk: int, chunks: int, every_step: bool, size: int) -> float:
    """env-steps/s over ``chunks`` chunk steps of random actions (after one warm-up chunk)."""
    env = make_env(task, num_envs=num_envs, num_workers=workers, image_size=size, render_every_step=every_step)
    try:
        env.reset(seed=0)
        gen = torch.Generator().manual_seed(0)
        acts = lambda: (torch.rand(num_envs, chunk, 7, generator=gen) - 0.5) * 0.1  # noqa: E731
        env.chunk_step(acts())
        t0 = time.perf_counter()
        for _ in range(chunks):
            env.chunk_step(acts())
        dt = time.perf_counter() - t0
    finally:
        env.close()
    return num_envs * chunk * chunks / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="N processes for the multi-process row")
    p.add_argument("--chunk", type=int, default=16)
    p.add_argument("--chunks", type=int, default=6)
    p.add_argument("--image-size", type=int, default=84)
    args = p.parse_args()
    rows = []
    for workers in sorted({0, args.workers}):
        for every in (False, True):
            sps = measure(args.task, args.num_envs, workers, args.chunk, args.chunks, every, args.image_size)
            rows.append({"processes": max(workers, 1), "render": "every step" if every else f"per {args.chunk}-step chunk",
                         "env_steps_per_s": round(sps, 1)})
    print(f"{'processes':>9} | {'render':<20} | env-steps/s   (B={args.num_envs}, {args.image_size}x{args.image_size}, "
          f"cpus={os.cpu_count()})")
    for r in rows:
        print(f"{r['processes']:>9} | {r['render']:<20} | {r['env_steps_per_s']:>10.1f}")
    print(json.dumps({"task": args.task, "num_envs": args.num_envs, "image_size": args.image_size,
                      "chunk": args.chunk, "cpus": os.cpu_count(), "results": rows}))


if __name__ == "__main__":
    main()
