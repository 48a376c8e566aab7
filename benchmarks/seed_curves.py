"""Mean curves over several runs of one recipe (seeds): success against wall time.

Reads each run's TensorBoard scalars (examples/read_tensorboard.py's reader) and writes one PNG
with, per global-step bin of ``--bin`` steps, the mean over runs of the training success
(``env/success_once``) and of the in-run evaluation (``eval/success_rate``), against the runs'
mean training seconds (``train/wall_time_s``). Prints the table it plots.

    python benchmarks/seed_curves.py logs/seeds/run* --bin 10 --png docs/results/cpu_quickstart_15min_7seeds_success_vs_wall_time.png
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from read_tensorboard import WALL, load_scalars, plot_series  # noqa: E402


def binned(runs: list[dict], tag: str, width: int) -> dict[int, float]:
    """bin (first global step of the bin) -> mean over runs of each run's mean of ``tag`` in it."""
    per_bin: dict[int, list[float]] = {}
    for scalars in runs:
        by_bin: dict[int, list[float]] = {}
        for step, _, v in scalars.get(tag, []):
            by_bin.setdefault(step // width * width, []).append(v)
        for b, vs in by_bin.items():
            per_bin.setdefault(b, []).append(statistics.fmean(vs))
    return {b: statistics.fmean(vs) for b, vs in sorted(per_bin.items()) if len(vs) == len(runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="log dirs (each holds tensorboard/)")
    ap.add_argument("--bin", type=int, default=10, help="global steps per bin of the training success")
    ap.add_argument("--png", required=True)
    args = ap.parse_args()
    runs = [load_scalars(r) for r in args.runs]
    secs = binned(runs, WALL, args.bin)
    train = binned(runs, "env/success_once", args.bin)
    evals = binned(runs, "eval/success_rate", 1)  # evaluations land on single steps
    eval_secs = binned(runs, WALL, 1)
    series = {
        f"env/success_once (train), mean of {len(runs)} runs, {args.bin}-step bins":
            ([secs[b] for b in train], list(train.values())),
        f"eval/success_rate, mean of {len(runs)} runs": ([eval_secs[s] for s in evals], list(evals.values())),
    }
    print("bin  wall_s  train_success")
    for b, v in train.items():
        print(f"{b:>4} {secs[b]:7.0f}  {v:.3f}")
    print("step  eval_success:", ", ".join(f"{s}: {v:.3f}" for s, v in evals.items()))
    plot_series(series, Path(args.png), "training seconds (mean over runs)", "success, mean over runs",
          y_range=(0.0, 1.0))


if __name__ == "__main__":
    main()
