"""Read a LeRobot v2 demonstration dataset for flow-matching behaviour cloning.

Each item is one frame ``t`` of one episode with the next ``action_horizon`` actions
``a_t .. a_{t+C-1}`` (C = action_horizon). Near the episode end the chunk is padded by
repeating the last action and ``action_mask`` marks the real ones.

States/actions of all episodes are loaded from parquet at construction (small). Videos
are decoded per episode on first use into an in-memory LRU cache of at most
``max_cached_episodes`` episodes (decoding an 84x84 episode of 200 frames takes ~10 ms);
iterate in episode order (or shuffle within a window of episodes) to decode each episode
once per epoch.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["LeRobotDataset", "DatasetFormatError", "decode_video"]

_VIDEO_KEYS = {"main_image": "observation.images.table", "wrist_image": "observation.images.wrist"}


class DatasetFormatError(FileNotFoundError):
    """A LeRobot dataset is missing a file or holds a malformed one."""


def decode_video(path: str | os.PathLike) -> np.ndarray:
    """Decode an mp4 to uint8 [T, H, W, 3] (RGB) with imageio-ffmpeg, else OpenCV's ffmpeg."""
    try:
        import imageio_ffmpeg  # lazy
    except ImportError:
        frames = _decode_cv2(path)
    else:
        gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(gen)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in gen]
    if not frames:
        raise DatasetFormatError(f"video {str(path)!r} holds no frames")
    return np.stack(frames)  # [T, H, W, 3]


def _decode_cv2(path: str | os.PathLike) -> list[np.ndarray]:
    try:
        import cv2
    except ImportError:
        raise ImportError("decoding LeRobot videos needs imageio-ffmpeg (pip install imageio-ffmpeg) "
                          "or OpenCV (pip install opencv-python-headless)") from None
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr[..., ::-1].copy())  # BGR -> RGB
    finally:
        cap.release()
    return frames


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DatasetFormatError(
            f"LeRobot dataset file missing: {str(path)!r} ({what}); datasets are written by "
            f"rlinf_isaac.demos.dataset.LeRobotDatasetWriter (python -m rlinf_isaac.demos.expert "
            f"--record DIR)")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"malformed JSON in {str(path)!r}: {err}") from None


class LeRobotDataset(Dataset):
    """Frames of a LeRobot v2 dataset as flow-matching SFT samples.

    root: dataset folder (with meta/info.json). action_horizon: C, actions per sample.
    max_cached_episodes: bound of the decoded-video LRU cache (episodes, both cameras).

    ``__getitem__`` returns torch ``main_image`` uint8 [H, W, 3], ``wrist_image`` uint8 [H, W, 3],
    ``state`` float32 [8], ``actions`` float32 [C, 7], ``action_mask`` bool [C],
    ``instruction`` str, ``episode_index`` int, ``frame_index`` int.
    """

    def __init__(self, root: str | os.PathLike, action_horizon: int = 16,
                 max_cached_episodes: int = 8) -> None:
        if action_horizon < 1:
            raise ValueError(f"LeRobotDataset: action_horizon must be >= 1, got {action_horizon}")
        if max_cached_episodes < 1:
            raise ValueError(f"LeRobotDataset: max_cached_episodes must be >= 1, "
                             f"got {max_cached_episodes}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetFormatError(f"LeRobot dataset folder not found: {str(self.root)!r}")
        self.action_horizon = action_horizon
        self.max_cached_episodes = max_cached_episodes
        meta = self.root / "meta"
        self.info = _read_json(meta / "info.json", "dataset info: fps, features, paths")
        for key in ("data_path", "video_path", "chunks_size", "total_episodes", "fps"):
            if key not in self.info:
                raise DatasetFormatError(f"malformed {str(meta / 'info.json')!r}: key {key!r} "
                                         f"missing")
        self._stats = _read_json(meta / "stats.json", "state/action statistics")
        tasks = _read_json(meta / "tasks.jsonl", "instructions")
        self.tasks = {int(t["task_index"]): t["task"] for t in tasks}
        self.episodes = _read_json(meta / "episodes.jsonl", "episode lengths")
        self._load_tables()
        self._video_cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def _episode_path(self, template_key: str, ep: int, **kw: Any) -> Path:
        chunk = ep // int(self.info["chunks_size"])
        return self.root / self.info[template_key].format(episode_chunk=chunk,
                                                          episode_index=ep, **kw)

    def _load_tables(self) -> None:
        import pyarrow.parquet as pq  # lazy

        states, actions, tasks, index = [], [], [], []
        for pos, row in enumerate(self.episodes):
            ep = int(row["episode_index"])
            if ep != pos:
                raise DatasetFormatError(f"malformed {str(self.root / 'meta/episodes.jsonl')!r}: "
                                         f"line {pos} has episode_index {ep}, expected {pos}")
            path = self._episode_path("data_path", ep)
            if not path.is_file():
                raise DatasetFormatError(f"LeRobot dataset file missing: {str(path)!r} "
                                         f"(parquet of episode {ep})")
            tab = pq.read_table(path, columns=["observation.state", "action", "task_index"])
            st = np.asarray(tab.column("observation.state").to_pylist(), np.float32)  # [T, 8]
            ac = np.asarray(tab.column("action").to_pylist(), np.float32)  # [T, 7]
            if st.ndim != 2 or ac.ndim != 2 or len(st) != int(row["length"]):
                raise DatasetFormatError(f"malformed {str(path)!r}: states {st.shape}, actions "
                                         f"{ac.shape}, episodes.jsonl length {row['length']}")
            states.append(torch.from_numpy(st))
            actions.append(torch.from_numpy(ac))
            tasks.append(int(tab.column("task_index")[0].as_py()))
            index += [(ep, t) for t in range(len(st))]
        self._states, self._actions, self._task_of = states, actions, tasks
        self._index = torch.tensor(index, dtype=torch.int64).reshape(-1, 2)  # [N, 2]

    def __len__(self) -> int:
        return int(self._index.shape[0])

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    def modality(self) -> dict[str, Any]:
        """meta/modality.json (GR00T's state/action slices, video and annotation keys)."""
        return _read_json(self.root / "meta" / "modality.json", "GR00T modality map")

    def video_shape(self, video_key: str) -> tuple[int, int, int]:
        """(H, W, 3) of ``video_key`` (e.g. "observation.images.table") from info.json."""
        try:
            return tuple(self.info["features"][video_key]["shape"])  # type: ignore[return-value]
        except KeyError:
            raise DatasetFormatError(f"malformed info.json: no features.{video_key}.shape") from None

    def all_states(self) -> torch.Tensor:
        """Every frame's state, float32 [N, 8], episodes in order."""
        return torch.cat(self._states)

    def all_actions(self) -> torch.Tensor:
        """Every frame's action, float32 [N, 7], episodes in order."""
        return torch.cat(self._actions)

    def stats(self) -> dict[str, dict[str, list[float]]]:
        """meta/stats.json: ``{"observation.state"|"action": {mean,std,min,max,q01,q99}}``."""
        return self._stats

    def frames(self, episode_index: int) -> dict[str, np.ndarray]:
        """Decoded videos of one episode: ``{"main_image", "wrist_image"}`` uint8 [T, H, W, 3]."""
        cached = self._video_cache.get(episode_index)
        if cached is not None:
            self._video_cache.move_to_end(episode_index)
            return cached
        out = self._decode_episode(episode_index)
        self._cache(episode_index, out)
        return out

    def prefetch(self, episode_indices: Sequence[int], workers: int) -> None:
        """Decode the listed episodes that are not cached yet, ``workers`` at a time (threads:
        the decoders run outside the GIL), and cache them in the listed order; listed episodes
        already cached become the most recent first, so while the list fits the cache none of
        it is evicted. At most ``max_cached_episodes`` are decoded."""
        listed = list(dict.fromkeys(int(e) for e in episode_indices))
        for ep in listed:
            if ep in self._video_cache:
                self._video_cache.move_to_end(ep)
        todo = [ep for ep in listed if ep not in self._video_cache][: self.max_cached_episodes]
        if workers <= 1 or len(todo) <= 1:
            for ep in todo:
                self.frames(ep)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            decoded = list(pool.map(self._decode_episode, todo))
        for ep, out in zip(todo, decoded):
            self._cache(ep, out)

    def _decode_episode(self, episode_index: int) -> dict[str, np.ndarray]:
        out = {}
        for name, video_key in _VIDEO_KEYS.items():
            path = self._episode_path("video_path", episode_index, video_key=video_key)
            if not path.is_file():
                raise DatasetFormatError(f"LeRobot dataset file missing: {str(path)!r} "
                                         f"({video_key} of episode {episode_index})")
            out[name] = decode_video(path)
            length = int(self.episodes[episode_index]["length"])
            if out[name].shape[0] != length:
                raise DatasetFormatError(f"video {str(path)!r} has {out[name].shape[0]} frames, "
                                         f"episodes.jsonl says {length}")
        return out

    def _cache(self, episode_index: int, frames: dict[str, np.ndarray]) -> None:
        self._video_cache[episode_index] = frames
        while len(self._video_cache) > self.max_cached_episodes:
            self._video_cache.popitem(last=False)

    def items(self, indices: Sequence[int], decode_workers: int = 1) -> list[dict[str, Any]]:
        """``[self[i] for i in indices]``, the uncached episodes among them decoded
        ``decode_workers`` at a time first (:meth:`prefetch`)."""
        indices = [int(i) for i in indices]
        self.prefetch([self.episode_of(i) for i in indices], decode_workers)
        return [self[i] for i in indices]

    def episode_of(self, idx: int) -> int:
        """The episode that global frame ``idx`` belongs to."""
        return int(self._index[idx][0])

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"LeRobotDataset index {idx} out of range [0, {len(self)})")
        ep, t = (int(v) for v in self._index[idx])
        acts = self._actions[ep]  # [T_ep, 7]
        steps = torch.arange(t, t + self.action_horizon)  # [C]
        mask = steps < acts.shape[0]  # [C]
        chunk = acts[steps.clamp(max=acts.shape[0] - 1)]  # [C, 7], last action repeated
        frames = self.frames(ep)
        return {
            "main_image": torch.from_numpy(frames["main_image"][t]),
            "wrist_image": torch.from_numpy(frames["wrist_image"][t]),
            "state": self._states[ep][t], "actions": chunk, "action_mask": mask,
            "instruction": self.tasks[self._task_of[ep]],
            "episode_index": ep, "frame_index": t,
        }
