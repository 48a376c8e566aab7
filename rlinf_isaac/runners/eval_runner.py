"""Evaluation: N episodes of the deterministic policy on fresh seeds, with a JSON report."""

from __future__ import annotations

from pathlib import Path

from rlinf_isaac.config.schema import Config
from rlinf_isaac.runners.controller import Controller
from rlinf_isaac.runners.train_runner import write_eval_report

__all__ = ["run_eval"]


def run_eval(cfg: Config, controller: Controller | None = None) -> str:
    """Evaluate the policy of ``actor.model`` (or ``runner.resume_dir``'s checkpoint).

    Returns the JSON line ``{"success_rate", "ci95", "episodes", "video_dir"}``.
    """
    from rlinf_isaac.runners.checkpoint import load_checkpoint

    owns = controller is None
    controller = controller or Controller(cfg)
    try:
        version = 0
        if cfg.runner.resume_dir:
            ckpt = load_checkpoint(cfg.runner.resume_dir)
            controller.load_actor_state({"model": ckpt.model_state, "optimizer": ckpt.optimizer_state,
                                      "scheduler": ckpt.scheduler_state})
            version = ckpt.step
        controller.sync_weights(version=version)
        ev = cfg.env.eval or cfg.env.train
        eps, video = controller.evaluate(cfg.runner.eval_episodes, seed=ev.seed, record_video=ev.video_cfg.save_video)
        video_dir = None
        if video is not None:  # a logging.video.RolloutVideo, composed and encoded by the env worker
            path = video.save(Path(ev.video_cfg.video_base_dir) / "eval.mp4")
            video_dir = str(path.parent)
        return write_eval_report(eps, video_dir)
    finally:
        if owns:
            controller.shutdown()
