"""Rollout videos: tile a batch of env frames, overlay step/reward/success, write an mp4.

``make_grid`` tiles one time step of B env frames into a near-square grid (also what a
TensorBoard ``add_video`` call wants per frame; ``grid_video_tensor`` builds the whole
[N=1, T, C, H', W'] tensor). ``write_rollout_video`` upscales small renders (84 px ->
168 px by pixel repetition) so the overlay text, drawn with Pillow's built-in bitmap font
(no font file), stays legible, then encodes H.264/yuv420p through imageio-ffmpeg to a
temporary file that is renamed into place.

Success display: a tile gets a green border for ``fps`` frames (one second) after a step
whose success flag is set, because an env that succeeds ends its episode on that step and
is reset right after (a one-frame flash would be invisible).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["make_grid", "grid_video_tensor", "write_rollout_video"]

_GREEN = np.array([40, 220, 60], np.uint8)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for n tiles: cols = ceil(sqrt(n))."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def make_grid(frames_t: Any, max_envs: int = 16) -> np.ndarray:
    """Tile uint8 [B, H, W, 3] frames of one time step into uint8 [rows*H, cols*W, 3].

    Only the first ``min(B, max_envs)`` envs are shown, row-major; empty cells are black.
    """
    x = _to_numpy(frames_t)
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ValueError(f"make_grid: frames_t must be uint8 [B, H, W, 3], got "
                         f"{x.dtype} {tuple(x.shape)}")
    n = min(x.shape[0], max_envs)
    rows, cols = _grid_shape(n)
    b, h, w, _ = x.shape
    pad = np.zeros((rows * cols - n, h, w, 3), np.uint8)
    tiles = np.concatenate([x[:n], pad])  # [rows*cols, H, W, 3]
    grid = tiles.reshape(rows, cols, h, w, 3).transpose(0, 2, 1, 3, 4)  # [rows, H, cols, W, 3]
    return np.ascontiguousarray(grid.reshape(rows * h, cols * w, 3))


def grid_video_tensor(frames: Sequence[Any], max_envs: int = 16):
    """Frames (list over T of uint8 [B, H, W, 3]) -> torch uint8 [1, T, 3, H', W'] for
    ``SummaryWriter.add_video``."""
    import torch

    grids = np.stack([make_grid(f, max_envs) for f in frames])  # [T, H', W', 3]
    return torch.from_numpy(grids).permute(0, 3, 1, 2).unsqueeze(0)  # [1, T, 3, H', W']


def _upscale(x: np.ndarray, min_tile_px: int) -> np.ndarray:
    """Nearest-neighbour integer upscale of [B, H, W, 3] so that min(H, W) >= min_tile_px."""
    k = max(1, math.ceil(min_tile_px / min(x.shape[1], x.shape[2])))
    return x if k == 1 else x.repeat(k, axis=1).repeat(k, axis=2)


def _annotate(tiles: np.ndarray, step: int, rewards, success_hold) -> np.ndarray:
    """Draw 'step, reward' (and SUCCESS) on each tile [N, H, W, 3]; green border if held."""
    from PIL import Image, ImageDraw, ImageFont  # lazy

    loader = getattr(ImageFont, "load_default_imagefont", None)
    font = loader() if loader is not None else ImageFont.load_default()
    out = tiles.copy()
    for i in range(out.shape[0]):
        if success_hold is not None and success_hold[i]:
            bw = max(2, out.shape[1] // 40)
            out[i, :bw], out[i, -bw:], out[i, :, :bw], out[i, :, -bw:] = (_GREEN,) * 4
        img = Image.fromarray(out[i])
        draw = ImageDraw.Draw(img)
        lines = [f"t={step}"]
        if rewards is not None:
            lines.append(f"r={float(rewards[i]):.2f}")
        if success_hold is not None and success_hold[i]:
            lines.append("SUCCESS")
        text = " ".join(lines)
        box = draw.textbbox((4, 4), text, font=font)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((4, 4), text, fill=(255, 255, 255), font=font)
        out[i] = np.asarray(img)
    return out


def _pad_even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)))


def write_rollout_video(path: str | os.PathLike, frames: Sequence[Any],
                        rewards: Sequence[Any] | None = None,
                        successes: Sequence[Any] | None = None, fps: int = 20,
                        max_envs: int = 16, overlay: bool = True,
                        min_tile_px: int = 160) -> Path:
    """Write a tiled rollout video and return its path.

    frames: list over time T of uint8 [B, H, W, 3] (numpy or torch).
    rewards: None or list over T of float [B]. successes: None or list over T of bool [B].
    Shows the first ``max_envs`` envs; tiles smaller than ``min_tile_px`` are upscaled.
    """
    import imageio.v2 as iio  # lazy

    if len(frames) == 0:
        raise ValueError("write_rollout_video: frames is empty (need a list over time of "
                         "uint8 [B, H, W, 3])")
    for name, seq in (("rewards", rewards), ("successes", successes)):
        if seq is not None and len(seq) != len(frames):
            raise ValueError(f"write_rollout_video: {name} has {len(seq)} steps, frames has "
                             f"{len(frames)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.mp4'}")
    writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                            pixelformat="yuv420p", macro_block_size=2,
                            ffmpeg_params=["-crf", "20", "-preset", "veryfast"],
                            ffmpeg_log_level="error")
    hold = None
    try:
        for t, f in enumerate(frames):
            x = _to_numpy(f)
            if x.ndim != 4 or x.dtype != np.uint8:
                raise ValueError(f"write_rollout_video: frames[{t}] must be uint8 [B, H, W, 3], "
                                 f"got {x.dtype} {tuple(x.shape)}")
            n = min(x.shape[0], max_envs)
            tiles = _upscale(x[:n], min_tile_px)
            if overlay:
                if successes is not None:
                    hold = np.zeros(n, np.int64) if hold is None else hold
                    succ = _to_numpy(successes[t]).astype(bool).reshape(-1)[:n]
                    hold = np.where(succ, fps, np.maximum(hold - 1, 0))  # frames left to show
                r = None if rewards is None else _to_numpy(rewards[t]).reshape(-1)[:n]
                tiles = _annotate(tiles, t, r, None if hold is None else hold > 0)
            writer.append_data(_pad_even(make_grid(tiles, max_envs)))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, path)
    return path
