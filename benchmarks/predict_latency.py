"""Latency of one rollout policy call, eager vs CUDA graph (``actor.model.cuda_graph``).

Times what a rollout worker does per call: ``RolloutWorker.predict`` = processor (uint8
images -> model inputs) + model + keeping the stored inputs on the device (train mode) +
moving actions, log-probs and values to the host, for observations as an env worker sends
them (CPU tensors, 84 px images).

    python benchmarks/predict_latency.py --device cuda --batch 32 64 128 --json out.json

Prints one line per (batch, mode, variant) and the graph's speedup; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from policy_throughput import make_obs  # noqa: E402  (this folder is on sys.path)

from rlinf_isaac.data.features import FeatureStore  # noqa: E402
from rlinf_isaac.models.gr00t.policy import GR00TPolicy, GR00TPolicyConfig  # noqa: E402
from rlinf_isaac.workers.rollout_worker import reply  # noqa: E402


def time_calls(policy: GR00TPolicy, obs: dict, mode: str, device: str, calls: int, warmup: int) -> list[float]:
    gen = torch.Generator(device=device).manual_seed(0)
    out, store = [], FeatureStore(0)
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        actions, extras = policy.predict(obs, mode=mode, generator=gen)
        reply(actions, extras, mode, store)  # what the rollout worker keeps and sends back
        if i >= warmup:
            out.append(time.perf_counter() - t0)
        if len(store) >= 16:  # one rollout's worth; the actors would fetch them now
            store.release()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(_ROOT / "checkpoints/gr00t_tiny_sft_stack2"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, nargs="+", default=[64])
    ap.add_argument("--modes", nargs="+", default=["train", "eval"])
    ap.add_argument("--chunks", type=int, default=4, help="num_action_chunks (C)")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    variants = [False, True] if args.device.startswith("cuda") else [False]
    rows = []
    for graph in variants:
        cfg = GR00TPolicyConfig(num_action_chunks=args.chunks, cuda_graph=graph)
        policy = GR00TPolicy.from_pretrained(args.checkpoint, cfg, device=args.device).eval()
        for batch in args.batch:
            obs = make_obs(batch, 84, "cpu")  # as an env worker sends them: host tensors, 84 px
            for mode in args.modes:
                ts = time_calls(policy, obs, mode, args.device, args.calls, args.warmup)
                row = {"variant": "cuda_graph" if graph else "eager", "batch": batch, "mode": mode,
                       "ms_median": round(1e3 * statistics.median(ts), 2), "ms_min": round(1e3 * min(ts), 2)}
                if graph:
                    row["graph_fallback"] = policy._graphs.disabled_reason
                rows.append(row)
                print(json.dumps(row), flush=True)
    speedups = {}
    for r in rows:
        if r["variant"] == "cuda_graph":
            base = next(e for e in rows if e["variant"] == "eager" and e["batch"] == r["batch"] and e["mode"] == r["mode"])
            speedups[f"{r['mode']}@{r['batch']}"] = round(base["ms_median"] / r["ms_median"], 2)
    report = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
              "torch": torch.__version__, "checkpoint": args.checkpoint, "chunks": args.chunks,
              "rows": rows, "graph_speedup": speedups}
    print(json.dumps({"graph_speedup": speedups}))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
