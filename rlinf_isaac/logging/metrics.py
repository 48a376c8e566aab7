"""Metric names (documented once, here) and the metric logger (TensorBoard always, W&B optional).

Every scalar the pipeline logs has a namespaced name (``actor/``, ``critic/``, ``rollout/``,
``env/``, ``eval/``, ``time/``, ``train/``) and one entry in :data:`METRICS` with its formula.
``docs/metrics.md`` is generated from that table::

    python -m rlinf_isaac.logging.metrics --markdown > docs/metrics.md

A name outside the namespaces is an error (it is a typo or an unplanned metric); a name
inside a namespace that is not documented is a warning (an error with ``strict_names=True``)
that suggests the closest documented names.

Videos go to TensorBoard as animated GIFs encoded with pillow (see :func:`encode_gif`), not
through ``SummaryWriter.add_video``: that one needs moviepy, and with moviepy missing it only
prints a line and logs nothing, and moviepy 2.x dropped the ``moviepy.editor`` module it
imports. Pillow is already a dependency; the summary TensorBoard receives is the same
(an ``Image`` value holding a GIF).
"""

from __future__ import annotations

import difflib
import io
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "NAMESPACES",
    "METRICS",
    "VALID_BACKENDS",
    "MetricDoc",
    "MetricNameError",
    "check_metric_name",
    "metrics_markdown",
    "encode_gif",
    "tile_videos",
    "wandb_mode",
    "MetricLogger",
]


class MetricNameError(ValueError):
    """A metric name outside the documented namespaces (or undocumented, in strict mode)."""


@dataclass(frozen=True)
class MetricDoc:
    """One documented metric: its formula (how it is computed) and what it tells you."""

    formula: str
    meaning: str


NAMESPACES: dict[str, str] = {
    "actor/": "policy (and value head) update, averaged over the minibatches of one global step",
    "critic/": "reserved for a separate critic model; the value head lives in the actor, "
    "so its loss is `actor/value_loss`",
    "rollout/": "quantities the rollout produced for the trajectories of one global step",
    "env/": "training episodes that ended during the rollout of one global step",
    "eval/": "evaluation episodes (deterministic policy)",
    "time/": "wall-clock seconds of one global step",
    "train/": "run-level counters",
}

# r = exp(logp - logp_old) is the probability ratio of a sample; A its advantage; R its return
# target (A + V_old); V the value head's prediction; "mean" runs over the valid (not masked,
# not after done) samples of the global step unless the entry says otherwise.
METRICS: dict[str, MetricDoc] = {
    "actor/policy_loss": MetricDoc(
        "mean(max(-A * r, -A * clip(r, 1 - eps_low, 1 + eps_high))); with dual clip c, "
        "samples with A < 0 use min(that, -c * A)",
        "PPO clipped surrogate (GRPO uses the same loss with group advantages)",
    ),
    "actor/value_loss": MetricDoc(
        "mean(max(l(V - R), l(V_clip - R))), V_clip = V_old + clip(V - V_old, -eps_v, eps_v), "
        "l(e) = e^2 / 2 (Huber with delta d when configured)",
        "clipped value loss (PPO only)",
    ),
    "actor/grad_norm": MetricDoc(
        "sqrt(sum_p ||grad p||^2) over trainable parameters, before clipping",
        "global gradient L2 norm of an optimizer step, mean over the steps",
    ),
    "actor/approx_kl": MetricDoc(
        "mean((r - 1) - log r)  (k3 estimator)",
        "estimate of KL(pi_old || pi) after the update; large values mean too big a step",
    ),
    "actor/behavior_weight_mean": MetricDoc(
        "mean(min(pi_prox / pi_behav, cap))",
        "rollout.overlap_update: the decoupled objective's weight; pi_behav collected the rollout one "
        "update earlier, pi_prox are the weights at the update's start (algorithms/decoupled.py)",
    ),
    "actor/behavior_weight_capped": MetricDoc(
        "mean(1[pi_prox / pi_behav > algorithm.behavior_weight_cap])",
        "rollout.overlap_update: fraction of decisions whose weight was capped",
    ),
    "actor/behavior_kl": MetricDoc(
        "mean((w - 1) - log w), w = pi_prox / pi_behav  (k3 estimator)",
        "rollout.overlap_update: estimate of KL(pi_behav || pi_prox), how far the rollout's policy lags",
    ),
    "actor/pg_clipfrac": MetricDoc(
        "mean(1[-A * clip(r, 1 - eps_low, 1 + eps_high) > -A * r])",
        "fraction of samples whose surrogate is clipped",
    ),
    "actor/dual_clipfrac": MetricDoc(
        "mean(1[A < 0 and max(-A * r, -A * clip(r, ...)) > -c * A])",
        "fraction of samples capped by the dual clip (logged only when dual clip is on)",
    ),
    "actor/value_clip_ratio": MetricDoc(
        "mean(1[l(V_clip - R) > l(V - R)])", "fraction of samples whose value loss is clipped"
    ),
    "actor/entropy": MetricDoc(
        "mean(H[pi(. | s)]); for flow policies H of the Gaussian noise of the denoising step",
        "exploration left in the policy",
    ),
    "actor/imitation_loss": MetricDoc(
        "sum(w (v(x_t, t) - (x_1 - x_0))^2) / sum(w), x_1 = executed actions, w = 1 on the steps "
        "of successful episodes; t on the rollout's denoising grid",
        "self-imitation (flow-matching) loss; logged when algorithm.self_imitation_coef > 0",
    ),
    "actor/lr": MetricDoc("lr of the first optimizer param group", "learning rate in use"),
    "actor/ratio_mean": MetricDoc("mean(r)", "1.0 before the first update of a step"),
    "actor/explained_variance": MetricDoc(
        "1 - Var[R - V_old] / Var[R]",
        "how much of the return the value head explains (1 best, <= 0 no better than a constant)",
    ),
    "rollout/returns_mean": MetricDoc(
        "mean(R), R = A + V_old (GAE) or the group score (GRPO)", "return targets"
    ),
    "rollout/advantages_mean": MetricDoc("mean(A), before normalisation", "advantages"),
    "rollout/imitation_frac": MetricDoc(
        "sum(w) / sum(valid), w = 1 on the env steps of episodes that succeed in the rollout",
        "share of the step's actions that self-imitation trains on",
    ),
    "rollout/values_mean": MetricDoc("mean(V_old)", "value predictions made at rollout"),
    "rollout/logprobs_mean": MetricDoc(
        "mean(logp_old), logp summed over the C x A action dims of a chunk",
        "log-probability of the rollout's own actions",
    ),
    "rollout/cuda_graph_eager": MetricDoc(
        "count of rollout workers whose CUDA graph capture failed (logged only then)",
        "actor.model.cuda_graph is on but predict runs eagerly: slower, same results; the log says why",
    ),
    "env/success_once": MetricDoc(
        "mean over ended episodes of 1[success at some env step]", "training success rate"
    ),
    "env/episode_len": MetricDoc("mean over ended episodes of their env steps", "episode length"),
    "env/return": MetricDoc("mean over ended episodes of sum_t r_t (undiscounted)", "return"),
    "env/num_episodes": MetricDoc("count of episodes that ended", "sample size of env/*"),
    "env/steps_per_s": MetricDoc(
        "B_total * T * C / time/rollout", "simulator throughput (env steps of all env workers)"
    ),
    "eval/success_rate": MetricDoc("k / n, k successes in n eval episodes", "eval success rate"),
    "eval/success_ci_low": MetricDoc(
        "lower end of the 95% Wilson score interval of k / n (envs.base.wilson_interval)",
        "uncertainty of eval/success_rate",
    ),
    "eval/success_ci_high": MetricDoc(
        "upper end of the 95% Wilson score interval of k / n", "uncertainty of eval/success_rate"
    ),
    "eval/episode_len": MetricDoc("mean over eval episodes of their env steps", "episode length"),
    "eval/return": MetricDoc("mean over eval episodes of sum_t r_t (undiscounted)", "return"),
    "eval/num_episodes": MetricDoc("count of evaluated episodes", "episodes behind eval/success_rate"),
    "time/*": MetricDoc("seconds in the named phase", "any further phase timer"),
    "time/step": MetricDoc("seconds of the whole global step", "sum of the phases + overhead"),
    "time/sync": MetricDoc("seconds of actor -> rollout weight sync", "phase timer"),
    "time/rollout": MetricDoc("seconds from first reset/step to last chunk", "phase timer"),
    "time/env": MetricDoc("seconds env workers spent in chunk_step (with S >= 2 partly while the policy "
                          "infers another stage)", "inside time/rollout; max over env workers"),
    "time/env_wait": MetricDoc("seconds env workers only waited for the policy: action chunks, the last call per "
                               "stage that gives the bootstrap values, V(final obs) of truncated episodes",
                               "inside time/rollout; max over env workers"),
    "time/env_reset": MetricDoc("seconds env workers spent resetting every env at the start of the rollout",
                                "inside time/rollout, before time/env; max over env workers"),
    "time/inference": MetricDoc("seconds rollout workers spent in predict", "inside time/rollout; max over rollout workers"),
    "time/advantages": MetricDoc("seconds computing advantages", "phase timer"),
    "time/update": MetricDoc("seconds of the actor update", "phase timer"),
    "time/overlap": MetricDoc("seconds of the update and the next step's rollout side by side "
                              "(rollout.overlap_update)", "phase timer; holds time/update"),
    "time/eval": MetricDoc("seconds of evaluation (steps where it runs)", "phase timer"),
    "time/checkpoint": MetricDoc("seconds writing a checkpoint", "phase timer"),
    "train/env_steps": MetricDoc("sum over global steps of B_total * T * C", "x-axis alternative"),
    "train/episodes": MetricDoc("sum over global steps of env/num_episodes", "episodes so far"),
    "train/wall_time_s": MetricDoc("sum over global steps of time/step + time/eval",
                                   "training seconds, summed across resumed runs (runner.max_time_s); x-axis for curves"),
}

VALID_BACKENDS = ("tensorboard", "wandb")


def _family(name: str) -> str | None:
    """The ``ns/*`` family entry of METRICS that documents ``name``, if any."""
    fam = name.split("/", 1)[0] + "/*"
    return fam if fam in METRICS else None


def check_metric_name(name: str, strict: bool = False) -> bool:
    """Validate ``name``; True when documented in METRICS (exactly or by a ``ns/*`` family).

    Raises MetricNameError when the name is not ``namespace/rest`` with a known namespace,
    or (``strict=True``) when it is not documented.
    """
    ns = name.split("/", 1)[0] + "/" if isinstance(name, str) and "/" in name else None
    if ns not in NAMESPACES or name.endswith("/"):
        raise MetricNameError(
            f"metric name {name!r} is not namespaced; it must start with one of "
            f"{', '.join(NAMESPACES)} (documented names: rlinf_isaac.logging.metrics.METRICS)"
        )
    if name in METRICS or _family(name):
        return True
    if strict:
        close = difflib.get_close_matches(name, [m for m in METRICS if "*" not in m], n=3)
        raise MetricNameError(
            f"metric name {name!r} is not documented in METRICS; closest: {close or 'none'}"
        )
    return False


def metrics_markdown() -> str:
    """The ``docs/metrics.md`` text: namespaces, then one table row per METRICS entry."""
    lines = [
        "# Metrics",
        "",
        "<!-- Generated by `python -m rlinf_isaac.logging.metrics --markdown > docs/metrics.md`;"
        " edit METRICS in rlinf_isaac/logging/metrics.py, not this file. -->",
        "",
        "Notation: r = exp(logp - logp_old) is a sample's probability ratio, A its advantage,",
        "R its return target, V the value head's prediction (V_old: at rollout); B_total envs,",
        "T chunk steps per rollout, C actions per chunk. `mean` runs over the valid samples",
        "(not masked after done) of one global step. A `ns/*` row documents a family of names.",
        "",
        "| namespace | what it holds |",
        "|---|---|",
        *(f"| `{ns}` | {text} |" for ns, text in NAMESPACES.items()),
        "",
        "| name | formula | meaning |",
        "|---|---|---|",
    ]
    order = list(NAMESPACES)
    ranked = sorted(METRICS, key=lambda n: order.index(n.split("/", 1)[0] + "/"))  # stable sort
    for name in ranked:
        doc = METRICS[name]
        cells = [f"`{name}`", doc.formula, doc.meaning]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")  # GFM escape
    return "\n".join(lines) + "\n"


def tile_videos(frames: np.ndarray) -> np.ndarray:
    """Tile N videos into one grid video (black cells pad the last row).

    frames: uint8 [N, T, H, W, 3]. Returns uint8 [T, rows*H, cols*W, 3] with
    cols = ceil(sqrt(N)), rows = ceil(N / cols).
    """
    n, t, h, w, c = frames.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pad = np.zeros((rows * cols - n, t, h, w, c), dtype=frames.dtype)
    grid = np.concatenate([frames, pad]).reshape(rows, cols, t, h, w, c)  # [R, Cl, T, H, W, 3]
    grid = grid.transpose(2, 0, 3, 1, 4, 5)  # [R, Cl, T, H, W, 3] -> [T, R, H, Cl, W, 3]
    return grid.reshape(t, rows * h, cols * w, c)  # -> [T, R*H, Cl*W, 3]


def encode_gif(frames: np.ndarray, fps: float) -> bytes:
    """Encode uint8 [T, H, W, 3] frames as a looping GIF (pillow; frame time 1000 / fps ms)."""
    from PIL import Image

    images = [Image.fromarray(f, mode="RGB") for f in frames]
    buf = io.BytesIO()
    duration_ms = max(10, int(round(1000.0 / fps)))  # GIF stores 10 ms units
    images[0].save(
        buf, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0
    )
    return buf.getvalue()


def _as_video(tag: str, frames: Any) -> np.ndarray:
    """Check and convert frames (uint8 [T, H, W, 3] or [N, T, H, W, 3]) to [T, H', W', 3]."""
    arr = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim not in (4, 5) or arr.shape[-1] != 3 or arr.size == 0:
        raise ValueError(
            f"log_video({tag!r}): frames must be non-empty uint8 [T, H, W, 3] or "
            f"[N, T, H, W, 3]; got dtype {arr.dtype}, shape {tuple(arr.shape)}"
        )
    return tile_videos(arr) if arr.ndim == 5 else arr


def _as_float(key: str, value: Any) -> float:
    """A python float from a number, numpy scalar or one-element tensor/array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "numel") or isinstance(value, np.ndarray):
        n = value.numel() if hasattr(value, "numel") else value.size
        if n != 1:
            raise ValueError(
                f"metric {key!r}: expected a scalar, got a tensor of shape {tuple(value.shape)}"
            )
        value = value.reshape(-1)[0].item()
    if isinstance(value, (bool, int, float, np.number)):
        return float(value)
    raise TypeError(f"metric {key!r}: expected a number or 1-element tensor, got {type(value)}")


def wandb_mode(environ: Mapping[str, str], netrc_path: str | os.PathLike | None = None) -> str:
    """W&B mode to use: the user's ``WANDB_MODE`` if set, else online only with a login.

    A login is a ``WANDB_API_KEY`` or an ``api.wandb.ai`` entry in ``~/.netrc`` (what
    ``wandb login`` writes); without one the run logs offline (``wandb sync`` uploads later).
    """
    if environ.get("WANDB_MODE"):
        return environ["WANDB_MODE"]
    if environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(netrc_path) if netrc_path else Path(environ.get("NETRC", Path.home() / ".netrc"))
    try:
        has_login = "api.wandb.ai" in netrc.read_text()
    except OSError:
        has_login = False
    return "online" if has_login else "offline"


def _import_wandb():
    try:
        import wandb
    except ImportError as e:
        raise ImportError(
            "runner.logger.logger_backends lists 'wandb' but wandb is not installed; "
            "run `pip install rlinf_isaac[wandb]` or remove 'wandb' from logger_backends"
        ) from e
    return wandb


def _config_text(config: Mapping[str, Any]) -> str:
    """Config as an indented JSON block (TensorBoard's text plugin renders markdown)."""
    body = json.dumps(config, indent=2, sort_keys=True, default=str)
    return "\n".join("    " + line for line in body.splitlines())  # 4 spaces: code block


class MetricLogger:
    """Scalars, videos and the run config to TensorBoard (always) and W&B (when listed).

    TensorBoard event files go to ``{log_path}/tensorboard``; W&B files to
    ``{log_path}/wandb``. ``resume_step`` (the step of a resumed checkpoint) purges the
    TensorBoard events the interrupted run logged after that step, so curves don't double up;
    the steps up to and including it are complete and stay.
    """

    def __init__(
        self,
        log_path: str | os.PathLike,
        project_name: str,
        experiment_name: str,
        backends: Sequence[str] = ("tensorboard",),
        config: Mapping[str, Any] | None = None,
        *,
        strict_names: bool = False,
        resume_step: int | None = None,
        wandb_init_timeout_s: float = 30.0,
    ):
        if isinstance(backends, str):
            backends = (backends,)
        unknown = [b for b in backends if b not in VALID_BACKENDS]
        if unknown:
            raise ValueError(
                f"runner.logger.logger_backends: unknown backend(s) {unknown}; "
                f"valid: {list(VALID_BACKENDS)}"
            )
        self.log_path = Path(log_path)
        self.strict_names = strict_names
        self._warned: set[str] = set()
        self._wandb_run = None
        if "wandb" in backends:  # import first: a missing wandb fails before any file is made
            wandb = _import_wandb()
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard_dir = self.log_path / "tensorboard"
        purge = None if resume_step is None else resume_step + 1  # SummaryWriter purges steps >= purge_step
        self._tb = SummaryWriter(str(self.tensorboard_dir), purge_step=purge)
        if "wandb" in backends:
            self._wandb_run = self._init_wandb(
                wandb, project_name, experiment_name, config, wandb_init_timeout_s
            )
        if config is not None:
            self.log_config(config)

    def _init_wandb(self, wandb, project, name, config, timeout_s):
        """Start a W&B run; if online start fails (no network), fall back to offline."""
        (self.log_path / "wandb").mkdir(parents=True, exist_ok=True)
        mode = wandb_mode(os.environ)
        kwargs = dict(project=project, name=name, dir=str(self.log_path))
        settings = wandb.Settings(init_timeout=timeout_s)
        try:
            return wandb.init(mode=mode, settings=settings, **kwargs)
        except Exception as e:  # noqa: BLE001 - any start failure must not stop training
            if mode != "online":
                raise
            warnings.warn(f"wandb online start failed ({e!r}); logging offline instead")
            return wandb.init(mode="offline", settings=settings, **kwargs)

    def _check(self, name: str) -> None:
        if not check_metric_name(name, strict=self.strict_names) and name not in self._warned:
            self._warned.add(name)
            close = difflib.get_close_matches(name, list(METRICS), n=3)
            warnings.warn(
                f"metric {name!r} is not documented in rlinf_isaac.logging.metrics.METRICS "
                f"(closest: {close or 'none'}); add it there and regenerate docs/metrics.md",
                stacklevel=3,
            )

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log scalars at ``step``; values are numbers or one-element tensors/arrays."""
        if not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"log(step=...): expected an int >= 0, got {step!r}")
        values = {}
        for key, value in metrics.items():
            self._check(key)
            values[key] = _as_float(key, value)
        for key, value in values.items():
            self._tb.add_scalar(key, value, global_step=int(step))
        if self._wandb_run is not None:
            self._wandb_run.log(values, step=int(step))

    def log_video(self, tag: str, frames: Any, step: int, fps: float = 10.0) -> None:
        """Log a video: uint8 [T, H, W, 3], or [N, T, H, W, 3] tiled into one grid."""
        from torch.utils.tensorboard.summary import Summary

        video = _as_video(tag, frames)  # [T, H', W', 3]
        if fps <= 0:
            raise ValueError(f"log_video({tag!r}): fps must be > 0, got {fps}")
        gif = encode_gif(video, fps)
        t, h, w, c = video.shape
        image = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=gif)
        summary = Summary(value=[Summary.Value(tag=tag, image=image)])
        self._tb._get_file_writer().add_summary(summary, int(step))
        if self._wandb_run is not None:
            import wandb

            clip = wandb.Video(io.BytesIO(gif), fps=int(round(fps)), format="gif")
            self._wandb_run.log({tag: clip}, step=int(step))

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the run config (TensorBoard text ``config``; W&B run config)."""
        self._tb.add_text("config", _config_text(config), global_step=0)
        if self._wandb_run is not None:
            self._wandb_run.config.update(dict(config), allow_val_change=True)

    def flush(self) -> None:
        """Write pending events to disk."""
        self._tb.flush()

    def close(self) -> None:
        """Flush and close every backend (idempotent)."""
        self._tb.close()
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> "MetricLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``--markdown``: print the metrics table (the content of docs/metrics.md)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--markdown"]:
        print("usage: python -m rlinf_isaac.logging.metrics --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(metrics_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
