"""Example: read a run's TensorBoard scalars and videos back, without the TensorBoard UI.

What it shows
    ``EventAccumulator`` (tensorboard's own reader) loading LOG_DIR/tensorboard, a table
    of the key metrics per global step (names in docs/metrics.md), the rollout videos
    under LOG_DIR/video, and with ``--png OUT_DIR`` four PNG curves: success rate and
    returns against env steps (``train/env_steps``, or its definition
    rebuilt from env/steps_per_s * time/rollout when a run did not log it) and against wall time. Curves use
    matplotlib when it is installed, else a small built-in pillow renderer. Given several
    LOG_DIRs it prints each run's table and, with ``--png``, draws their success curves on
    one plot (compare_success_vs_{env_steps,wall_time}.png), each labelled by its folder name.

How long (2-core CPU): about 2 s for a short run. What you see::

    step  env_steps  env/success_once  eval/success_rate  actor/policy_loss ...
    1     128        0.0               -                  -0.0123 ...
    videos (2): video/train/step_1.mp4 ...

    python examples/read_tensorboard.py logs/cpu_quickstart/20250101-120000 [--png plots/]
    python examples/read_tensorboard.py logs/run_a logs/run_b --png plots/   # side by side
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

__all__ = ["KEY_METRICS", "CURVES", "load_scalars", "env_steps_by_step", "metric_table", "list_videos", "write_curves",
           "run_labels", "comparison_series", "write_comparison", "plot_series", "main"]

KEY_METRICS = ("env/success_once", "eval/success_rate", "env/return", "rollout/returns_mean",
               "actor/policy_loss", "actor/value_loss", "actor/approx_kl", "actor/grad_norm",
               "env/steps_per_s", "time/step")
# PNG name -> metrics drawn on it
CURVES = {"success": ("env/success_once", "eval/success_rate"), "returns": ("env/return", "rollout/returns_mean")}
ENV_STEPS = "train/env_steps"
WALL = "train/wall_time_s"


def load_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar tag of LOG_DIR/tensorboard -> [(step, wall_time, value)], step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = Path(log_dir) / "tensorboard"
    if not tb.is_dir():
        raise FileNotFoundError(f"LOG_DIR={log_dir}: no tensorboard/ folder in it (expected {tb})")
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return {t: sorted((e.step, e.wall_time, e.value) for e in acc.Scalars(t)) for t in acc.Tags()["scalars"]}


def env_steps_by_step(scalars: dict) -> dict[int, float]:
    """Global step -> cumulative env steps: ``train/env_steps`` when logged, else rebuilt
    from its definition (docs/metrics.md) as the running sum of env/steps_per_s * time/rollout
    (env/steps_per_s = B_total * T * C / time/rollout, so the product is B_total * T * C)."""
    if ENV_STEPS in scalars:
        return {s: v for s, _, v in scalars[ENV_STEPS]}
    rate = {s: v for s, _, v in scalars.get("env/steps_per_s", [])}
    secs = {s: v for s, _, v in scalars.get("time/rollout", [])}
    out, total = {}, 0.0
    for s in sorted(set(rate) & set(secs)):
        total += rate[s] * secs[s]  # B_total * T * C env steps of global step s
        out[s] = float(round(total))
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def metric_table(scalars: dict, metrics: tuple[str, ...] = KEY_METRICS) -> str:
    """A text table: one row per global step, columns step, env_steps and the present metrics."""
    cols = [m for m in metrics if m in scalars]
    by_tag = {t: {s: v for s, _, v in scalars[t]} for t in cols}
    env_steps = env_steps_by_step(scalars)
    steps = sorted({s for t in by_tag.values() for s in t})
    head = ["step", "env_steps"] + cols
    rows = [head] + [[str(s), _fmt(env_steps.get(s))] + [_fmt(by_tag[c].get(s)) for c in cols]
                     for s in steps]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def list_videos(log_dir: str | Path) -> list[Path]:
    """Rollout videos (mp4/gif) under LOG_DIR/video, relative to LOG_DIR, sorted."""
    root = Path(log_dir)
    return sorted(p.relative_to(root) for p in (root / "video").rglob("*") if p.suffix in (".mp4", ".gif"))


def _series(scalars: dict, tag: str, x_axis: str) -> tuple[list[float], list[float]]:
    """(x, y) of ``tag``: x = env steps at that global step, or training seconds
    (``train/wall_time_s``, which survives resumes; else seconds since the run's first event)."""
    pts = scalars.get(tag, [])
    if x_axis == "env_steps":
        env_steps = env_steps_by_step(scalars)
        pts = [(env_steps[s], v) for s, _, v in pts if s in env_steps]
    elif WALL in scalars:
        secs = {s: v for s, _, v in scalars[WALL]}
        pts = [(secs[s], v) for s, _, v in pts if s in secs]
    else:
        t0 = min(w for series in scalars.values() for _, w, _ in series)
        pts = [(w - t0, v) for _, w, v in pts]
    return [x for x, _ in pts], [y for _, y in pts]


X_AXES = (("env_steps", "env steps"), ("wall_time", "wall time (s)"))


def write_curves(scalars: dict, out_dir: str | Path) -> list[Path]:
    """Write {success,returns}_vs_{env_steps,wall_time}.png; returns the written paths."""
    return _write_plots({"": scalars}, out_dir, CURVES)


def run_labels(log_dirs: list[str | Path]) -> list[str]:
    """One legend label per run: its folder name, or its whole path where two names clash."""
    names = [Path(d).name for d in log_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, log_dirs)]


def comparison_series(runs: dict[str, dict], tags: tuple[str, ...], x_axis: str) -> dict:
    """{"LABEL: TAG": (x, y)} for every run (label -> its scalars) and every tag it logged
    (a run labelled "" keys its series by tag alone)."""
    return {f"{label}: {tag}" if label else tag: _series(scalars, tag, x_axis)
            for label, scalars in runs.items() for tag in tags if tag in scalars}


def write_comparison(runs: dict[str, dict], out_dir: str | Path) -> list[Path]:
    """Write compare_success_vs_{env_steps,wall_time}.png, every run's success curves on one
    plot with a shared 0-1 axis; returns the written paths."""
    return _write_plots(runs, out_dir, {"success": CURVES["success"]}, prefix="compare_", y_range=(0.0, 1.0))


def _write_plots(runs: dict[str, dict], out_dir: str | Path, curves: dict, prefix: str = "",
                 y_range: tuple[float, float] | None = None) -> list[Path]:
    """PREFIX{name}_vs_{x_axis}.png for each curve name -> tags and each of X_AXES."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, tags in curves.items():
        for x_axis, x_label in X_AXES:
            path = out / f"{prefix}{name}_vs_{x_axis}.png"
            plot_series(comparison_series(runs, tags, x_axis), path, x_label, name, y_range=y_range)
            written.append(path)
    return written


def plot_series(series: dict, path: Path, x_label: str, title: str, y_range: tuple[float, float] | None = None) -> None:
    """Line plot of {label: (x, y)}; ``y_range`` fixes the y axis (else it fits the data)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_pillow(series, path, x_label, title, y_range=y_range)
    fig, ax = plt.subplots(figsize=(6, 4))
    for tag, (x, y) in series.items():
        ax.plot(x, y, marker="o", label=tag)
    ax.set(xlabel=x_label, title=title)
    if y_range is not None:
        ax.set_ylim(*y_range)
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _plot_pillow(series: dict, path: Path, x_label: str, title: str, size=(640, 420), pad=60,
                 y_range: tuple[float, float] | None = None) -> None:
    """Minimal line plot: axes box, min/max tick labels, one coloured polyline + legend per series."""
    from PIL import Image, ImageDraw

    W, H = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    xs = [x for x, _ in series.values() for x in x] or [0.0]
    ys = [y for _, y in series.values() for y in y if math.isfinite(y)] or [0.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1.0
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1.0
    if y_range is not None:
        y0, y1 = y_range
    px = lambda x: pad + (x - x0) / (x1 - x0) * (W - 2 * pad)  # noqa: E731  data x -> pixel column
    py = lambda y: H - pad - (y - y0) / (y1 - y0) * (H - 2 * pad)  # noqa: E731  data y -> pixel row (up)
    d.rectangle([pad, pad, W - pad, H - pad], outline="black")
    d.text((W // 2 - 40, 15), title, fill="black")
    d.text((W // 2 - 40, H - pad + 25), x_label, fill="black")
    for v, (x, y) in ((x0, (pad, H - pad + 5)), (x1, (W - pad - 30, H - pad + 5)),
                      (y0, (5, H - pad - 6)), (y1, (5, pad - 6))):
        d.text((x, y), f"{v:.3g}", fill="black")
    for i, (tag, (x, y)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(px(a), py(b)) for a, b in zip(x, y) if math.isfinite(b)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for cx, cy in pts:
            d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
        d.text((pad + 10, pad + 8 + 14 * i), tag, fill=colour)
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Print runs' key metrics and videos; optionally plot them.")
    p.add_argument("log_dirs", nargs="+", metavar="log_dir",
                   help="a run's runner.logger.log_path (holds tensorboard/ and video/); several compare runs")
    p.add_argument("--png", metavar="OUT_DIR", help="write PNG curves here")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    runs = {}
    for label, log_dir in zip(run_labels(a.log_dirs), a.log_dirs):
        runs[label] = scalars = load_scalars(log_dir)
        print(f"{len(scalars)} scalar tags in {log_dir}/tensorboard")
        print(metric_table(scalars))
        videos = list_videos(log_dir)
        print(f"videos ({len(videos)}):" + "".join(f"\n  {v}" for v in videos))
    if a.png:
        paths = write_curves(scalars, a.png) if len(runs) == 1 else write_comparison(runs, a.png)
        for path in paths:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
