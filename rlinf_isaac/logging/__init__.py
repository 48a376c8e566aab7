"""Logging: metric logger (TensorBoard, W&B), console progress, rollout videos."""

__all__ = [
    "MetricLogger", "METRICS", "NAMESPACES", "check_metric_name", "metrics_markdown",
    "ProgressBar", "make_grid", "grid_video_tensor", "write_rollout_video", "VideoRecorder", "RolloutVideo",
    "frame_shape",
]

_HOME = {
    "MetricLogger": "metrics", "METRICS": "metrics", "NAMESPACES": "metrics",
    "check_metric_name": "metrics", "metrics_markdown": "metrics", "ProgressBar": "console",
    "make_grid": "video", "grid_video_tensor": "video", "write_rollout_video": "video",
    "VideoRecorder": "video", "RolloutVideo": "video", "frame_shape": "video",
}


def __getattr__(name):  # lazy: numpy / tqdm / imageio load only when used
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"rlinf_isaac.logging.{_HOME[name]}"), name)
    raise AttributeError(name)
