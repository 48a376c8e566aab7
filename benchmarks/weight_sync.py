"""Actor -> rollout weight sync through Ray: a dict of tensors vs one packed buffer.

Two Ray actors hold tensors with the trainable layout of the full-size GR00T N1.5 policy
(the action head: 314 tensors, 1.07 B parameters; shapes taken from the model built on the
meta device, no weights made) in bf16. The sender hands its weights over the object store,
the receiver copies them into its own tensors, as ``ClusterRunner.sync_weights`` does:

* ``dict``: ``{name: tensor.cpu()}`` and ``tensor.to(device)`` per tensor (Ray's default);
* ``packed``: ``WeightPacker.pack`` (one reused host buffer, pinned on CUDA) and
  ``unpack_into`` (one host-to-device copy, then slices).

    python benchmarks/weight_sync.py --device cpu --repeats 3 [--scale 0.25] [--json out.json]

Prints seconds per sync (median) and GB/s for each path and a final JSON line.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from bench_report import emit  # this folder is on sys.path when run as a script


def trainable_layout(config: str, scale: float) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of the action-head parameters of ``config``; ``scale`` < 1 keeps a prefix
    of the tensors holding about that fraction of the parameters (quicker runs)."""
    import torch

    from rlinf_isaac.models.gr00t.config import load_config
    from rlinf_isaac.models.gr00t.modeling import GR00TN15

    with torch.device("meta"):
        model = GR00TN15(load_config(config))
    layout = [(n, tuple(p.shape)) for n, p in model.named_parameters() if n.startswith("action_head.")]
    total, out, kept = sum(math.prod(s) for _, s in layout), [], 0
    for name, shape in layout:
        if kept >= scale * total:
            break
        out.append((name, shape))
        kept += math.prod(shape)
    return out


def make_actors(ray, device: str, dtype_name: str):
    import torch

    from rlinf_isaac.data.weights import PackedWeights, WeightPacker, unpack_into

    class Holder:
        def __init__(self, layout, seed):
            g = torch.Generator().manual_seed(seed)
            dt = getattr(torch, dtype_name)
            self.t = {n: torch.randn(s, generator=g).to(dt).to(device) for n, s in layout}
            self.packer = WeightPacker()

        def as_dict(self):
            return {k: v.detach().cpu() for k, v in self.t.items()}

        def as_packed(self):
            return self.packer.pack(self.t)

        def load(self, weights) -> float:
            t0 = time.perf_counter()
            with torch.no_grad():
                if isinstance(weights, PackedWeights):
                    unpack_into(weights, self.t, device)
                else:
                    for k, v in weights.items():
                        self.t[k].copy_(v.to(device))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - t0

        def checksum(self) -> float:
            return float(sum(v.float().sum() for v in self.t.values()))

    opts = {"num_gpus": 0.5} if device.startswith("cuda") else {"num_cpus": 1}
    return ray.remote(**opts)(Holder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="gr00t_n1_5")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the trainable parameters to send")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import ray

    layout = trainable_layout(args.config, args.scale)
    params = sum(math.prod(s) for _, s in layout)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        Holder = make_actors(ray, args.device, args.dtype)
        sender, receiver = Holder.remote(layout, 0), Holder.remote(layout, 1)
        nbytes = ray.get(sender.as_packed.remote()).nbytes
        rows = {}
        for path, method in (("dict", "as_dict"), ("packed", "as_packed")):
            times, loads = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ref = getattr(sender, method).remote()
                loads.append(ray.get(receiver.load.remote(ref)))
                times.append(time.perf_counter() - t0)
                del ref
            assert abs(ray.get(sender.checksum.remote()) - ray.get(receiver.checksum.remote())) < 1e-3 * max(
                1.0, abs(ray.get(sender.checksum.remote())))
            rows[path] = {"sync_s": statistics.median(times), "load_s": statistics.median(loads),
                          "gb_per_s": nbytes / 1e9 / statistics.median(times), "all_s": times}
            print(f"{path:>7}: {rows[path]['sync_s']:.3f} s per sync (receiver copy-in "
                  f"{rows[path]['load_s']:.3f} s), {rows[path]['gb_per_s']:.2f} GB/s", flush=True)
    finally:
        ray.shutdown()
    report = {"config": args.config, "device": args.device, "dtype": args.dtype, "tensors": len(layout),
              "params": params, "bytes": nbytes, "results": rows,
              "speedup": rows["dict"]["sync_s"] / rows["packed"]["sync_s"]}
    print(f"{len(layout)} tensors, {params / 1e9:.3f} B params, {nbytes / 1e9:.2f} GB: packed is "
          f"{report['speedup']:.2f}x the dict path")
    return emit(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
