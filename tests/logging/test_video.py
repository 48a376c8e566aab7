"""Rollout video: (table | wrist) tile layout, overlay, mp4 frame count and size, atomic write."""

import numpy as np
import pytest
import torch

from rlinf_isaac.logging import grid_video_tensor, make_grid, write_rollout_video
from rlinf_isaac.logging.video import GAP, VideoRecorder, frame_shape
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
                               rewards=[np.full(B, 0.25)] * T, successes=successes, fps=10, frame_size=168)
    assert path.exists() and not list(path.parent.glob(".*tmp*"))
    video = decode_video(path)
    # 84 px views upscaled x2 (pixel repetition) -> 168; 6 envs -> 2 rows x 3 cols, GAP px between
    assert video.shape == (T, 2 * 168 + GAP, 3 * 168 + 2 * GAP, 3)
    # green border on env 2 (row 0, col 2) from the success step t=5 for fps=10 frames
    x2 = 2 * (168 + GAP) + 1  # left edge of tile 2
    border = video[:, 84, x2].astype(int)  # middle row
    assert border[5, 1] > 150 and border[5, 0] < 120  # green at t=5
    assert border[11, 1] > 150  # still held at t=11 (< 10 frames later)
    assert abs(int(video[4, 84, x2, 1]) - int(base[2, 42, 0, 1])) < 60  # not green before


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


def _views(n, s=32, seed=0):
    """Distinct random table and wrist views uint8 [n, s, s, 3]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, s, s, 3), dtype=np.uint8), rng.integers(0, 255, (n, s, s, 3), dtype=np.uint8)


def test_frame_shape_is_a_grid_of_table_wrist_pairs():
    # 2:1 tiles: cols = ceil(sqrt(n / 2)), rows = ceil(n / cols)
    assert frame_shape(1, 256) == (256, 512)
    assert frame_shape(4, 256) == (2 * 256 + GAP, 2 * 512 + GAP)  # 2 x 2
    assert frame_shape(16, 256) == (6 * 256 + 5 * GAP, 3 * 512 + 2 * GAP)  # 6 rows x 3 cols
    assert frame_shape(64, 256, max_envs=16) == frame_shape(16, 256)  # bounded by max_envs
    assert frame_shape(1, 101) == (101 + 1, 202)  # odd sizes are padded to even (libx264 yuv420p)
    assert frame_shape(3, 101, header_lines=1)[0] % 2 == 0


def test_tile_left_half_is_table_right_half_is_wrist():
    main, wrist = _views(5)
    rec = VideoRecorder(frame_size=None, overlay=False, preview_max_side=None)
    frame = rec.compose([main, wrist])
    assert frame.shape == (*frame_shape(5, 32), 3) == (3 * 32 + 2 * GAP, 2 * 64 + GAP, 3)  # 3 rows x 2 cols
    for i in range(5):
        r, c = divmod(i, 2)
        y, x = r * (32 + GAP), c * (64 + GAP)
        assert np.array_equal(frame[y:y + 32, x:x + 32], main[i])  # left half: table view
        assert np.array_equal(frame[y:y + 32, x + 32:x + 64], wrist[i])  # right half: wrist view
    assert not frame[2 * (32 + GAP):, 64 + GAP:].any()  # the empty sixth cell is black
    rec.close()


def test_views_are_resized_to_frame_size():
    main, wrist = _views(2, 16)
    frame = VideoRecorder(frame_size=64, overlay=False).compose([main, wrist])
    assert frame.shape == (*frame_shape(2, 64), 3)
    assert np.array_equal(frame[:64, :64], main[0].repeat(4, 0).repeat(4, 1))  # x4: pixel repetition
    odd = VideoRecorder(frame_size=40, overlay=False).compose([main, wrist])  # 2.5x: bilinear
    assert odd.shape == (*frame_shape(2, 40), 3)


def test_overlay_text_band_and_success_marker():
    main, wrist = _views(4, 64)
    main[:] = wrist[:] = 128  # flat grey: any text or border shows
    plain = VideoRecorder(frame_size=None, overlay=False).compose([main, wrist])
    rec = VideoRecorder(frame_size=None, overlay=True, instruction="Stack the red cube on the blue cube.")
    frame = rec.compose([main, wrist], rewards=np.array([0.0, 1.0, 0.0, 0.5]),
                        successes=np.array([False, True, False, False]))
    band = rec.frame_hw[0] - plain.shape[0]  # the instruction's header band
    assert band > 0 and rec.header_lines == 1 and frame.shape == (*frame_shape(4, 64, header_lines=1), 3)
    assert (frame[:band] > 200).any()  # white text on black
    tiles = frame[band:]
    assert not np.array_equal(tiles[2:14, 2:60], plain[2:14, 2:60])  # "#0 t=0 r=0.00" band of tile 0
    green = lambda px: px[1] > 180 and px[0] < 100 and px[2] < 100  # noqa: E731
    x1 = 128 + GAP  # tile 1 (succeeded): green border, on both views
    assert green(tiles[40, x1]) and green(tiles[40, x1 + 127]) and green(tiles[63, x1 + 64])
    assert not green(tiles[40, 0]) and np.array_equal(tiles[40, 0], plain[40, 0])  # tile 0: no border
    assert (np.abs(tiles[:20, x1:x1 + 128].astype(int) - [40, 220, 60]).sum(-1) < 60).sum() > 30  # "SUCCESS" text
    assert np.array_equal(tiles[30:64, :128], plain[30:64, :128])  # below the text band the views are untouched


def test_success_marker_held_one_second_and_while_frozen():
    main, wrist = _views(2, 16)
    rec = VideoRecorder(frame_size=None, fps=3)
    s = lambda *v: np.array(v, bool)  # noqa: E731
    shown = []
    # env 0 succeeds at frame 0 and is reset (valid again from frame 1): shown for fps = 3 frames;
    # env 1 succeeds at frame 1 and stays frozen (valid False): shown until the video ends
    for succ, valid in [((1, 0), (1, 1)), ((0, 1), (1, 1))] + [((0, 0), (1, 0))] * 5:
        rec.compose([main, wrist], successes=s(*succ), valid=s(*valid))
        shown.append(rec._frozen_success | (rec._since_success < rec.fps))
    assert [bool(x[0]) for x in shown] == [True, True, True, False, False, False, False]
    assert [bool(x[1]) for x in shown] == [False, True, True, True, True, True, True]


def test_recorder_streams_chunks_into_an_mp4(tmp_path):
    main, wrist = _views(3, 32)
    per_step = {"main_images": np.repeat(main[:, None], 4, 1), "wrist_images": np.repeat(wrist[:, None], 4, 1)}
    rec = VideoRecorder(frame_size=64, max_envs=2, fps=10)
    for _ in range(2):  # 2 chunks of C = 4 steps, one frame per step
        rec.add_chunk(per_step, rewards=torch.zeros(3, 4), successes=torch.zeros(3, 4, dtype=torch.bool),
                      valid=torch.ones(3, 4, dtype=torch.bool), instructions=["stack"] * 3)
    # a backend with one frame per chunk: F = 1 frame stands for the chunk's C = 4 steps
    rec.add_chunk({k: v[:, :1] for k, v in per_step.items()}, rewards=torch.ones(3, 4))
    video = rec.finish()
    assert video.num_frames == 9 and rec._steps == 12 and video.frame_hw == frame_shape(2, 64, header_lines=1)
    assert video.preview.shape == (9, *video.frame_hw, 3)  # small: not downscaled
    back = decode_video(video.save(tmp_path / "v" / "x.mp4"))
    assert back.shape == (9, *video.frame_hw, 3)
    with pytest.raises(ValueError, match="no frames"):
        VideoRecorder().finish()


def test_preview_for_tensorboard_is_downscaled():
    main, wrist = _views(16, 64)
    rec = VideoRecorder(frame_size=256, overlay=False, preview_max_side=512)
    rec.add_chunk([main[:, None], wrist[:, None]])
    video = rec.finish()
    h, w = video.frame_hw  # 1556 x 1544: reduced by 4
    assert video.preview.shape == (1, h // 4, w // 4, 3)
