"""Is an RL run's weight change signal or noise? Compare it with a random change of the same size.

For each run checkpoint (``global_step_N`` dirs of one run), prints how far its trainable
weights moved from the starting (SFT) policy: the RMS of the change relative to the weights'
own RMS, and the cosine between successive changes (about 0 for a random walk, clearly
positive when the updates keep one direction). With ``--perturb-out DIR`` it also writes, for
the last checkpoint, a copy whose trainable weights are the start plus Gaussian noise with the
same RMS per tensor (value head kept), to evaluate side by side:

    python benchmarks/update_noise_probe.py logs/RUN/checkpoints/global_step_{75,100,116} \\
        --perturb-out /tmp/probe/random_116
    bash eval_embodiment.sh cpu_quickstart runner.eval_episodes=100 env.eval.num_workers=2 \\
        runner.resume_dir=/tmp/probe/random_116

If the random change lowers success as much as the run's did, the run's updates were mostly
noise. A random change of the same RMS moves actions far less than a trained one, so read the
comparison with care.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _start_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """The trainable weights of the policy the run started from (its actor.model config)."""
    from rlinf_isaac.config.schema import AlgorithmConfig
    from rlinf_isaac.config.structured import from_dict
    from rlinf_isaac.models.registry import PolicyConfig, build_policy

    model = json.loads((ckpt / "meta.json").read_text())["config"]["actor"]["model"]
    cfg = from_dict(PolicyConfig, model, "actor.model")
    return {k: v.float() for k, v in build_policy(cfg, AlgorithmConfig(), seed=0).trainable_state_dict().items()}


def _flat(d: dict[str, torch.Tensor], keys: list[str]) -> torch.Tensor:
    return torch.cat([d[k].float().reshape(-1) for k in keys])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path, help="global_step_N dirs of one run, oldest first")
    p.add_argument("--perturb-out", type=Path, help="write the random-change copy of the last checkpoint here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    start = _start_weights(args.checkpoints[0])
    keys = sorted(k for k in start if not k.startswith("value_head."))
    w0 = _flat(start, keys)
    prev_delta = prev_step = None
    for ckpt in args.checkpoints:
        delta = _flat(load_file(str(ckpt / "model.safetensors")), keys) - w0
        step = delta if prev_delta is None else delta - prev_delta  # this checkpoint's increment
        line = (f"{ckpt.name}: |change| / |weights| = {float(delta.norm() / w0.norm()):.2e}, "
                f"change RMS {float(delta.pow(2).mean().sqrt()):.2e}")
        if prev_step is not None:
            cos = torch.nn.functional.cosine_similarity(prev_step, step, dim=0)
            line += f", cos(previous increment, this increment) = {float(cos):+.3f}"
        print(line)
        prev_delta, prev_step = delta, step
    if args.perturb_out:
        last = args.checkpoints[-1]
        trained = load_file(str(last / "model.safetensors"))
        gen = torch.Generator().manual_seed(args.seed)
        out = dict(trained)
        for k in keys:
            rms = (trained[k].float() - start[k]).pow(2).mean().sqrt()
            noise = torch.randn(start[k].shape, generator=gen) * rms
            out[k] = (start[k] + noise).to(trained[k].dtype).contiguous()
        if args.perturb_out.exists():
            shutil.rmtree(args.perturb_out)
        shutil.copytree(last, args.perturb_out)
        save_file(out, str(args.perturb_out / "model.safetensors"))
        meta_path = args.perturb_out / "meta.json"  # the loader checks every file's size
        meta = json.loads(meta_path.read_text())
        meta["files"]["model.safetensors"] = (args.perturb_out / "model.safetensors").stat().st_size
        meta_path.write_text(json.dumps(meta, indent=2))
        print(f"random change of {last.name}'s size per tensor written to {args.perturb_out}")


if __name__ == "__main__":
    main()
