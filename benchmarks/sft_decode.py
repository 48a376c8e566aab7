"""SFT batch assembly with a cold video cache: episodes decoded one at a time vs side by side
(``python -m rlinf_isaac.sft --decode-workers N``).

Writes a LeRobot dataset of random 84 px episodes (both cameras) with the project's writer,
then times what ``SFTTrainer.batch_inputs`` does before the model runs: sample a batch and
take its items with ``LeRobotDataset.items`` (the videos of its uncached episodes decoded side
by side, then the frames gathered). Every run starts from an empty cache, so the first batches decode nearly one
episode per sample, as at the start of each SFT run (and of each epoch when the cache holds
less than the dataset).

    python benchmarks/sft_decode.py --episodes 64 --frames 200 --workers 1 2 4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlinf_isaac.demos.dataset import LeRobotDatasetWriter  # noqa: E402
from rlinf_isaac.sft.dataset import LeRobotDataset  # noqa: E402
from rlinf_isaac.sft.trainer import EpisodeWindowSampler  # noqa: E402


def write_dataset(root: Path, episodes: int, frames: int) -> None:
    """``episodes`` episodes of ``frames`` random-walk frames (video compression sees motion)."""
    rng = np.random.default_rng(0)
    with LeRobotDatasetWriter(root, fps=20) as writer:
        for _ in range(episodes):
            base = rng.integers(0, 255, (84, 84, 3)).astype(np.int16)
            drift = np.cumsum(rng.integers(-3, 4, (frames, 1, 1, 3)), axis=0)
            img = np.clip(base + drift, 0, 255).astype(np.uint8)  # [T, 84, 84, 3]
            writer.add_episode(main_images=img, wrist_images=img[:, ::-1].copy(),
                               states=rng.normal(size=(frames, 8)).astype(np.float32),
                               actions=rng.normal(size=(frames, 7)).astype(np.float32),
                               instruction="Stack the cubes.", success=True)


def time_epoch(root: Path, episodes: int, batch: int, workers: int) -> float:
    """Seconds to assemble every batch of one epoch from an empty cache holding all episodes."""
    ds = LeRobotDataset(root, max_cached_episodes=episodes)
    sampler = EpisodeWindowSampler([int(e["length"]) for e in ds.episodes], batch, episodes, seed=0)
    steps = len(ds) // batch
    t0 = time.perf_counter()
    for step in range(steps):
        ds.items(sampler.batch(step).tolist(), workers)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        write_dataset(root, a.episodes, a.frames)
        for workers in a.workers:
            s = time_epoch(root, a.episodes, a.batch, workers)
            rows.append({"workers": workers, "epoch_s": s, "episodes_per_s": a.episodes / s})
            print(f"decode workers {workers}: one cold epoch of {a.episodes} episodes x {a.frames} frames "
                  f"(batch {a.batch}) in {s:.2f} s, {a.episodes / s:.1f} episodes/s "
                  f"({rows[0]['epoch_s'] / s:.2f}x of {a.workers[0]} worker)")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
