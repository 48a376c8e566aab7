"""LeRobotDatasetWriter: layout, meta files, exact parquet contents, overwrite and crash safety."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rlinf_isaac.demos.dataset import (
    LeRobotDatasetWriter,
    compute_feature_stats,
    write_video,
)
from rlinf_isaac.sft.dataset import decode_video

INSTR = "Stack the red cube on the blue cube."


def scene(T, H=84, W=84, shift=0):
    """Smooth rendered-like frames uint8 [T, H, W, 3]: gradient + a moving red and a blue square."""
    yy, xx = np.mgrid[:H, :W]
    base = np.stack([60 + xx * 1.5, 80 + yy, np.full_like(xx, 140.0)], -1)
    out = []
    for t in range(T):
        f = base.copy()
        x0 = 10 + (t + shift) % 50
        f[30:45, x0:x0 + 15] = [220, 30, 30]
        f[50:62, 50:62] = [30, 30, 220]
        out.append(f)
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def episode(T, seed):
    rng = np.random.default_rng(seed)
    return dict(main_images=scene(T, shift=seed), wrist_images=scene(T, shift=seed + 7)[:, ::-1],
                states=rng.normal(size=(T, 8)).astype(np.float32),
                actions=rng.normal(size=(T, 7)).astype(np.float32), instruction=INSTR)


def test_layout_meta_and_exact_parquet(tmp_path):
    root = tmp_path / "ds"
    eps = [episode(12, 0), episode(9, 1)]
    with LeRobotDatasetWriter(root, fps=20) as w:
        assert w.add_episode(**eps[0], success=True) == 0
        assert w.add_episode(**eps[1], success=False,
                             rewards=np.arange(9, dtype=np.float32)) == 1
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.0" and info["fps"] == 20
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 21, 1)
    assert info["chunks_size"] == 1000 and info["total_videos"] == 4
    feats = info["features"]
    for key in ("observation.images.table", "observation.images.wrist", "observation.state",
                "action", "timestamp", "frame_index", "episode_index", "index", "task_index",
                "next.reward", "next.done", "next.success"):
        assert key in feats and "dtype" in feats[key] and "shape" in feats[key]
    assert feats["observation.images.table"]["dtype"] == "video"
    assert feats["observation.images.table"]["shape"] == [84, 84, 3]
    assert feats["observation.state"]["shape"] == [8] and feats["action"]["shape"] == [7]
    modality = json.loads((root / "meta/modality.json").read_text())
    assert modality["state"]["eef_rotation"] == {"start": 3, "end": 6, "rotation_type": "axis_angle"}
    assert modality["state"]["gripper"] == {"start": 6, "end": 8}
    assert modality["action"]["gripper"] == {"start": 6, "end": 7}
    assert modality["video"]["table"]["original_key"] == "observation.images.table"
    assert "human.task_description" in modality["annotation"]
    tasks = [json.loads(line) for line in (root / "meta/tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": INSTR}]
    rows = [json.loads(line) for line in (root / "meta/episodes.jsonl").read_text().splitlines()]
    assert [r["length"] for r in rows] == [12, 9] and rows[0]["tasks"] == [INSTR]
    # parquet: states/actions exact, global index continues across episodes
    tab = pq.read_table(root / "data/chunk-000/episode_000001.parquet").to_pydict()
    np.testing.assert_array_equal(np.array(tab["observation.state"], np.float32), eps[1]["states"])
    np.testing.assert_array_equal(np.array(tab["action"], np.float32), eps[1]["actions"])
    assert tab["index"] == list(range(12, 21)) and tab["episode_index"] == [1] * 9
    assert tab["timestamp"][3] == pytest.approx(3 / 20)
    assert tab["next.reward"] == list(range(9)) and tab["next.done"] == [False] * 8 + [True]
    assert tab["next.success"] == [False] * 9
    tab0 = pq.read_table(root / "data/chunk-000/episode_000000.parquet").to_pydict()
    # rewards=None and success=True -> sparse reward 1 on the last frame only
    assert tab0["next.reward"] == [0.0] * 11 + [1.0] and tab0["next.success"][-1] is True
    # stats over both episodes' 21 frames
    stats = json.loads((root / "meta/stats.json").read_text())
    all_states = np.concatenate([eps[0]["states"], eps[1]["states"]]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], all_states.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["observation.state"]["q99"],
                               np.quantile(all_states, 0.99, axis=0), rtol=1e-12)
    assert set(stats["action"]) == {"mean", "std", "min", "max", "q01", "q99"}


def test_video_is_lossy_but_close(tmp_path):
    frames = scene(30)
    write_video(tmp_path / "v.mp4", frames, fps=20)
    back = decode_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape and back.dtype == np.uint8
    # H.264 CRF 18 yuv420p: mean abs error measured ~2.0 grey levels on this scene; bound 4.
    assert np.abs(back.astype(int) - frames).mean() < 4.0


def test_compute_feature_stats_hand_example():
    x = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    s = compute_feature_stats(x)
    assert s["mean"] == [2.0, 1.0] and s["min"] == [0.0, 1.0] and s["max"] == [4.0, 1.0]
    assert s["std"][0] == pytest.approx(np.sqrt(8 / 3))  # ((-2)^2 + 0 + 2^2) / 3 = 8/3
    # linear interpolation at rank q * (N - 1): q01 -> rank 0.02 -> 0 + 0.02 * (2 - 0) = 0.04
    assert s["q01"][0] == pytest.approx(0.04)
    assert s["q99"][0] == pytest.approx(3.96)  # rank 1.98 -> 2 + 0.98 * (4 - 2) = 3.96


def test_refuses_overwrite_and_overwrites_datasets_only(tmp_path):
    root = tmp_path / "ds"
    with LeRobotDatasetWriter(root) as w:
        w.add_episode(**episode(4, 0), success=True)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        LeRobotDatasetWriter(root)
    with LeRobotDatasetWriter(root, overwrite=True) as w:  # replaces the old dataset
        w.add_episode(**episode(3, 5), success=False)
    assert json.loads((root / "meta/info.json").read_text())["total_frames"] == 3
    other = tmp_path / "not_a_dataset"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not one"):
        LeRobotDatasetWriter(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_crash_after_two_episodes_leaves_readable_dataset(tmp_path):
    from rlinf_isaac.sft import LeRobotDataset

    root = tmp_path / "ds"
    w = LeRobotDatasetWriter(root)
    w.add_episode(**episode(5, 0), success=True)
    w.add_episode(**episode(6, 1), success=False)
    del w  # "killed": close() never runs
    ds = LeRobotDataset(root, action_horizon=4)
    assert len(ds.episodes) == 2 and len(ds) == 11
    assert not list(root.rglob(".*.tmp*"))  # no temporary files left behind
    assert ds[10]["frame_index"] == 5 and ds[10]["episode_index"] == 1


def test_bad_inputs_are_named(tmp_path):
    w = LeRobotDatasetWriter(tmp_path / "ds")
    ep = episode(4, 0)
    with pytest.raises(ValueError, match="actions has 3 frames"):
        w.add_episode(**{**ep, "actions": ep["actions"][:3]}, success=True)
    with pytest.raises(TypeError, match="main_images must be uint8"):
        w.add_episode(**{**ep, "main_images": ep["main_images"].astype(np.float32)}, success=True)
    with pytest.raises(ValueError, match="even H, W"):
        w.add_episode(**{**ep, "wrist_images": ep["wrist_images"][:, :83]}, success=True)
    bad = ep["states"].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="states contain NaN"):
        w.add_episode(**{**ep, "states": bad}, success=True)
