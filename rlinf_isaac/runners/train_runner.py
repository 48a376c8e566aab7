"""The training loop: sync -> rollout -> advantages -> update -> log -> eval -> checkpoint."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from rlinf_isaac.config.schema import Config
from rlinf_isaac.config.structured import to_dict
from rlinf_isaac.data.episodes import EpisodeLog, episode_metrics
from rlinf_isaac.envs.base import wilson_interval
from rlinf_isaac.runners.controller import Controller, RolloutOutput
from rlinf_isaac.runners.stop_signal import StopRequest, stop_on_signals
from rlinf_isaac.seeding import derive_seed

__all__ = ["TrainRunner", "write_eval_report"]

log = logging.getLogger(__name__)


class TrainRunner:
    """Owns the cluster of workers, the logger and the checkpoints of one run."""

    def __init__(self, cfg: Config, controller: Controller | None = None):
        from rlinf_isaac.logging.console import ProgressBar
        from rlinf_isaac.logging.metrics import MetricLogger

        self.cfg = cfg
        self.log_path = Path(cfg.runner.logger.log_path)
        self.ckpt_dir = self.log_path / "checkpoints"
        self.controller = controller or Controller(cfg)
        # cumulative, kept in checkpoints (train/wall_time_s: seconds spent in global steps, evals included)
        self.totals = {"train/env_steps": 0.0, "train/episodes": 0.0, "train/wall_time_s": 0.0}
        self.stopped_early = False
        self.start_step = self._maybe_resume()
        lg = cfg.runner.logger
        self.logger = MetricLogger(self.log_path, lg.project_name, lg.experiment_name, lg.logger_backends,
                                   config=to_dict(cfg), resume_step=self.start_step or None)
        time_left = (None if cfg.runner.max_time_s is None  # the budget counts the resumed run's time
                     else cfg.runner.max_time_s - self.totals["train/wall_time_s"])
        self.progress = ProgressBar(max(1, cfg.runner.max_steps), min(self.start_step, max(1, cfg.runner.max_steps)),
                                    time_left_s=time_left)
        self.timings: dict[str, float] = {}
        self.stop_request = StopRequest()  # set by SIGTERM / SIGINT while run() trains
        self.last_saved = self.start_step  # the global step of the newest checkpoint
        self._ahead: tuple[RolloutOutput, dict] | None = None  # rollout.overlap_update: the next step's data

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, float]:
        """Train for ``runner.max_steps`` global steps, or until ``runner.max_time_s`` seconds of
        training (summed over resumed runs) have passed; returns the last step's metrics.
        The last step always checkpoints, and evaluates when ``runner.val_check_interval`` is on;
        ``runner.val_before_train`` also evaluates the starting policy (step 0) of a new run.
        With ``runner.only_eval`` it evaluates the (resumed) policy once and returns.
        A SIGTERM or SIGINT while it trains ends it after the step in progress, which then
        checkpoints without evaluating (:mod:`rlinf_isaac.runners.stop_signal`);
        ``stop_request`` then says which signal.
        """
        if self.cfg.runner.only_eval:
            metrics = self.evaluate(self.start_step)
            self._log(self.start_step, metrics, None)
            return metrics
        metrics: dict[str, float] = {}
        if self.cfg.runner.val_before_train and self.start_step == 0:
            self.timings = {}
            with self.timer("eval"):
                metrics = self.evaluate(0)
            self.totals["train/wall_time_s"] += self.timings["eval"]
            self._log(0, {**metrics, **self.totals}, None)
        with stop_on_signals() as self.stop_request:
            for step in range(self.start_step, self.cfg.runner.max_steps):
                metrics = self.run_one(step)
                if self.stop_request:
                    if self.last_saved != step + 1:  # the signal came after this step's checkpoint hook
                        self.save(step + 1)
                    log.warning("%s: stopped after global step %d; resume with runner.resume_dir=%s",
                                self.stop_request.name, step + 1, self.ckpt_dir)
                    break
                if self.stopped_early:
                    log.info("runner.max_time_s=%s reached after global step %d (%.0f s of training); stopped",
                             self.cfg.runner.max_time_s, step + 1, self.totals["train/wall_time_s"])
                    break
        return metrics

    def run_one(self, step: int) -> dict[str, float]:
        """Global step ``step``: sync -> rollout -> advantages -> update -> log -> eval -> checkpoint
        (with ``rollout.overlap_update``: :meth:`_overlapped_phases`)."""
        c = self.cfg.runner
        self.timings = {}
        t0 = time.perf_counter()
        if self.cfg.rollout.overlap_update:
            rollout, adv_metrics, update_metrics = self._overlapped_phases(step)
        else:
            with self.timer("sync"):
                self.controller.sync_weights(version=step)
            with self.timer("rollout"):
                rollout = self.controller.rollout(step, record_video=self._video_due(step))
            with self.timer("advantages"):
                adv_metrics = self.controller.compute_advantages(rollout.pieces)
            with self.timer("update"):
                update_metrics = self.controller.update(step)
        self.timings["step"] = time.perf_counter() - t0
        metrics = {**rollout.metrics, **adv_metrics, **update_metrics}
        metrics["env/steps_per_s"] = rollout.env_steps / max(1e-9, rollout.seconds)
        self.totals["train/env_steps"] += rollout.env_steps
        self.totals["train/episodes"] += rollout.metrics.get("env/num_episodes", 0.0)
        done = step + 1
        elapsed = self.totals["train/wall_time_s"] + time.perf_counter() - t0
        self.stopped_early = done < c.max_steps and c.max_time_s is not None and elapsed >= c.max_time_s
        last = done == c.max_steps or self.stopped_early or bool(self.stop_request)
        if c.val_check_interval > 0 and _due(done, c.val_check_interval, last) and not self.stop_request:
            with self.timer("eval"):
                metrics.update(self.evaluate(done))
        self.totals["train/wall_time_s"] += time.perf_counter() - t0
        if _due(done, c.save_interval, last):
            with self.timer("checkpoint"):
                self.save(done)
        metrics.update(self.totals)
        self._log(done, metrics, rollout.video)
        return metrics

    def _overlapped_phases(self, step: int) -> tuple[RolloutOutput, dict, dict]:
        """Step ``step`` with the next rollout collected during the update: the actors train on
        the rollout the previous step collected (one update behind: decoupled objective, see
        algorithms/decoupled.py) while the env and rollout workers collect step + 1's with the
        weights synced before this update; then the new weights are synced and step + 1's
        advantages computed. A run's first step (also after a resume) collects its own rollout
        first, on-policy; the last step (``runner.max_steps``) collects none ahead. Returns
        (the rollout trained on, its advantage metrics, the update's metrics)."""
        if self._ahead is None:
            with self.timer("sync"):
                self.controller.sync_weights(version=step)
            with self.timer("rollout"):
                first = self.controller.rollout(step, record_video=self._video_due(step))
            with self.timer("advantages"):
                self._ahead = (first, self.controller.compute_advantages(first.pieces))
        (rollout, adv_metrics), self._ahead = self._ahead, None
        nxt = step + 1 if step + 1 < self.cfg.runner.max_steps else None
        pool = ThreadPoolExecutor(1, thread_name_prefix="rollout-ahead")
        try:  # a failed update does not wait for the rollout beside it
            with self.timer("overlap"):
                ahead = pool.submit(self.controller.rollout, nxt, self._video_due(nxt)) if nxt is not None else None
                with self.timer("update"):
                    update_metrics = self.controller.update(step, proximal=True)
                collected = ahead.result() if ahead is not None else None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if collected is not None:
            self.timings["rollout"] = collected.seconds
            with self.timer("sync"):
                self.controller.sync_weights(version=nxt)
            with self.timer("advantages"):
                self._ahead = (collected, self.controller.compute_advantages(collected.pieces))
        return rollout, adv_metrics, update_metrics

    def evaluate(self, step: int) -> dict[str, float]:
        """Sync the newest weights and evaluate the deterministic policy: on the episodes (and
        policy noise) of ``env.eval.seed`` with ``runner.val_fixed_seed``, as eval_embodiment.sh
        plays them, else on new ones per step (``derive_seed(runner.seed, "eval", step)``)."""
        self.controller.sync_weights(version=step)
        c = self.cfg.runner
        seed = (self.cfg.env.eval or self.cfg.env.train).seed if c.val_fixed_seed else derive_seed(c.seed, "eval", step)
        eps, video = self.controller.evaluate(c.eval_episodes, seed=seed, record_video=self._eval_video_on())
        if video is not None:
            self._write_video(video, "eval", step)
        return episode_metrics(eps, "eval")

    def save(self, step: int) -> Path:
        from rlinf_isaac.runners.checkpoint import capture_rng_states, save_checkpoint

        state = self.controller.actor_state()
        path = save_checkpoint(self.ckpt_dir, step=step, model_state=state["model"],
                               optimizer_state=state["optimizer"], scheduler_state=state["scheduler"],
                               rng_states=capture_rng_states(), config=to_dict(self.cfg),
                               extra={"totals": dict(self.totals)}, keep_last=self.cfg.runner.keep_checkpoints)
        log.info("checkpoint written: %s", path)
        self.last_saved = step
        return path

    def close(self) -> None:
        self.progress.close()
        self.logger.close()
        self.controller.shutdown()

    # ------------------------------------------------------------------ helpers
    @contextmanager
    def timer(self, name: str):
        t0 = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def _time_metrics(self) -> dict[str, float]:
        return {f"time/{k}": v for k, v in self.timings.items()}

    def _log(self, step: int, metrics: dict, video) -> None:
        metrics.update(self._time_metrics())
        self.logger.log(metrics, step)
        if video is not None:
            self._write_video(video, "train", step)
        self.progress.update(step, metrics)
        self.logger.flush()

    def _video_due(self, step: int) -> bool:
        v = self.cfg.env.train.video_cfg
        return v.save_video and step % v.interval == 0

    def _eval_video_on(self) -> bool:
        return (self.cfg.env.eval or self.cfg.env.train).video_cfg.save_video

    def _write_video(self, video, split: str, step: int) -> None:
        """Save a :class:`~rlinf_isaac.logging.video.RolloutVideo` (composed and encoded by the env
        worker) as ``video_base_dir/global_step_N.mp4``; TensorBoard gets the same frames, box-
        downscaled to at most 512 px a side (``video.preview``)."""
        vcfg = (self.cfg.env.train if split == "train" else (self.cfg.env.eval or self.cfg.env.train)).video_cfg
        video.save(Path(vcfg.video_base_dir) / f"global_step_{step}.mp4")
        self.logger.log_video(f"{split}/rollout", video.preview, step, fps=vcfg.fps)

    def _maybe_resume(self) -> int:
        from rlinf_isaac.runners.checkpoint import load_checkpoint, restore_rng_states

        if not self.cfg.runner.resume_dir:
            return 0
        ckpt = load_checkpoint(self.cfg.runner.resume_dir)
        self.controller.load_actor_state({"model": ckpt.model_state, "optimizer": ckpt.optimizer_state,
                                       "scheduler": ckpt.scheduler_state})
        if ckpt.rng_states:
            restore_rng_states(ckpt.rng_states)
        self.totals.update({k: float(v) for k, v in ckpt.extra.get("totals", {}).items()})
        log.info("resumed from %s at global step %d", ckpt.path, ckpt.step)
        return ckpt.step


def _due(step: int, interval: int, last: bool) -> bool:
    """Interval hooks fire every ``interval`` steps and at the last step (-1: last step only)."""
    return last or (interval > 0 and step % interval == 0)


def write_eval_report(eps: EpisodeLog, video_dir: str | None) -> str:
    """The JSON line eval_embodiment.sh ends with."""
    n = len(eps.success_once)
    k = int(round(sum(eps.success_once)))
    lo, hi = wilson_interval(k, n)
    return json.dumps({"success_rate": k / max(1, n), "ci95": [round(lo, 4), round(hi, 4)],
                       "episodes": n, "video_dir": video_dir})
