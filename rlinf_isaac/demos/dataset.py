"""Write demonstrations as a LeRobot v2 dataset that GR00T's finetuning tools can read.

Layout written under ``root`` (``chunks_size`` = 1000 episodes per chunk)::

    meta/info.json          codebase_version "v2.0", fps, features, path templates, totals
    meta/modality.json      GR00T's modality map (state/action slices, video keys, annotation)
    meta/episodes.jsonl     one line per episode: episode_index, tasks, length, success
    meta/tasks.jsonl        one line per distinct instruction: task_index, task
    meta/stats.json         mean/std/min/max/q01/q99 of observation.state and action
    data/chunk-000/episode_000000.parquet
    videos/chunk-000/observation.images.table/episode_000000.mp4
    videos/chunk-000/observation.images.wrist/episode_000000.mp4

Videos are H.264 (libx264, yuv420p, CRF ``crf``): the codec is *lossy*, so images read
back differ from the written ones by a few grey levels (measured on rendered scenes: mean
absolute error ~1-3 of 255 at CRF 18). States, actions and rewards are stored exactly.

Crash safety: every file is written to a temporary name and moved into place with
``os.replace``; the meta files are rewritten after every episode, so a writer that dies
leaves a readable dataset holding the episodes finished so far. ``close`` only rewrites
them once more. The writer keeps the states and actions of the episodes it wrote in memory
(60 bytes per frame) to recompute exact quantiles for ``stats.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LeRobotDatasetWriter",
    "CHUNKS_SIZE",
    "DATA_PATH",
    "VIDEO_PATH",
    "VIDEO_KEYS",
    "STATE_NAMES",
    "ACTION_NAMES",
    "MODALITY",
    "compute_feature_stats",
    "atomic_write_text",
    "write_video",
]

CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
VIDEO_KEYS = {"main_images": "observation.images.table", "wrist_images": "observation.images.wrist"}
STATE_NAMES = ["eef_pos_x", "eef_pos_y", "eef_pos_z", "eef_rot_x", "eef_rot_y", "eef_rot_z",
               "finger_left", "finger_right"]
ACTION_NAMES = ["d_pos_x", "d_pos_y", "d_pos_z", "d_rot_x", "d_rot_y", "d_rot_z", "gripper"]

# GR00T's meta/modality.json: slices of the concatenated state/action vectors.
MODALITY: dict[str, Any] = {
    "state": {
        "eef_position": {"start": 0, "end": 3},
        "eef_rotation": {"start": 3, "end": 6, "rotation_type": "axis_angle"},
        "gripper": {"start": 6, "end": 8},
    },
    "action": {
        "eef_position_delta": {"start": 0, "end": 3, "absolute": False},
        "eef_rotation_delta": {"start": 3, "end": 6, "absolute": False,
                               "rotation_type": "axis_angle"},
        "gripper": {"start": 6, "end": 7},
    },
    "video": {
        "table": {"original_key": "observation.images.table"},
        "wrist": {"original_key": "observation.images.wrist"},
    },
    "annotation": {"human.task_description": {"original_key": "task_index"}},
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder + ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def compute_feature_stats(x: np.ndarray) -> dict[str, list[float]]:
    """Per-dimension statistics of ``x`` float [N, D] in GR00T's metadata format.

    Returns ``{"mean", "std", "min", "max", "q01", "q99"}``, each a list of D floats
    (std is the population std, q01/q99 the 1st/99th percentiles, linear interpolation).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"compute_feature_stats needs a non-empty [N, D] array, got {x.shape}")
    return {
        "mean": x.mean(0).tolist(),
        "std": x.std(0).tolist(),
        "min": x.min(0).tolist(),
        "max": x.max(0).tolist(),
        "q01": np.quantile(x, 0.01, axis=0).tolist(),
        "q99": np.quantile(x, 0.99, axis=0).tolist(),
    }


def _as_array(name: str, value: Any, dtype: np.dtype, ndim: int) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"add_episode: {name} must have {ndim} dims, got shape {arr.shape}")
    if dtype == np.uint8 and arr.dtype != np.uint8:
        raise TypeError(f"add_episode: {name} must be uint8 [T, H, W, 3], got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _check_episode(main, wrist, states, actions, rewards) -> int:
    t = states.shape[0]
    if t == 0:
        raise ValueError("add_episode: an episode needs at least one frame, got T = 0")
    for name, arr, tail in (("main_images", main, None), ("wrist_images", wrist, None),
                            ("states", states, (8,)), ("actions", actions, (7,))):
        if arr.shape[0] != t:
            raise ValueError(f"add_episode: {name} has {arr.shape[0]} frames, states has {t}")
        if tail is not None and arr.shape[1:] != tail:
            raise ValueError(f"add_episode: {name} must be [T, {tail[0]}], got {arr.shape}")
    for name, img in (("main_images", main), ("wrist_images", wrist)):
        h, w, c = img.shape[1:]
        if c != 3 or h % 2 or w % 2:
            raise ValueError(f"add_episode: {name} must be [T, H, W, 3] with even H, W "
                             f"(yuv420p video), got {img.shape}")
    if rewards is not None and rewards.shape != (t,):
        raise ValueError(f"add_episode: rewards must be [T={t}], got {rewards.shape}")
    for name, arr in (("states", states), ("actions", actions)):
        if not np.isfinite(arr).all():
            raise ValueError(f"add_episode: {name} contain NaN or inf")
    return t


def write_video(path: Path, frames: np.ndarray, fps: float, codec: str = "libx264",
                crf: int = 18) -> str:
    """Encode frames uint8 [T, H, W, 3] (even H, W) to an mp4 at ``path`` atomically.

    Returns the codec used: ``codec`` through imageio-ffmpeg, or ``"mpeg4"`` through OpenCV
    when imageio-ffmpeg is not installed (OpenCV's wheels carry no H.264 encoder).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    try:
        import imageio_ffmpeg  # noqa: F401  (imageio's FFMPEG plugin needs it)
    except ImportError:
        _write_video_cv2(tmp, frames, fps)
        os.replace(tmp, path)
        return "mpeg4"
    import imageio.v2 as iio  # lazy: ffmpeg only when videos are written

    params = ["-crf", str(crf), "-preset", "veryfast"] if codec == "libx264" else ["-q:v", "2"]
    writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec=codec,
                            pixelformat="yuv420p", macro_block_size=2, ffmpeg_params=params,
                            ffmpeg_log_level="error")
    try:
        for frame in frames:
            writer.append_data(np.ascontiguousarray(frame))
    finally:
        writer.close()
    os.replace(tmp, path)
    return codec


def _write_video_cv2(path: Path, frames: np.ndarray, fps: float) -> None:
    try:
        import cv2
    except ImportError:
        raise ImportError("writing videos needs imageio-ffmpeg (pip install imageio-ffmpeg) "
                          "or OpenCV (pip install opencv-python-headless)") from None
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open an mpeg4 writer for {str(path)!r}")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # RGB -> BGR
    finally:
        writer.release()


class LeRobotDatasetWriter:
    """Append episodes to a new LeRobot v2 dataset at ``root``.

    root: output folder; must not exist, be empty, or (``overwrite=True``) hold a LeRobot
        dataset (identified by ``meta/info.json``) that is then deleted.
    fps: control frequency of the recorded data (20 Hz for the stack-cube tasks).
    video_codec: ``"libx264"`` (H.264, default) or ``"mpeg4"``; both ship in imageio-ffmpeg.
    crf: libx264 constant rate factor (0 lossless .. 51 worst; 18 is visually lossless).
    """

    def __init__(self, root: str | os.PathLike, fps: int = 20, overwrite: bool = False,
                 robot_type: str = "franka_panda", video_codec: str = "libx264",
                 crf: int = 18) -> None:
        if fps <= 0:
            raise ValueError(f"LeRobotDatasetWriter: fps must be > 0, got {fps}")
        if video_codec not in ("libx264", "mpeg4"):
            raise ValueError(f"LeRobotDatasetWriter: video_codec must be 'libx264' or 'mpeg4', "
                             f"got {video_codec!r}")
        self.root = Path(root)
        self.fps, self.robot_type, self.video_codec, self.crf = fps, robot_type, video_codec, crf
        self._prepare_root(overwrite)
        self._episodes: list[dict[str, Any]] = []
        self._tasks: dict[str, int] = {}
        self._states: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._image_shapes: dict[str, tuple[int, int, int]] = {}
        self._total_frames = 0
        self._closed = False

    def _prepare_root(self, overwrite: bool) -> None:
        root = self.root
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            if not overwrite:
                raise FileExistsError(
                    f"dataset root {str(root)!r} exists and is not empty; pass overwrite=True "
                    f"to replace a LeRobot dataset there, or choose a new folder")
            if not (root / "meta" / "info.json").is_file():
                raise FileExistsError(
                    f"refusing to overwrite {str(root)!r}: overwrite=True only replaces a "
                    f"LeRobot dataset (a folder with meta/info.json), and this is not one")
            shutil.rmtree(root)
        (root / "meta").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ episodes
    def add_episode(self, *, main_images: Any, wrist_images: Any, states: Any, actions: Any,
                    instruction: str, success: bool, rewards: Any = None) -> int:
        """Write one episode and return its index.

        main_images, wrist_images: uint8 [T, H, W, 3] (numpy or torch), even H and W.
        states: float32 [T, 8]; actions: float32 [T, 7], the action taken at each frame.
        rewards: float32 [T] or None (then 1.0 on the last frame of a successful episode).
        """
        if self._closed:
            raise RuntimeError("add_episode called on a closed LeRobotDatasetWriter")
        main = _as_array("main_images", main_images, np.uint8, 4)
        wrist = _as_array("wrist_images", wrist_images, np.uint8, 4)
        st = _as_array("states", states, np.float32, 2)
        act = _as_array("actions", actions, np.float32, 2)
        rew = None if rewards is None else _as_array("rewards", rewards, np.float32, 1)
        t = _check_episode(main, wrist, st, act, rew)
        if rew is None:
            rew = np.zeros(t, np.float32)
            rew[-1] = float(bool(success))
        for key, img in (("main_images", main), ("wrist_images", wrist)):
            shape = tuple(img.shape[1:])
            if self._image_shapes.setdefault(key, shape) != shape:
                raise ValueError(f"add_episode: {key} frames are {shape}, earlier episodes "
                                 f"had {self._image_shapes[key]}")
        ep = len(self._episodes)
        task_index = self._tasks.setdefault(instruction, len(self._tasks))
        chunk = ep // CHUNKS_SIZE
        for key, img in (("main_images", main), ("wrist_images", wrist)):
            rel = VIDEO_PATH.format(episode_chunk=chunk, video_key=VIDEO_KEYS[key],
                                    episode_index=ep)
            # the codec actually used: mpeg4 when imageio-ffmpeg is missing (info.json says so)
            self.video_codec = write_video(self.root / rel, img, self.fps, self.video_codec, self.crf)
        self._write_parquet(ep, chunk, st, act, rew, bool(success), task_index)
        self._episodes.append({"episode_index": ep, "tasks": [instruction], "length": t,
                               "success": bool(success)})
        self._states.append(st)
        self._actions.append(act)
        self._total_frames += t
        self._write_meta()
        return ep

    def _write_parquet(self, ep, chunk, states, actions, rewards, success, task_index) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        t = states.shape[0]
        done = np.zeros(t, bool)
        done[-1] = True
        table = pa.table({
            "observation.state": pa.array(list(states), type=pa.list_(pa.float32())),
            "action": pa.array(list(actions), type=pa.list_(pa.float32())),
            "timestamp": pa.array(np.arange(t, dtype=np.float32) / np.float32(self.fps)),
            "frame_index": pa.array(np.arange(t, dtype=np.int64)),
            "episode_index": pa.array(np.full(t, ep, np.int64)),
            "index": pa.array(np.arange(t, dtype=np.int64) + self._total_frames),
            "task_index": pa.array(np.full(t, task_index, np.int64)),
            "next.reward": pa.array(rewards),
            "next.done": pa.array(done),
            "next.success": pa.array(done & success),
        })
        path = self.root / DATA_PATH.format(episode_chunk=chunk, episode_index=ep)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ meta
    def _features(self) -> dict[str, Any]:
        feats: dict[str, Any] = {}
        for key, video_key in VIDEO_KEYS.items():
            h, w, c = self._image_shapes.get(key, (0, 0, 3))
            feats[video_key] = {
                "dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channel"],
                "video_info": {"video.fps": float(self.fps),
                               "video.codec": "h264" if self.video_codec == "libx264" else "mpeg4",
                               "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                               "has_audio": False}}
        feats["observation.state"] = {"dtype": "float32", "shape": [8], "names": STATE_NAMES}
        feats["action"] = {"dtype": "float32", "shape": [7], "names": ACTION_NAMES}
        for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"),
                            ("episode_index", "int64"), ("index", "int64"),
                            ("task_index", "int64"), ("next.reward", "float32"),
                            ("next.done", "bool"), ("next.success", "bool")):
            feats[name] = {"dtype": dtype, "shape": [1], "names": None}
        return feats

    def _info(self) -> dict[str, Any]:
        n = len(self._episodes)
        return {
            "codebase_version": "v2.0", "robot_type": self.robot_type,
            "total_episodes": n, "total_frames": self._total_frames,
            "total_tasks": len(self._tasks), "total_videos": n * len(VIDEO_KEYS),
            "total_chunks": (n + CHUNKS_SIZE - 1) // CHUNKS_SIZE, "chunks_size": CHUNKS_SIZE,
            "fps": self.fps, "splits": {"train": f"0:{n}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": self._features(),
        }

    def _write_meta(self) -> None:
        meta = self.root / "meta"
        jsonl = lambda rows: "".join(json.dumps(r) + "\n" for r in rows)  # noqa: E731
        atomic_write_text(meta / "modality.json", json.dumps(MODALITY, indent=2))
        atomic_write_text(meta / "tasks.jsonl", jsonl(
            {"task_index": i, "task": t} for t, i in self._tasks.items()))
        atomic_write_text(meta / "episodes.jsonl", jsonl(self._episodes))
        if self._episodes:
            stats = {"observation.state": compute_feature_stats(np.concatenate(self._states)),
                     "action": compute_feature_stats(np.concatenate(self._actions))}
            atomic_write_text(meta / "stats.json", json.dumps(stats, indent=2))
        # info.json last: a reader that sees the new episode count finds every other file.
        atomic_write_text(meta / "info.json", json.dumps(self._info(), indent=2))

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def close(self) -> None:
        """Write the final meta files. Idempotent."""
        if not self._closed:
            self._write_meta()
            self._closed = True

    def __enter__(self) -> "LeRobotDatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
