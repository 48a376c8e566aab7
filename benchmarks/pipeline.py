"""Pipeline throughput: env-steps/s and per-phase times of the real runner, S = 1 vs S = 2.

Runs the training loop (Ray workers, MuJoCo envs, GR00T policy, PPO update) for a few
global steps per variant, drops the first step (warm-up: compilation, caches) and reports
medians. With the update beside the next rollout, the runner's last step collects no rollout
ahead (it is the update alone), so such a variant runs one step more and drops it. Runner
overhead = the part of a step outside simulation, model inference and the actor update (Ray
transfers, trajectory stacking, advantages, weight sync, logging).

    python benchmarks/pipeline.py --config mujoco_stack3_ppo_gr00t_tiny --stages 1 2 --steps 4 \
        -- cluster=1gpu env.train.total_num_envs=64 env.train.num_workers=8

Everything after ``--`` is a Hydra override applied to every variant. ``--transports pickle
bytes`` runs every variant twice: with Ray's own tensor pickling and with the raw-bytes path
(``rlinf_isaac/cluster/tensor_transport.py``, the default). ``--cuda-ipc on off`` runs every
variant with GPU tensors between workers on one GPU sent by CUDA IPC handle (the default) and
through the host (``rlinf_isaac/cluster/cuda_ipc.py``). ``--overlap off on`` runs every variant
with the update alone and beside the next step's rollout (``rollout.overlap_update``); compare
their samples/s (decisions per second of whole steps: env-steps/s counts only the rollout).
``--peak-tflops T`` also counts the FLOPs of one rollout decision and of one trained sample of
the run's policy (``torch.utils.flop_counter``, batch of 2, after the variants) and prints each
variant's samples/s against the FLOP-bound limit T x 1e12 / (F_decision + update_epochs x
F_sample): T is what the GPU sustains on the policy's matrix products (~790 bf16 TFLOP/s on an
H200).
Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from typing import Any

from bench_report import emit  # this folder is on sys.path when run as a script

PHASES = ("time/step", "time/sync", "time/rollout", "time/env", "time/env_reset", "time/env_wait",
          "time/inference", "time/advantages", "time/update")


def run_variant(config: str, stages: int, steps: int, overrides: list[str], sim_procs: int = 0,
                transport: str = "bytes", cuda_ipc: bool = True, overlap: bool = False) -> dict:
    from rlinf_isaac.config import load_config
    from rlinf_isaac.runners.train_runner import TrainRunner

    log_dir = tempfile.mkdtemp(prefix=f"bench_pipeline_s{stages}_")
    procs = [f"env.train.num_workers={sim_procs // stages}"] if sim_procs else []  # same CPU budget for every S
    total = runner_steps(steps, overlap)
    cfg = load_config(config, [f"rollout.pipeline_stage_num={stages}", f"runner.max_steps={total}", *procs,
                               "runner.save_interval=-1", "runner.val_check_interval=-1",
                               f"cluster.tensor_transport={transport}", f"cluster.cuda_ipc={str(cuda_ipc).lower()}",
                               f"rollout.overlap_update={str(overlap).lower()}",
                               f"runner.logger.log_path={log_dir}", *overrides])
    t_setup = time.perf_counter()
    runner = TrainRunner(cfg)
    setup_s = time.perf_counter() - t_setup  # Ray, workers, models, simulators: before the first step
    print(f"  S={stages}: set up in {setup_s:.1f}s", flush=True)
    rows = []
    try:
        for step in range(total):  # the runner's loop, one step at a time, keeping each step's metrics
            t0 = time.perf_counter()
            m = runner.run_one(step)
            m["wall"] = time.perf_counter() - t0
            rows.append(m)
            tail = " (the update alone: not measured)" if step >= steps else ""
            print(f"  S={stages} step {step}: {m['env/steps_per_s']:.1f} env-steps/s, "
                  f"step {m['time/step']:.2f}s{tail}", flush=True)
        mem = {g.name: [round(m["peak_gib"], 2) for m in g.memory_stats()]
               for g in (runner.controller.envs, runner.controller.rollouts, runner.controller.actors)}
    finally:
        runner.close()
    measured = steady_rows(rows, steps)
    out = {k: statistics.median(r.get(k, 0.0) for r in measured) for k in PHASES + ("env/steps_per_s",)}
    compute = out["time/env"] + out["time/env_reset"] + out["time/inference"] + out["time/update"] + out["time/advantages"]
    # The env worker is the rollout's critical path: it either simulates (time/env) or waits
    # for an action chunk (time/env_wait, which holds inference not hidden behind other
    # stages' simulation), after resetting every env (time/env_reset). Overhead = the rest of the step: recording and stacking
    # trajectories, moving them to the actors and computing advantages (the "advantages"
    # phase: Ray transfers plus GAE, which is cheap), weight sync, driver bookkeeping.
    # "overhead_excl_adv_frac" counts the advantages phase as work instead.
    busy = out["time/env"] + out["time/env_reset"] + out["time/env_wait"] + out["time/update"]
    out["overhead_s"] = max(0.0, out["time/step"] - busy)
    out["overhead_frac"] = out["overhead_s"] / max(1e-9, out["time/step"])
    out["overhead_excl_adv_frac"] = max(0.0, out["overhead_s"] - out["time/advantages"]) / max(1e-9, out["time/step"])
    out["compute_s"] = compute
    out["stages"] = stages
    out["transport"] = transport
    out["cuda_ipc"] = cuda_ipc
    out["overlap"] = overlap
    c = cfg.actor.model.num_action_chunks  # samples = decisions: envs x chunk steps per global step
    samples = cfg.env.train.total_num_envs * (cfg.env.train.max_episode_steps // c) * cfg.algorithm.rollout_epoch
    out["samples_per_step"] = samples
    out["samples_per_s"] = samples / max(1e-9, out["time/step"])
    out["update_samples_per_s"] = samples * cfg.algorithm.update_epochs / max(1e-9, out["time/update"])
    out["gpu_peak_gib"] = mem  # per component, per rank (torch.cuda.max_memory_allocated)
    out["setup_s"] = setup_s
    out["cuda_graph_eager_ranks"] = max(r.get("rollout/cuda_graph_eager", 0.0) for r in rows)
    if out["cuda_graph_eager_ranks"]:
        print(f"  WARNING S={stages}: CUDA graph capture failed in {out['cuda_graph_eager_ranks']:.0f} rollout "
              f"worker(s), so this variant's policy calls ran eagerly (the run's log says why)", flush=True)
    return out


def runner_steps(steps: int, overlap: bool) -> int:
    """Global steps to run for ``steps`` whole ones: with ``rollout.overlap_update`` the runner's
    last step collects no rollout ahead, so one more runs, to be dropped."""
    return steps + 1 if overlap else steps


def steady_rows(rows: list[dict], steps: int) -> list[dict]:
    """The steps measured out of the ``rows`` run: steps 1 .. ``steps`` - 1 (the first warms up,
    any beyond ``steps`` is the overlapped run's update alone); the first if nothing else ran."""
    return rows[1:steps] or rows[:1]


def flop_limit(decision_flops: float, sample_flops: float, update_epochs: int, peak_tflops: float) -> float:
    """Samples (decisions) per second of whole global steps if every FLOP ran at ``peak_tflops``:
    each decision is inferred once and trained ``update_epochs`` times."""
    return peak_tflops * 1e12 / (decision_flops + update_epochs * sample_flops)


# How a policy runs, not what it computes: counted with all of them off. A CUDA graph runs the
# call again for its warm-up and capture (the counter would add those runs up), and the counter
# does not see inside FP8 products.
EXECUTION_LEVERS = {"cuda_graph": False, "compile_backbone": False, "compile_action_head": False,
                    "backbone_fp8": False}


def eager_model_config(model: Any) -> Any:
    """``model`` (an ``actor.model`` dataclass) with every execution lever it has turned off."""
    return dataclasses.replace(model, **{k: v for k, v in EXECUTION_LEVERS.items() if hasattr(model, k)})


def policy_flops(config: str, overrides: list[str], batch: int = 2) -> dict:
    """FLOPs per rollout decision (``predict``) and per trained sample (``evaluate`` + backward of
    the PPO and value losses) of the config's policy, run eagerly (:func:`eager_model_config`),
    on the GPU when there is one."""
    import torch
    from policy_throughput import count_flops, make_obs, make_optimizer, rollout_step, train_step

    from rlinf_isaac.config import load_config
    from rlinf_isaac.models.registry import build_policy

    cfg = load_config(config, overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    policy = build_policy(eager_model_config(cfg.actor.model), cfg.algorithm, device=device, seed=0)
    gen = torch.Generator(device=device).manual_seed(0)
    decision, (_, extras) = count_flops(rollout_step(policy, make_obs(batch, cfg.env.train.image_size, device), gen))
    opt, _ = make_optimizer(policy, fused=False)
    extras = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in extras.items()}
    sample, _ = count_flops(train_step(policy, extras, opt))
    return {"decision_flops": decision / batch, "sample_flops": sample / batch,
            "update_epochs": cfg.algorithm.update_epochs}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    overrides: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, overrides = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="mujoco_stack3_ppo_gr00t_tiny")
    ap.add_argument("--stages", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=4, help="global steps per variant (the first is warm-up)")
    ap.add_argument("--sim-procs", type=int, default=0,
                    help="simulator processes per env worker, split over its S stage envs (0: in-process)")
    ap.add_argument("--transports", nargs="+", default=["bytes"], choices=["pickle", "bytes"],
                    help="how tensors travel between workers (each value runs every S once)")
    ap.add_argument("--cuda-ipc", nargs="+", default=["on"], choices=["on", "off"],
                    help="GPU tensors between workers on one GPU by CUDA IPC handle, or through the host")
    ap.add_argument("--overlap", nargs="+", default=["off"], choices=["off", "on"],
                    help="the update alone, or beside the next step's rollout (rollout.overlap_update)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="print each variant's samples/s against the FLOP-bound limit at this many TFLOP/s")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    results = []
    variants = [(tr, ipc, s, ov) for tr in args.transports for ipc in args.cuda_ipc for s in args.stages
                for ov in args.overlap]
    for tr, ipc, s, ov in variants:
        print(f"variant: pipeline_stage_num={s}, tensor transport {tr}, CUDA IPC {ipc}, overlap {ov}", flush=True)
        results.append(run_variant(args.config, s, args.steps, overrides, args.sim_procs, tr, ipc == "on", ov == "on"))
        print("variant result:", json.dumps(results[-1]), flush=True)  # kept if a later variant is cut short
    base, base_samples = results[0]["env/steps_per_s"], results[0]["samples_per_s"]
    head = (f"{'S':>2} {'tensors':>9} {'overlap':>7} {'env-steps/s':>12} {'speedup':>8} {'samples/s':>10} {'ratio':>6} "
            f"{'step s':>7} {'rollout':>8} {'reset':>6} {'env':>7} {'infer':>7} {'update':>7} {'adv':>6} {'overhead':>9}")
    print(head)
    for r in results:
        print(f"   peak GPU GiB per rank: {r['gpu_peak_gib']}")
        tensors = r["transport"] + ("+ipc" if r["cuda_ipc"] else "")
        print(f"{r['stages']:>2} {tensors:>9} {'on' if r['overlap'] else 'off':>7} {r['env/steps_per_s']:>12.1f} "
              f"{r['env/steps_per_s'] / base:>7.2f}x {r['samples_per_s']:>10.1f} "
              f"{r['samples_per_s'] / base_samples:>5.2f}x {r['time/step']:>7.2f} {r['time/rollout']:>8.2f} "
              f"{r['time/env_reset']:>6.2f} {r['time/env']:>7.2f} {r['time/inference']:>7.2f} "
              f"{r['time/update']:>7.2f} {r['time/advantages']:>6.2f} {100 * r['overhead_frac']:>8.1f}%")
    report = {"config": args.config, "overrides": overrides, "results": results}
    if args.peak_tflops:
        f = policy_flops(args.config, overrides)
        limit = flop_limit(f["decision_flops"], f["sample_flops"], f["update_epochs"], args.peak_tflops)
        print(f"FLOP-bound: {f['decision_flops'] / 1e9:.1f} GFLOP per decision, {f['sample_flops'] / 1e9:.1f} per "
              f"trained sample x {f['update_epochs']} epochs; at {args.peak_tflops:g} TFLOP/s at most "
              f"{limit:.1f} samples/s")
        for r in results:
            r["flop_bound_ratio"] = r["samples_per_s"] / limit
            print(f"  S={r['stages']} overlap {'on' if r['overlap'] else 'off'}: {r['samples_per_s']:.1f} samples/s = "
                  f"{100 * r['flop_bound_ratio']:.1f}% of the limit")
        report["flop_bound"] = {**f, "peak_tflops": args.peak_tflops, "samples_per_s_limit": limit}
    return emit(report, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
