"""What recording a training video costs: one rollout of the CPU quickstart's env worker (32 envs
in 2 pipeline stages, tiny GR00T, 16-action chunks) with and without ``record_video``.

    PYTHONPATH=. python benchmarks/video_cost.py [--chunks 2] [--repeats 3] [--frame-size 256]

Prints seconds per chunk step (both stages) for each setting, and the parts of the video's
cost measured alone: simulating 16 envs for one chunk with and without video views, and
composing + encoding one chunk's 16 frames. The video shows stage 0's first
``video_cfg.max_envs`` (16) envs, views rendered at ``--frame-size`` px after every env step.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chunks", type=int, default=2, help="chunk steps per timed rollout")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frame-size", type=int, default=256)
    args = p.parse_args()

    from rlinf_isaac.cluster.handles import LocalHandle
    from rlinf_isaac.config import load_config
    from rlinf_isaac.logging.video import VideoRecorder
    from rlinf_isaac.workers import EnvWorker, RolloutWorker

    torch.set_num_threads(2)
    cfg = load_config("cpu_quickstart", [f"env.train.video_cfg.frame_size={args.frame_size}"])
    env_cfg, s = cfg.env.train, cfg.rollout.pipeline_stage_num
    n = env_cfg.total_num_envs
    rw = RolloutWorker(cfg.actor.model, cfg.algorithm, rank=0, seed=3)
    worker = EnvWorker(env_cfg, rank=0, num_envs=n, num_stages=s, total_envs=n)
    out: dict[str, float] = {}
    try:
        for rec in (False, True, False, True):  # alternate: the 2-core machine's load drifts
            times = []
            for r in range(args.repeats + 1):  # the first one warms up
                t0 = time.perf_counter()
                res, _ = worker.rollout([LocalHandle(rw)] * s, num_chunk_steps=args.chunks, reset=True, reset_seed=r,
                                        record_video=rec)
                times.append((time.perf_counter() - t0) / args.chunks)
                rw.release_features()
            key = "chunk_s_video" if rec else "chunk_s_plain"
            out[key] = min(out.get(key, float("inf")), min(times[1:]))
        out["video_frames"], out["video_hw"] = res.video.num_frames, list(res.video.frame_hw)
        out["video_mp4_bytes_per_chunk"] = len(res.video.mp4) / args.chunks

        env = worker.stages[0]  # the parts, alone: simulation with and without views, composing + encoding
        a = torch.zeros(env.num_envs, cfg.actor.model.num_action_chunks, 7)
        for size in (None, args.frame_size):
            env.set_video(size, env_cfg.video_cfg.max_envs)
            env.chunk_step(a)
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                r = env.chunk_step(a)
            out["sim_16_envs_s_video" if size else "sim_16_envs_s_plain"] = (time.perf_counter() - t0) / args.repeats
        env.set_video(None)
        v = env_cfg.video_cfg
        recorder = VideoRecorder(v.frame_size, v.max_envs, v.fps)
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            recorder.add_chunk(r.info["video_frames"], r.reward, r.info["success"], r.info["valid"],
                               r.obs["task_descriptions"])
        recorder.finish()
        out["compose_encode_s_per_chunk"] = (time.perf_counter() - t0) / args.repeats
    finally:
        worker.close()
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
