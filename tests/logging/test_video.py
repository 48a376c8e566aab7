"""Rollout video: grid tiling, overlay, mp4 frame count and size, atomic write."""

import numpy as np
import pytest
import torch

from rlinf_isaac.logging import grid_video_tensor, make_grid, write_rollout_video
from rlinf_isaac.sft.dataset import decode_video


def test_make_grid_tiles_row_major():
    frames = np.stack([np.full((4, 6, 3), 10 * (b + 1), np.uint8) for b in range(5)])  # [5,4,6,3]
    grid = make_grid(frames)
    # 5 envs -> cols = ceil(sqrt(5)) = 3, rows = ceil(5 / 3) = 2 -> [2*4, 3*6, 3]
    assert grid.shape == (8, 18, 3)
    assert grid[0, 0, 0] == 10 and grid[0, 6, 0] == 20 and grid[0, 12, 0] == 30
    assert grid[4, 0, 0] == 40 and grid[4, 6, 0] == 50 and grid[4, 12, 0] == 0  # empty cell black
    assert make_grid(torch.from_numpy(frames), max_envs=4).shape == (8, 12, 3)  # 2 x 2


def test_grid_video_tensor_for_tensorboard():
    frames = [np.zeros((4, 8, 8, 3), np.uint8) for _ in range(3)]
    v = grid_video_tensor(frames)
    assert v.shape == (1, 3, 3, 16, 16) and v.dtype == torch.uint8  # [N, T, C, H, W]


def test_write_rollout_video_decodes(tmp_path):
    T, B = 12, 6
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (B, 84, 84, 3), dtype=np.uint8)
    frames = [torch.from_numpy(base) for _ in range(T)]
    successes = [np.arange(B) == 2 if t == 5 else np.zeros(B, bool) for t in range(T)]
    path = write_rollout_video(tmp_path / "vid" / "rollout.mp4", frames,
                               rewards=[np.full(B, 0.25)] * T, successes=successes, fps=10)
    assert path.exists() and not list(path.parent.glob(".*tmp*"))
    video = decode_video(path)
    # 84 px tiles upscaled x2 (>= 160 px) -> 168; 6 envs -> 2 rows x 3 cols
    assert video.shape == (T, 2 * 168, 3 * 168, 3)
    # green border on env 2 (row 0, col 2) from the success step t=5 for fps=10 frames
    border = video[:, 84, 2 * 168 + 1].astype(int)  # left edge of tile 2, middle row
    assert border[5, 1] > 150 and border[5, 0] < 120  # green at t=5
    assert border[11, 1] > 150  # still held at t=11 (< 10 frames later)
    assert abs(int(video[4, 84, 2 * 168 + 1, 1]) - int(base[2, 42, 0, 1])) < 60  # not green before


def test_overlay_off_is_plain_grid(tmp_path):
    frames = [np.full((1, 160, 160, 3), 100, np.uint8)] * 3
    video = decode_video(write_rollout_video(tmp_path / "p.mp4", frames, overlay=False))
    assert video.shape == (3, 160, 160, 3) and abs(video.mean() - 100) < 2


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="frames is empty"):
        write_rollout_video(tmp_path / "x.mp4", [])
    with pytest.raises(ValueError, match="rewards has 1 steps"):
        write_rollout_video(tmp_path / "x.mp4", [np.zeros((1, 8, 8, 3), np.uint8)] * 2,
                            rewards=[np.zeros(1)])
    with pytest.raises(ValueError, match="uint8"):
        make_grid(np.zeros((2, 8, 8, 3), np.float32))
