"""The frozen backbone in FP8 against the same policy in its own precision, on the same inputs.

Builds the GR00T policy with random weights on the device (``policy_throughput.build_policy``),
runs ``predict(obs, mode="train")`` at each batch size B with a fixed generator, converts the
SigLIP tower and the language model to FP8 in place (``actor.model.backbone_fp8``), and runs
the same calls again. Reports, per B: rollout decisions/s of both and their ratio, and how far
FP8 moved the outputs — the backbone features (relative Frobenius error), the arm actions
(largest and mean absolute difference, against their mean magnitude), the share of gripper
commands (+-1) that flipped, and the log-probs — with
the same exploration noise in both (same generator seed). Timing as in
``policy_throughput.py``: warm-up calls, then the median of ``--steps`` synchronised calls.
``--compile`` compiles the SigLIP tower and the language model for both
(``actor.model.compile_backbone``), which can fuse FP8's per-token scaling into few kernels.

    python benchmarks/fp8_backbone.py --config gr00t_n1_5 --device cuda --dtype bf16 --batch-sizes 16 64 \\
        --json fp8_backbone.json
    python benchmarks/fp8_backbone.py --config gr00t_tiny --device cpu --dtype fp32 --batch-sizes 4
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import emit  # noqa: E402
from policy_throughput import DTYPES, action_diffs, build_policy, make_obs, predict_seeded, time_fn  # noqa: E402


def log(msg: str) -> None:
    print(f"[fp8_backbone {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def measure(policy: Any, sizes: list[int], args: argparse.Namespace) -> dict[int, dict]:
    """Per B: decisions/s of ``predict`` and its outputs for seed 0 (for the comparison)."""
    found = {}
    for bs in sizes:
        obs = make_obs(bs, args.image_size, args.device)
        seconds, _ = time_fn(partial(predict_seeded, policy, obs, args.device, 1), args.device, args.warmup, args.steps)
        actions, extras = predict_seeded(policy, obs, args.device, 0)
        found[bs] = {"seconds": seconds, "decisions_per_s": bs / seconds, "actions": actions.float().cpu(),
                     "features": extras["vl_features"].float().cpu(), "logprobs": extras["prev_logprobs"].float().cpu()}
    return found


def compare(ref: dict, fp8: dict, gripper_dims: tuple[int, ...]) -> dict[str, float]:
    """How far FP8 moved one batch's outputs (the actions as :func:`action_diffs` puts it), and
    the speed ratio."""
    return {
        "decisions_per_s": ref["decisions_per_s"], "decisions_per_s_fp8": fp8["decisions_per_s"],
        "speedup": fp8["decisions_per_s"] / ref["decisions_per_s"],
        "features_rel_err": float((fp8["features"] - ref["features"]).norm() / ref["features"].norm()),
        **action_diffs(fp8["actions"], ref["actions"], gripper_dims),
        "logprobs_max_abs_diff": float((fp8["logprobs"] - ref["logprobs"]).abs().max()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="gr00t_n1_5", help="shipped model config name or config.json path")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="the policy's own precision (the baseline)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    p.add_argument("--steps", type=int, default=5, help="timed calls per measurement (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224, help="side of the env images fed to the processor")
    p.add_argument("--noise-method", choices=("flow_sde", "flow_noise"), default="flow_sde")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone in both (compile_backbone)")
    p.add_argument("--json", default=None, help="also write the result JSON to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    policy, build_s = build_policy(args.config, args.device, DTYPES[args.dtype], args.noise_method, None)
    log(f"{args.config} on {args.device} ({args.dtype}) built in {build_s:.1f} s")
    if args.compile:
        from rlinf_isaac.models.gr00t.policy import BACKBONE_PARTS, compile_parts

        compile_parts(policy.model, BACKBONE_PARTS)
    ref = measure(policy, args.batch_sizes, args)
    converted, kept = policy.use_fp8_backbone()
    log(f"backbone in FP8: {converted} linear layers converted, {kept} left in {args.dtype}")
    fp8 = measure(policy, args.batch_sizes, args)
    rows = {bs: compare(ref[bs], fp8[bs], policy.processor.cfg.gripper_dims) for bs in args.batch_sizes}
    for bs, r in rows.items():
        log(f"B={bs}: {r['decisions_per_s']:.1f} -> {r['decisions_per_s_fp8']:.1f} decisions/s "
            f"(x{r['speedup']:.2f}); features rel err {r['features_rel_err']:.4f}; arm actions max |diff| "
            f"{r['arm_max_abs_diff']:.4f}, mean {r['arm_mean_abs_diff']:.5f} (mean |a| {r['arm_mean_abs']:.3f}); "
            f"gripper flips {r['gripper_flip_share']:.2%}")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {"benchmark": "fp8_backbone", "config": args.config, "device": device_name, "dtype": args.dtype,
              "compiled": args.compile, "linear_layers_fp8": converted, "linear_layers_kept": kept,
              "image_size": args.image_size,
              "rows": {str(bs): r for bs, r in rows.items()}}
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
