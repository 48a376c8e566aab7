"""LeRobotDataset: items, action-chunk padding, image fidelity, cache bound, errors."""


import numpy as np
import pytest
import torch

from rlinf_isaac.demos.dataset import LeRobotDatasetWriter
from rlinf_isaac.sft import DatasetFormatError, LeRobotDataset
from tests.demos.test_dataset import INSTR, episode


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft") / "ds"
    eps = [episode(20, 0), episode(7, 1), episode(10, 2)]
    with LeRobotDatasetWriter(root) as w:
        for i, ep in enumerate(eps):
            w.add_episode(**ep, success=i != 1)
    return root, eps


def test_items_shapes_and_exact_values(written):
    root, eps = written
    ds = LeRobotDataset(root, action_horizon=16)
    assert len(ds) == 37 and len(ds.episodes) == 3
    item = ds[20 + 3]  # episode 1 (7 frames), frame 3
    assert (item["episode_index"], item["frame_index"]) == (1, 3)
    assert item["main_image"].shape == (84, 84, 3) and item["main_image"].dtype == torch.uint8
    assert item["wrist_image"].shape == (84, 84, 3)
    assert item["state"].dtype == torch.float32 and item["state"].shape == (8,)
    torch.testing.assert_close(item["state"], torch.from_numpy(eps[1]["states"][3]), rtol=0, atol=0)
    assert item["instruction"] == INSTR
    # frames 3..6 exist (4 real actions), the other 12 repeat the last action (frame 6)
    acts = torch.from_numpy(eps[1]["actions"])
    assert item["actions"].shape == (16, 7) and item["action_mask"].tolist() == [True] * 4 + [False] * 12
    torch.testing.assert_close(item["actions"][:4], acts[3:7], rtol=0, atol=0)
    torch.testing.assert_close(item["actions"][4:], acts[6].expand(12, 7), rtol=0, atol=0)
    assert ds[0]["action_mask"].all()  # episode 0 has 20 >= 16 frames after frame 0


def test_images_close_after_lossy_codec(written):
    root, eps = written
    ds = LeRobotDataset(root)
    main = ds.frames(2)["main_image"]
    assert main.shape == eps[2]["main_images"].shape
    # lossy H.264 (CRF 18): mean abs error on these smooth frames measured ~2 / 255; bound 4
    assert np.abs(main.astype(int) - eps[2]["main_images"]).mean() < 4.0
    wrist = ds.frames(2)["wrist_image"]
    assert np.abs(wrist.astype(int) - eps[2]["wrist_images"]).mean() < 4.0


def test_cache_is_bounded(written):
    root, _ = written
    ds = LeRobotDataset(root, max_cached_episodes=2)
    for i in range(len(ds)):
        ds[i]
    assert list(ds._video_cache) == [1, 2]  # LRU kept the last two episodes


def test_parallel_prefetch_decodes_the_same_frames_and_caches_in_order(written):
    root, _ = written
    one_by_one = LeRobotDataset(root)
    parallel = LeRobotDataset(root, max_cached_episodes=2)
    # frames 20..36 belong to episodes 1 and 2; a repeated episode is decoded once
    parallel.prefetch([parallel.episode_of(i) for i in (30, 21, 22)], workers=4)
    assert list(parallel._video_cache) == [2, 1]
    for ep in (1, 2):
        for key in ("main_image", "wrist_image"):
            np.testing.assert_array_equal(parallel._video_cache[ep][key], one_by_one.frames(ep)[key])
    # a listed episode already cached is kept (made recent, not decoded again); the unlisted
    # one is evicted for the new one
    cached = parallel._video_cache[2]
    parallel.prefetch([0, 2], workers=4)
    assert list(parallel._video_cache) == [2, 0] and parallel._video_cache[2] is cached


def test_stats_and_statistics_accessors(written):
    root, eps = written
    ds = LeRobotDataset(root)
    assert set(ds.stats()) == {"observation.state", "action"}
    all_actions = np.concatenate([e["actions"] for e in eps])
    np.testing.assert_array_equal(ds.all_actions().numpy(), all_actions)
    np.testing.assert_allclose(ds.stats()["action"]["max"], all_actions.max(0), rtol=1e-7)


def test_missing_and_malformed_files_are_named(written, tmp_path):
    with pytest.raises(DatasetFormatError, match="folder not found"):
        LeRobotDataset(tmp_path / "nope")
    (tmp_path / "empty" / "meta").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="info.json"):
        LeRobotDataset(tmp_path / "empty")
    root, _ = written
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(root, broken)
    (broken / "videos/chunk-000/observation.images.wrist/episode_000001.mp4").unlink()
    ds = LeRobotDataset(broken)
    with pytest.raises(DatasetFormatError, match="episode_000001.mp4"):
        ds.frames(1)
    (broken / "data/chunk-000/episode_000002.parquet").unlink()
    with pytest.raises(DatasetFormatError, match="episode_000002.parquet"):
        LeRobotDataset(broken)
    (broken / "meta/stats.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match="malformed JSON.*stats.json"):
        LeRobotDataset(broken)
