"""Policy throughput: rollout and actor-training samples/s of the GR00T policy, baseline vs optimised.

Builds the policy with random weights directly on the target device (no checkpoint, nothing
downloaded) and measures, per batch size B:

* ``rollout``: ``GR00TPolicy.predict(obs, mode="train")`` on observations already on the
  device (processor + backbone + 4-step Flow-SDE denoising + log-prob + value head);
* ``train``: ``GR00TPolicy.evaluate(rollout_extras)`` on the reused backbone features +
  PPO clipped surrogate + clipped value loss + backward + AdamW step (backbone frozen, the
  default RL setting).

Variants, in one run: ``baseline`` = eager attention, no compile, AdamW without ``fused``;
``optimised`` = ``--attn`` (SDPA by default), ``torch.compile`` of the SigLIP tower, the LM
body, the VL self-attention and the DiT when ``--compile`` is given (``--compile-mode
reduce-overhead`` adds CUDA graphs), fused AdamW. A failing optimisation is reported and the
variant falls back to eager; the run is bounded by ``--time-budget-s``.

Timing: warm-up iterations, then ``--steps`` iterations each closed by a device sync; the
median is reported. FLOPs per iteration are counted once per (phase, B) with
``torch.utils.flop_counter.FlopCounterMode`` (matmuls, attention, convolutions; forward and
backward), so TFLOP/s = FLOPs / median time. Peak memory = ``torch.cuda.max_memory_allocated``.

    python benchmarks/policy_throughput.py --config gr00t_n1_5 --device cuda --dtype bf16 \\
        --batch-sizes 32 64 128 --compile --json policy_throughput.json
    python benchmarks/policy_throughput.py --config gr00t_tiny --device cpu --dtype fp32 --batch-sizes 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
VARIANTS = ("baseline", "optimised")
# a naive probe on one H200 (eager attention, approximate head), samples/s: the reference point
REFERENCE = {"rollout": 200.0, "train": 440.0}


def log(msg: str) -> None:
    """Progress line on stdout, flushed (the GPU machine's output is read through a pipe)."""
    print(f"[policy_throughput {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------- construction
def build_policy(config: str, device: str, dtype: torch.dtype, noise_method: str, tokenizer_dir: str | None):
    """Random-weight ``GR00TPolicy`` on ``device``: model in ``dtype``, value head / noise net fp32.

    Returns (policy, seconds spent building)."""
    from rlinf_isaac.models.gr00t.config import load_config
    from rlinf_isaac.models.gr00t.modeling import build_model
    from rlinf_isaac.models.gr00t.policy import GR00TPolicy, GR00TPolicyConfig
    from rlinf_isaac.models.gr00t.processor import GR00TProcessor
    from rlinf_isaac.models.gr00t.tokenizer import load_tokenizer, stand_in_tokenizer

    t0 = time.perf_counter()
    cfg = load_config(config)
    tok = load_tokenizer(tokenizer_dir) if tokenizer_dir else stand_in_tokenizer(cfg)
    processor = GR00TProcessor.for_model(cfg, tokenizer=tok)
    torch.manual_seed(0)
    model = build_model(cfg, device=device, dtype=dtype)  # initialised on the device itself
    with torch.device(device):
        policy = GR00TPolicy(model, processor, GR00TPolicyConfig(noise_method=noise_method, tune_projector=True))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return policy, time.perf_counter() - t0


def make_obs(batch: int, image_size: int, device: str, seed: int = 0) -> dict[str, Any]:
    """Env-contract observation on ``device``: images uint8 [B, H, W, 3] (H = W = image_size),
    states float32 [B, 8], task_descriptions list of B str."""
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.randint(0, 256, (batch, image_size, image_size, 3), generator=g,  # noqa: E731
                                dtype=torch.uint8).to(device)
    return {"main_images": img(), "wrist_images": img(),
            "states": (torch.rand(batch, 8, generator=g) * 2 - 1).to(device),
            "task_descriptions": ["Stack the red cube on the blue cube, then the green cube on the red cube."] * batch}


# ---------------------------------------------------------------------- optimisations
def set_attention(policy: Any, impl: str) -> str:
    """Select the attention kernels of every transformer in the policy; returns the one in use.

    HF SigLIP / Qwen3 take ``impl`` (``flash_attention_2`` needs the flash-attn package, else
    SDPA is used, which dispatches to flash kernels itself); diffusers blocks take the eager
    processor for ``eager`` and SDPA otherwise."""
    from rlinf_isaac.models.gr00t.action_head import _set_attn_processor

    eagle = policy.model.backbone.eagle_model
    hf_models = (eagle.vision_model.vision_model, eagle.language_model)
    used = impl
    for m in hf_models:
        try:
            m.set_attn_implementation(used)
        except Exception as err:  # e.g. flash-attn not installed
            log(f"attention {used!r} unavailable for {type(m).__name__} ({type(err).__name__}: "
                f"{str(err)[:160]}); using 'sdpa'")
            used = "sdpa"
            for m2 in hf_models:
                m2.set_attn_implementation("sdpa")
    for m in policy.model.action_head.modules():
        if type(m).__name__ == "Attention" and hasattr(m, "set_processor"):
            _set_attn_processor(m, impl)
    return used


def compile_parts(policy: Any, mode: str) -> list[Any]:
    """``nn.Module.compile`` (in place, names unchanged) of the heavy parts, backbone and action
    head; returns them."""
    from rlinf_isaac.models.gr00t import policy as gr00t

    return gr00t.compile_parts(policy.model, gr00t.BACKBONE_PARTS + gr00t.ACTION_HEAD_PARTS,
                               None if mode == "default" else mode)


def uncompile(parts: list[Any]) -> None:
    """Undo :func:`compile_parts` (back to eager)."""
    for part in parts:
        part._compiled_call_impl = None


def make_optimizer(policy: Any, fused: bool, lr: float = 1e-6) -> tuple[torch.optim.Optimizer, str]:
    """AdamW over the trainable tensors; ``fused`` where the device supports it."""
    params = [p for p in policy.parameters() if p.requires_grad]
    if fused:
        try:
            return torch.optim.AdamW(params, lr=lr, fused=True), "AdamW(fused)"
        except Exception as err:
            log(f"fused AdamW unavailable ({err}); using foreach")
    return torch.optim.AdamW(params, lr=lr, fused=False), "AdamW(foreach)"


# ---------------------------------------------------------------------- the measured steps
def rollout_step(policy: Any, obs: dict[str, Any], generator: torch.Generator) -> Callable[[], Any]:
    """One rollout inference: ``predict(obs, "train")`` -> (actions [B, C, 7], rollout_extras)."""
    return lambda: policy.predict(obs, mode="train", generator=generator)


def predict_seeded(policy: Any, obs: dict[str, Any], device: str, seed: int) -> tuple[torch.Tensor, dict]:
    """One rollout ``predict`` without gradients, its noise from a generator seeded ``seed`` (the
    same seed gives the same noise): (actions [B, C, A], rollout_extras)."""
    with torch.no_grad():
        return policy.predict(obs, mode="train", generator=torch.Generator(device).manual_seed(seed))


def action_diffs(actions: torch.Tensor, ref: torch.Tensor, gripper_dims: tuple[int, ...]) -> dict[str, float]:
    """How far ``actions`` [B, C, A] are from ``ref`` (same shape): on the arm dims the largest and
    mean absolute difference, beside ``ref``'s mean magnitude there; on ``gripper_dims`` (+-1
    commands, where any change is a flip worth 2) the share of commands that flipped."""
    grip = torch.zeros(actions.shape[-1], dtype=torch.bool)
    grip[list(gripper_dims)] = True
    arm = (actions - ref)[..., ~grip].abs()
    flips = actions[..., grip].sign() != ref[..., grip].sign()
    return {"arm_max_abs_diff": float(arm.max()), "arm_mean_abs_diff": float(arm.mean()),
            "arm_mean_abs": float(ref[..., ~grip].abs().mean()),
            "gripper_flip_share": float(flips.float().mean()) if grip.any() else 0.0}


def train_step(policy: Any, extras: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> Callable[[], Any]:
    """One actor update on stored rollouts (reused backbone features).

    extras: ``predict`` extras (``vl_features`` [B, L, D], ``chain`` [B, K+1, C_h, A_pad], ...).
    Advantages/returns are fixed draws, so the loss has a non-trivial gradient."""
    from rlinf_isaac.algorithms.losses import clipped_value_loss, ppo_policy_loss

    g = torch.Generator().manual_seed(1)
    adv = torch.randn(extras["prev_logprobs"].shape, generator=g).to(extras["prev_logprobs"].device)
    returns = extras["prev_values"] + 0.1 * adv

    def step() -> torch.Tensor:
        out = policy.evaluate(extras)
        pg_loss, _ = ppo_policy_loss(out["logprobs"], extras["prev_logprobs"], adv)
        v_loss, _ = clipped_value_loss(out["values"], extras["prev_values"], returns)
        loss = pg_loss + 0.5 * v_loss  # L = L_clip + c_v L_V
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], Any], device: str, warmup: int, steps: int) -> tuple[float, Any]:
    """Median seconds of ``steps`` synchronised calls after ``warmup`` calls; and the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def count_flops(fn: Callable[[], Any]) -> tuple[int, Any]:
    """FLOPs of one call (forward and backward ops run inside it), and its result."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = fn()
    return counter.get_total_flops(), out


# ---------------------------------------------------------------------- driver
class Budget:
    """Wall-clock budget of the whole run: ``left()`` seconds remain."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def mark_step() -> None:
    """Tell CUDA-graph trees a new iteration starts (no-op without them)."""
    if hasattr(torch.compiler, "cudagraph_mark_step_begin"):
        torch.compiler.cudagraph_mark_step_begin()


def detach_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """Own copies of the rollout extras (CUDA-graph outputs are overwritten by later replays)."""
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in extras.items()}


def flops_pass(policy: Any, args: argparse.Namespace, budget: Budget) -> dict[tuple[str, int], dict]:
    """Per batch size: FLOPs of one rollout and one train step (eager model), and the rollout
    extras the train steps reuse. Also serves as the global warm-up (CUDA context, cuBLAS)."""
    found: dict[tuple[str, int], dict] = {}
    opt, _ = make_optimizer(policy, fused=False)
    for bs in args.batch_sizes:
        if budget.left() <= 0:
            break
        gen = torch.Generator(device=args.device).manual_seed(0)
        flops, (_, extras) = count_flops(rollout_step(policy, make_obs(bs, args.image_size, args.device), gen))
        found[("rollout", bs)] = {"flops": flops, "extras": detach_extras(extras)}
        found[("train", bs)] = {"flops": count_flops(train_step(policy, found[("rollout", bs)]["extras"], opt))[0]}
        log(f"B={bs}: {flops / bs / 1e9:.1f} GFLOP/sample rollout, "
            f"{found[('train', bs)]['flops'] / bs / 1e9:.1f} GFLOP/sample train")
    del opt
    return found


def measure(phase: str, fn: Callable[[], Any], bs: int, flops: int | None, args: argparse.Namespace) -> tuple[dict, Any]:
    """Time ``fn`` and return (result row, last output)."""
    def step():
        mark_step()
        return fn()

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sec, out = time_fn(step, args.device, args.warmup, args.steps)
    row = {"phase": phase, "batch_size": bs, "samples_per_s": float(f"{bs / sec:.5g}"), "ms_per_iter": float(f"{1e3 * sec:.5g}"),
           "flops_per_iter": flops, "tflops": float(f"{flops / sec / 1e12:.4g}") if flops else None,
           "peak_mem_gib": (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                            if args.device.startswith("cuda") else None)}
    return row, out


def setup_variant(policy: Any, name: str, args: argparse.Namespace) -> tuple[dict, list, torch.optim.Optimizer]:
    """Attention, compile and optimizer of a variant; returns (its description, compiled parts, optimizer)."""
    optimised = name == "optimised"
    attn = set_attention(policy, args.attn if optimised else "eager")
    parts: list = []
    if optimised and args.compile:
        try:
            parts = compile_parts(policy, args.compile_mode)
        except Exception as err:
            log(f"torch.compile setup failed: {type(err).__name__}: {err}")
    opt, opt_name = make_optimizer(policy, fused=optimised)
    desc = {"variant": name, "attn": attn, "compile": args.compile_mode if parts else None, "optimizer": opt_name}
    log(f"variant {desc}")
    return desc, parts, opt


def run_phase(phase: str, make_fn: Callable[[], Callable], bs: int, flops: int | None, parts: list,
              args: argparse.Namespace) -> tuple[dict, Any]:
    """``measure`` with compile fallback: a failing compiled run is reported, parts go eager, retried."""
    try:
        return measure(phase, make_fn(), bs, flops, args)
    except Exception as err:
        if not parts or any(p._compiled_call_impl is None for p in parts):
            raise
        msg = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        log(f"compiled {phase} B={bs} failed ({msg}); falling back to eager")
        uncompile(parts)
        torch._dynamo.reset()
        row, out = measure(phase, make_fn(), bs, flops, args)
        row["note"] = f"compile failed, eager: {msg}"
        return row, out


def _step_fn(phase: str, policy: Any, obs: dict, gen: torch.Generator, extras: Any, opt: Any):
    """The measured step of ``phase``, bound to this batch's inputs."""
    if phase == "rollout":
        return lambda: rollout_step(policy, obs, gen)
    return lambda: train_step(policy, extras, opt)


def run_variant(policy: Any, name: str, args: argparse.Namespace, found: dict, budget: Budget) -> list[dict]:
    """All batch sizes x (rollout, train) of one variant; errors become rows, not crashes."""
    desc, parts, opt = setup_variant(policy, name, args)
    rows = []
    for bs in args.batch_sizes:
        obs = make_obs(bs, args.image_size, args.device)
        gen = torch.Generator(device=args.device).manual_seed(0)
        extras = found.get(("rollout", bs), {}).get("extras")
        for phase in ("rollout", "train"):
            base = {**desc, "phase": phase, "batch_size": bs}
            if budget.left() <= 0 or (phase == "train" and extras is None):
                rows.append({**base, "skipped": "time budget" if budget.left() <= 0 else "no rollout extras"})
                continue
            make_fn = _step_fn(phase, policy, obs, gen, extras, opt)
            try:
                row, out = run_phase(phase, make_fn, bs, found.get((phase, bs), {}).get("flops"), parts, args)
                if phase == "rollout":
                    extras = detach_extras(out[1])
                rows.append({**desc, **row})
                log(format_row(rows[-1]))
            except Exception as err:  # e.g. out of memory: report, go on
                rows.append({**base, "error": f"{type(err).__name__}: {str(err)[:300]}"})
                log(f"{name} {phase} B={bs} failed: {rows[-1]['error']}")
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
    uncompile(parts)
    del opt
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def format_row(r: dict) -> str:
    if "samples_per_s" not in r:
        return (f"{r['variant']:<9} | {r['batch_size']:>4} | {r['phase']:<7} | "
                f"{r.get('skipped') or r.get('error')}")
    fmt = lambda v, f: format(v, f) if v is not None else "-"  # noqa: E731
    return (f"{r['variant']:<9} | {r['batch_size']:>4} | {r['phase']:<7} | {r['samples_per_s']:>10.1f} | "
            f"{r['ms_per_iter']:>9.2f} | {fmt(r['tflops'], '>7.2f')} | {fmt(r['peak_mem_gib'], '>8.2f')} | "
            f"{r.get('note', '')}")


def speedups(rows: list[dict]) -> dict[str, dict[str, float]]:
    """optimised / baseline samples/s per (batch size, phase)."""
    got = {(r["variant"], r["phase"], r["batch_size"]): r["samples_per_s"] for r in rows if "samples_per_s" in r}
    out: dict[str, dict[str, float]] = {}
    for (variant, phase, bs), sps in got.items():
        base = got.get(("baseline", phase, bs))
        if variant == "optimised" and base:
            out.setdefault(str(bs), {})[phase] = round(sps / base, 3)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="gr00t_n1_5", help="shipped model config name or config.json path")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--attn", choices=("sdpa", "eager", "flash_attention_2"), default="sdpa",
                   help="attention of the optimised variant (baseline is always eager)")
    p.add_argument("--compile", action="store_true", help="torch.compile the heavy parts in the optimised variant")
    p.add_argument("--compile-mode", default="default",
                   choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
                   help="reduce-overhead = CUDA graphs")
    p.add_argument("--noise-method", choices=("flow_sde", "flow_noise"), default="flow_sde")
    p.add_argument("--steps", type=int, default=5, help="timed iterations per measurement (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (compile happens here)")
    p.add_argument("--image-size", type=int, default=224, help="side of the env images fed to the processor")
    p.add_argument("--tokenizer", default=None, help="local tokenizer folder of the model (optional)")
    p.add_argument("--time-budget-s", type=float, default=420.0, help="measurements stop being started after this")
    p.add_argument("--json", default=None, help="also write the result JSON to this file")
    p.add_argument("--save-tokenizer", default=None, metavar="DIR",
                   help="only write the benchmark tokenizer of --config to DIR and exit (for "
                        "actor.model.tokenizer_path of a random-init pipeline run)")
    args = p.parse_args(argv)
    for name in ("steps", "warmup"):
        if getattr(args, name) < (1 if name == "steps" else 0):
            p.error(f"--{name} must be >= {1 if name == 'steps' else 0}, got {getattr(args, name)}")
    if any(b < 1 for b in args.batch_sizes):
        p.error(f"--batch-sizes must be positive, got {args.batch_sizes}")
    return args


def report(args: argparse.Namespace, meta: dict, rows: list[dict]) -> dict:
    """Print the table and return the JSON-able result."""
    print(f"\nGR00T policy throughput: {meta['config']} {meta['dtype']} on {meta['device_name']} "
          f"(params {meta['params']:,}, trainable {meta['trainable']:,})", flush=True)
    print(f"{'variant':<9} | {'B':>4} | {'phase':<7} | {'samples/s':>10} | {'ms/iter':>9} | "
          f"{'TFLOP/s':>7} | {'peak GiB':>8} | note")
    for r in rows:
        print(format_row(r))
    result = {**meta, "results": rows, "speedup_vs_baseline": speedups(rows)}
    best = {ph: max((r["samples_per_s"] for r in rows if r.get("phase") == ph and "samples_per_s" in r), default=None)
            for ph in ("rollout", "train")}
    result["best_samples_per_s"] = best
    if meta["config"] == "gr00t_n1_5":
        result["vs_h200_naive_probe"] = {ph: round(best[ph] / REFERENCE[ph], 3) if best[ph] else None
                                         for ph in REFERENCE}
    for bs, s in result["speedup_vs_baseline"].items():
        print(f"speed-up optimised/baseline B={bs}: " + ", ".join(f"{k} x{v:.2f}" for k, v in s.items()))
    if "vs_h200_naive_probe" in result:
        print(f"best vs the naive H200 probe (200 rollout / 440 train samples/s): {result['vs_h200_naive_probe']}")
    return result


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.save_tokenizer:
        from rlinf_isaac.models.gr00t.config import load_config
        from rlinf_isaac.models.gr00t.tokenizer import stand_in_tokenizer

        stand_in_tokenizer(load_config(args.config)).save_pretrained(args.save_tokenizer)
        log(f"wrote the {args.config} benchmark tokenizer to {args.save_tokenizer}")
        return {"tokenizer": args.save_tokenizer}
    budget = Budget(args.time_budget_s)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    log(f"torch {torch.__version__}, building {args.config} on {args.device} in {args.dtype}")
    policy, build_s = build_policy(args.config, args.device, DTYPES[args.dtype], args.noise_method, args.tokenizer)
    meta = {"config": args.config, "device": args.device, "dtype": args.dtype, "build_s": round(build_s, 1),
            "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch": torch.__version__, "params": sum(p.numel() for p in policy.parameters()),
            "trainable": sum(p.numel() for p in policy.parameters() if p.requires_grad),
            "prompt_length": policy.processor.cfg.max_length, "steps": args.steps, "warmup": args.warmup,
            "noise_method": args.noise_method, "image_size": args.image_size}
    log(f"built in {build_s:.1f} s: {meta['params']:,} params ({meta['trainable']:,} trainable), "
        f"prompt length L = {meta['prompt_length']}")
    found = flops_pass(policy, args, budget)
    rows: list[dict] = []
    for name in args.variants:
        rows += run_variant(policy, name, args, found, budget)
    result = report(args, meta, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
