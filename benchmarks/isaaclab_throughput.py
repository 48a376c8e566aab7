"""Isaac Lab env throughput: env-steps/s of Isaac Lab's stack task through our adapter.

The env worker's view: the simulator in its own process (``IsaacLabEnv``), chunks of
``--chunk`` actions per request, both cameras rendered at every env step (Isaac Lab computes
the observation group each step), observations handed over through a pipe or by CUDA IPC.
For each ``--num-envs`` x ``--image-size`` it builds the env, runs one warm-up chunk and
times ``--chunks`` chunks of zero actions (episodes end at ``--max-episode-steps`` and are
reset inside the chunks, as in training). Resets, timed apart: ``reset_all_s``, one reset of
every env (a rollout starts with one), and ``reset_1pct_s``, a reset of 1% of the envs (the
scripted expert's episodes end a few at a time). GPU memory: what the GPU had in use after the
warm-up minus before the build (``nvidia-smi``), i.e. the simulator process plus this
process's copies of the observations.

    python benchmarks/isaaclab_throughput.py --num-envs 256 1024 --image-size 84 --device cuda:0 \
        --transport cuda_ipc pipe --python PY

``--python``: the simulator's interpreter (Isaac Lab's; default this one). Prints a table and a
final JSON line.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import torch
from bench_report import emit  # this folder is on sys.path when run as a script

from rlinf_isaac.envs.isaaclab import IsaacLabEnv, IsaacLabEnvCfg

TASK = "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor"


def gpu_used_mib() -> float | None:
    """Memory in use on GPU 0 (MiB) as nvidia-smi reports it; None without nvidia-smi."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=30)
        return float(out.stdout.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def measure(num_envs: int, size: int, args: argparse.Namespace, transport: str, seeding: str = "batched") -> dict:
    """One env: build, reset, a warm-up chunk, then ``args.chunks`` timed chunks."""
    cfg = IsaacLabEnvCfg(task_id=TASK, num_envs=num_envs, image_size=(size, size), device=args.device,
                         max_episode_steps=args.max_episode_steps, python=args.python, stack=args.stack,
                         obs_transport=transport, reset_seeding=seeding, startup_timeout_s=1800, step_timeout_s=600)
    before = gpu_used_mib()
    t0 = time.perf_counter()
    env = IsaacLabEnv(cfg)
    try:
        build_s = time.perf_counter() - t0
        env.reset(seed=0)
        acts = torch.zeros(num_envs, args.chunk, 7)
        res = env.chunk_step(acts)  # warm-up: first rendering, first resets
        after = gpu_used_mib()
        t0 = time.perf_counter()
        for _ in range(args.chunks):
            res = env.chunk_step(acts)
        dt = time.perf_counter() - t0
        reset_all = time_resets(env, num_envs, args.resets)
        reset_few = time_resets(env, max(1, num_envs // 100), args.resets)
        where = str(res.obs["main_images"].device)
        line = env.describe()
    finally:
        env.close()
    steps = num_envs * args.chunk * args.chunks
    return {"num_envs": num_envs, "image_size": size, "transport": transport, "reset_seeding": seeding, "obs_device": where,
            "env_steps_per_s": round(steps / dt, 1), "s_per_env_step": round(dt / (args.chunk * args.chunks), 5),
            "reset_all_s": round(reset_all, 4), "reset_1pct_s": round(reset_few, 4),
            "build_s": round(build_s, 1),
            "gpu_mem_gib": None if before is None or after is None else round((after - before) / 1024, 2),
            "simulator": line}


def time_resets(env: IsaacLabEnv, count: int, repeats: int) -> float:
    """Mean seconds of ``env.reset`` of the first ``count`` envs (fresh reset-state ids each time)."""
    ids = list(range(count))
    env.reset(env_ids=ids)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        env.reset(env_ids=ids)
    return (time.perf_counter() - t0) / repeats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, nargs="+", default=[16])
    p.add_argument("--image-size", type=int, nargs="+", default=[84])
    p.add_argument("--transport", nargs="+", default=["cuda_ipc"], choices=["cuda_ipc", "pipe"])
    p.add_argument("--chunk", type=int, default=4, help="actions per request (the config's num_action_chunks)")
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--resets", type=int, default=3, help="timed resets of each kind")
    p.add_argument("--reset-seeding", nargs="+", default=["batched"], choices=["batched", "per_env"],
                   help="how reset events are seeded (env.extra.reset_seeding); per_env: one call per env")
    p.add_argument("--max-episode-steps", type=int, default=320)
    p.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    p.add_argument("--stack", default="newton", choices=["auto", "newton", "isaac_sim"])
    p.add_argument("--python", default=None, help="the simulator's interpreter (default: this one)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = []
    for size in args.image_size:
        for n in args.num_envs:
            for transport in args.transport:
                for seeding in args.reset_seeding:
                    try:
                        rows.append(measure(n, size, args, transport, seeding))
                    except Exception as e:  # e.g. out of memory at the largest N: keep the other rows
                        rows.append({"num_envs": n, "image_size": size, "transport": transport,
                                     "reset_seeding": seeding, "error": str(e).splitlines()[0][:300]})
                    print("row:", rows[-1], flush=True)
    print(f"{'envs':>6} {'image':>6} {'transport':>9} {'seeding':>8} {'env-steps/s':>12} {'s/step':>8} {'reset s':>8} "
          f"{'1% reset s':>10} {'GPU GiB':>8} {'build s':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['num_envs']:>6} {r['image_size']:>6} {r['transport']:>9} {r['reset_seeding']:>8}  failed: {r['error']}")
            continue
        print(f"{r['num_envs']:>6} {r['image_size']:>6} {r['transport']:>9} {r['reset_seeding']:>8} {r['env_steps_per_s']:>12.1f} "
              f"{r['s_per_env_step']:>8.4f} {r['reset_all_s']:>8.3f} {r['reset_1pct_s']:>10.3f} "
              f"{str(r['gpu_mem_gib']):>8} {r['build_s']:>8.1f}")
    return emit({"task": TASK, "device": args.device, "chunk": args.chunk, "chunks": args.chunks, "rows": rows},
                args.json)


if __name__ == "__main__":
    raise SystemExit(main())
