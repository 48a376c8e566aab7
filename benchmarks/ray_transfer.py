"""Tensors through Ray between two workers: Ray's pickling vs the raw-bytes path.

What the pipeline moves every global step, with the full-size policy's shapes (stored
backbone features: 612 tokens x 2048 x bf16 per decision, ~2.5 MB):

* ``reply``: one rollout reply, rollout worker -> env worker (features of B envs, plus
  action chunk, log-probs, values);
* ``shard``: one trajectory shard, env worker -> actor worker ([T, B, ...] features and the
  per-step fields), sent as a view of a wider trajectory, as ``split_envs`` makes it.

Each is sent by one Ray actor and fetched by another (which sums one element, so the bytes
are really read), in both modes of ``rlinf_isaac.cluster.tensor_transport``: ``pickle``
(Ray's default for torch tensors) and ``bytes`` (the pipeline's). Medians of ``--repeats``.

    python benchmarks/ray_transfer.py --envs 32 --steps 8 --repeats 3 [--json out.json]

Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench_report import emit  # this folder is on sys.path when run as a script

TOKENS, HIDDEN = 612, 2048  # GR00T N1.5 backbone features per observation (Eagle 2.5, 2 images)


def _payload(kind: str, envs: int, steps: int):
    import torch

    from rlinf_isaac.data.trajectory import Trajectory, split_envs

    g = torch.Generator().manual_seed(0)
    if kind == "reply":
        feats = torch.randn(envs, TOKENS, HIDDEN, generator=g).to(torch.bfloat16)
        return torch.randn(envs, 4, 7), {"forward_inputs": {"backbone_features": feats,
                                                            "chain": torch.randn(envs, 5, 16, 32)},
                                         "logprobs": torch.randn(envs), "values": torch.randn(envs)}
    b = 2 * envs  # the shard is half of a trajectory of 2B envs: a strided view
    c = 4
    traj = Trajectory(
        forward_inputs={"backbone_features": torch.randn(steps, b, TOKENS, HIDDEN, generator=g).to(torch.bfloat16),
                        "chain": torch.randn(steps, b, 5, 16, 32)},
        logprobs=torch.randn(steps, b), values=torch.randn(steps + 1, b), rewards=torch.randn(steps, b, c),
        terminated=torch.zeros(steps, b, c, dtype=torch.bool), truncated=torch.zeros(steps, b, c, dtype=torch.bool),
        valid=torch.ones(steps, b, c, dtype=torch.bool), success=torch.zeros(steps, b, c, dtype=torch.bool),
        final_values=torch.zeros(steps, b), env_ids=torch.arange(b))
    return split_envs(traj, 2)[0]


def _nbytes(obj) -> int:
    import dataclasses

    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    if dataclasses.is_dataclass(obj):
        return sum(_nbytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return 0


def make_actor(ray):
    class Peer:
        def use(self, mode: str) -> bool:
            os.environ["RLINF_TENSOR_TRANSPORT"] = mode
            from rlinf_isaac.cluster import tensor_transport

            return tensor_transport.register()

        def make(self, kind: str, envs: int, steps: int):
            self.obj = _payload(kind, envs, steps)
            return _nbytes(self.obj)

        def send(self):
            return self.obj

        def receive(self, obj) -> float:  # read one element: the bytes really arrived
            first = obj.forward_inputs if hasattr(obj, "forward_inputs") else obj[1]["forward_inputs"]
            return float(first["backbone_features"].reshape(-1)[-1])

    return ray.remote(num_cpus=0)(Peer)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=32, help="envs per reply / per shard")
    ap.add_argument("--steps", type=int, default=8, help="decisions per trajectory shard")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)

    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    Peer = make_actor(ray)
    sender, receiver = Peer.remote(), Peer.remote()
    rows = []
    try:
        for kind in ("reply", "shard"):
            nbytes = ray.get(sender.make.remote(kind, args.envs, args.steps))
            for mode in ("pickle", "bytes"):
                ray.get([sender.use.remote(mode), receiver.use.remote(mode)])
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    ray.get(receiver.receive.remote(sender.send.remote()))
                    times.append(time.perf_counter() - t0)
                s = statistics.median(times)
                rows.append({"payload": kind, "mode": mode, "MB": nbytes / 1e6, "seconds": s,
                             "GB_per_s": nbytes / 1e9 / s})
                print(f"{kind:>6} {mode:>7} {nbytes / 1e6:9.1f} MB {s:8.3f} s {nbytes / 1e9 / s:7.2f} GB/s", flush=True)
    finally:
        ray.shutdown()
    for kind in ("reply", "shard"):
        p, b = (next(r for r in rows if r["payload"] == kind and r["mode"] == m) for m in ("pickle", "bytes"))
        print(f"{kind}: bytes path {p['seconds'] / b['seconds']:.2f}x faster than Ray's pickling")
    return emit({"envs": args.envs, "steps": args.steps, "repeats": args.repeats, "rows": rows}, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
