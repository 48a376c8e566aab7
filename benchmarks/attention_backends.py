"""Which attention kernel to prefer: the policy's speed with each PyTorch SDPA backend first in line.

All attention in the GR00T policy (the SigLIP tower, the Qwen3 language model, the VL
self-attention, the DiT) goes through ``torch.nn.functional.scaled_dot_product_attention``,
which picks one of its kernels per call: FlashAttention-2, memory-efficient, cuDNN or the math
fallback, by what each call's shapes, dtype and mask allow. This builds the policy with random
weights on the device (``policy_throughput.build_policy``) and, for each backend order — PyTorch's
own choice (``default``), one backend first and the others behind it as fallback (``flash``,
``efficient``, ``cudnn``), the math kernel alone (``math``) — and each batch size B, measures:

* rollout: ``predict(obs, mode="train")`` decisions/s, and how far the actions are from the
  ``default`` order's on the same inputs and exploration noise: the largest arm difference and
  the share of gripper commands (+-1) that flipped;
* train: ``evaluate`` on the default order's stored rollout + PPO and value loss + backward +
  AdamW step, samples/s, and the loss difference from the ``default`` order's. The optimizer's
  learning rate is 0, so the weights stay the same for every order.

Ratios are against ``default``, measured in the same run. An order none of whose kernels can
run a call (e.g. cuDNN only, on a CPU) is reported with its error. Timing as in
``policy_throughput.py``: warm-up calls, then the median of ``--steps`` synchronised calls.

    python benchmarks/attention_backends.py --config gr00t_n1_5 --device cuda --dtype bf16 \\
        --batch-sizes 32 64 --json attention_backends.json
    python benchmarks/attention_backends.py --config gr00t_tiny --device cpu --dtype fp32 --batch-sizes 4
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import emit  # noqa: E402
from fa4_route import Fa4Route, error_line, load_fa4  # noqa: E402
from policy_throughput import (  # noqa: E402
    DTYPES,
    action_diffs,
    build_policy,
    detach_extras,
    make_obs,
    make_optimizer,
    predict_seeded,
    time_fn,
    train_step,
)

# backend order per name (torch.nn.attention.SDPBackend members); None: PyTorch's own choice;
# FA4: FlashAttention 4 (fa4_route.py) for the calls it can run, PyTorch's own choice for the rest
ORDERS: dict[str, list[str] | None] = {
    "default": None,
    "flash": ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"],
    "efficient": ["EFFICIENT_ATTENTION", "FLASH_ATTENTION", "CUDNN_ATTENTION", "MATH"],
    "cudnn": ["CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"],
    "math": ["MATH"],
    "fa4": ["FA4", "DEFAULT"],
}
FA4_ORDER = ORDERS["fa4"]


def log(msg: str) -> None:
    print(f"[attention_backends {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def within(order: list[str] | None, fn: Callable[[], Any], calls: Counter | None = None) -> Callable[[], Any]:
    """``fn`` with SDPA restricted to ``order``'s backends, tried in that order (``None``: as is;
    ``FA4_ORDER``: through :class:`fa4_route.Fa4Route`, which counts its calls into ``calls``)."""
    if order is None:
        return fn
    if order == FA4_ORDER:
        route = Fa4Route(load_fa4(), calls=Counter() if calls is None else calls)

        def routed() -> Any:
            with route.installed():
                return fn()
        return routed
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [getattr(SDPBackend, name) for name in order]

    def call() -> Any:
        with sdpa_kernel(backends, set_priority=True):
            return fn()
    return call


def failure(err: Exception) -> dict[str, str]:
    """An order's result when none of its kernels could run a call: the error's first line."""
    return {"error": error_line(err)}


def rollout_pass(policy: Any, bs: int, args: argparse.Namespace) -> dict[str, dict]:
    """Per order at batch ``bs``: predict's seconds and decisions/s, actions for seed 0 (and
    the stored rollout of that call, kept for ``default`` only); or the order's error."""
    obs = make_obs(bs, args.image_size, args.device)
    found: dict[str, dict] = {}
    for name in args.orders:
        order, calls = ORDERS[name], Counter()
        try:
            seconds, _ = time_fn(within(order, lambda: predict_seeded(policy, obs, args.device, 1)),
                                 args.device, args.warmup, args.steps)
            actions, extras = within(order, lambda: predict_seeded(policy, obs, args.device, 0), calls)()
        except RuntimeError as err:
            found[name] = failure(err)
            continue
        found[name] = {"seconds": seconds, "per_s": bs / seconds, "actions": actions.float().cpu()}
        if calls:  # one predict's attention calls, by who ran them
            found[name]["calls"] = dict(calls)
        if name == "default":
            found[name]["extras"] = detach_extras(extras)
    return found


def train_pass(policy: Any, extras: dict, bs: int, args: argparse.Namespace) -> dict[str, dict]:
    """Per order at batch ``bs``: one train step's seconds and samples/s on ``extras`` (weights
    unchanged: learning rate 0), and that step's loss; or the order's error."""
    opt, _ = make_optimizer(policy, fused=False, lr=0.0)
    step = train_step(policy, extras, opt)
    found: dict[str, dict] = {}
    for name in args.orders:
        calls = Counter()
        try:
            seconds, loss = time_fn(within(ORDERS[name], step, calls), args.device, args.warmup, args.steps)
        except RuntimeError as err:
            found[name] = failure(err)
            continue
        found[name] = {"seconds": seconds, "per_s": bs / seconds, "loss": float(loss)}
        if calls:  # the warm-up and timed steps' attention calls, by who ran them
            found[name]["calls"] = dict(calls)
    return found


def compare(rollout: dict[str, dict], train: dict[str, dict], gripper_dims: tuple[int, ...]) -> dict[str, dict]:
    """Per order: its speeds, their ratios to ``default``'s, how far its actions are from
    ``default``'s (:func:`action_diffs`) and the loss difference (``error`` where the order could
    not run)."""
    ref_r, ref_t = rollout["default"], train["default"]
    rows: dict[str, dict] = {}
    for name, r in rollout.items():
        t = train[name]
        if "error" in r or "error" in t:
            rows[name] = {"error": r.get("error") or t.get("error")}
            continue
        rows[name] = {
            "rollout_per_s": r["per_s"], "rollout_ratio": r["per_s"] / ref_r["per_s"],
            **action_diffs(r["actions"], ref_r["actions"], gripper_dims),
            "train_per_s": t["per_s"], "train_ratio": t["per_s"] / ref_t["per_s"],
            "loss_abs_diff": abs(t["loss"] - ref_t["loss"]),
        }
        for part, found in (("rollout", r), ("train", t)):
            if "calls" in found:
                rows[name][f"{part}_calls"] = found["calls"]
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="gr00t_n1_5", help="shipped model config name or config.json path")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--orders", nargs="+", default=list(ORDERS), help=f"backend orders to run, of {list(ORDERS)}")
    p.add_argument("--steps", type=int, default=5, help="timed calls per measurement (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224, help="side of the env images fed to the processor")
    p.add_argument("--json", default=None, help="also write the result JSON to this file")
    args = p.parse_args(argv)
    unknown = [o for o in args.orders if o not in ORDERS]
    if unknown:
        p.error(f"--orders: unknown {unknown}; choose from {list(ORDERS)}")
    if "default" not in args.orders:
        args.orders = ["default", *args.orders]  # the baseline every ratio is taken against
    return args


def format_row(bs: int, name: str, r: dict) -> str:
    if "error" in r:
        return f"B={bs} {name:>9}: cannot run ({r['error']})"
    row = (f"B={bs} {name:>9}: rollout {r['rollout_per_s']:8.1f}/s (x{r['rollout_ratio']:.2f}, arm max |diff| "
           f"{r['arm_max_abs_diff']:.2e}, gripper flips {r['gripper_flip_share']:.1%}), train "
           f"{r['train_per_s']:8.1f}/s (x{r['train_ratio']:.2f}, loss |diff| {r['loss_abs_diff']:.2e})")
    if "rollout_calls" in r:
        row += f"; FA4 ran {fa4_share(r['rollout_calls']):.0%} / {fa4_share(r['train_calls']):.0%} of the attention calls"
    return row


def fa4_share(calls: dict[str, int]) -> float:
    """Share of the counted attention calls that FA4 ran (``calls``: as :class:`Fa4Route` counts)."""
    return calls.get("fa4", 0) / max(1, sum(calls.values()))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    policy, build_s = build_policy(args.config, args.device, DTYPES[args.dtype], "flow_sde", None)
    log(f"{args.config} on {args.device} ({args.dtype}) built in {build_s:.1f} s; orders {args.orders}")
    rollouts = {bs: rollout_pass(policy, bs, args) for bs in args.batch_sizes}  # before any train step
    failed = {bs: r["default"]["error"] for bs, r in rollouts.items() if "error" in r["default"]}
    if failed:
        raise RuntimeError(f"the policy does not run with PyTorch's own attention kernels: {failed}")
    table: dict[str, dict] = {}
    for bs in args.batch_sizes:
        train = train_pass(policy, rollouts[bs]["default"]["extras"], bs, args)
        table[str(bs)] = compare(rollouts[bs], train, policy.processor.cfg.gripper_dims)
        for name, r in table[str(bs)].items():
            log(format_row(bs, name, r))
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {"benchmark": "attention_backends", "config": args.config, "device": device_name, "dtype": args.dtype,
              "torch": torch.__version__, "image_size": args.image_size, "orders": {o: ORDERS[o] for o in args.orders},
              "rows": table}
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
