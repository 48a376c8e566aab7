"""Console progress over global steps: a tqdm bar on a terminal, plain lines in CI logs.

Shows the step, env-steps/s, training success rate and a couple of key losses. Values a
step did not report (e.g. no episode ended) keep their last shown value.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any, Callable, Mapping, Sequence

__all__ = ["DEFAULT_FIELDS", "format_duration", "format_fields", "ProgressBar"]

# (metric name, label, format spec), in display order
DEFAULT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("env/steps_per_s", "env-steps/s", ".1f"),
    ("env/success_once", "success", ".3f"),
    ("eval/success_rate", "eval", ".3f"),
    ("actor/policy_loss", "pg_loss", ".4g"),
    ("actor/value_loss", "v_loss", ".4g"),
)


def format_duration(seconds: float) -> str:
    """``M:SS`` below an hour, ``H:MM:SS`` above (``?`` for unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def format_fields(values: Mapping[str, float], fields: Sequence[tuple[str, str, str]]) -> str:
    """``label value`` pairs of the fields present in ``values``, joined by `` | ``."""
    shown = (f"{label} {float(values[k]):{spec}}" for k, label, spec in fields if k in values)
    return " | ".join(shown)


class ProgressBar:
    """Progress over ``total_steps`` global steps, starting at ``initial_step`` (resume).

    On a TTY a tqdm bar with the fields as postfix; otherwise one plain line every
    ``line_every`` steps (and at the last step), which reads well in CI logs. ``time_left_s``
    (a run stopped by ``runner.max_time_s``) caps the ETA: the run ends when that time is up.
    """

    def __init__(
        self,
        total_steps: int,
        initial_step: int = 0,
        *,
        desc: str = "train",
        stream: IO[str] | None = None,
        line_every: int = 1,
        fields: Sequence[tuple[str, str, str]] = DEFAULT_FIELDS,
        clock: Callable[[], float] = time.monotonic,
        time_left_s: float | None = None,
    ):
        if total_steps < 1 or not 0 <= initial_step <= total_steps:
            raise ValueError(
                f"ProgressBar: need total_steps >= 1 and 0 <= initial_step <= total_steps; "
                f"got total_steps={total_steps}, initial_step={initial_step}"
            )
        if line_every < 1:
            raise ValueError(f"ProgressBar(line_every=...): expected an int >= 1, got {line_every}")
        self.total, self.step, self.desc = total_steps, initial_step, desc
        self.stream = stream if stream is not None else sys.stderr
        self.line_every, self.fields, self._clock = line_every, tuple(fields), clock
        self.time_left_s = time_left_s
        self._start, self._start_step = clock(), initial_step
        self._values: dict[str, float] = {}
        self._bar = None
        if _isatty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps, initial=initial_step, desc=desc, unit="step",
                file=self.stream, dynamic_ncols=True,
            )  # fmt: skip

    def update(self, step: int, metrics: Mapping[str, Any] | None = None) -> None:
        """Advance to global step ``step`` (count of finished steps) and show ``metrics``."""
        for key, value in (metrics or {}).items():
            if any(key == f[0] for f in self.fields):
                self._values[key] = float(value)
        self.step = step
        postfix = format_fields(self._values, self.fields)
        if self._bar is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(step - self._bar.n)
        elif step % self.line_every == 0 or step >= self.total:
            self.stream.write(self.line(postfix) + "\n")
            self.stream.flush()

    def line(self, postfix: str = "") -> str:
        """The plain-text status line: step, percent, fields, elapsed and ETA."""
        elapsed = self._clock() - self._start
        done = self.step - self._start_step
        eta = elapsed / done * (self.total - self.step) if done > 0 else float("nan")
        if self.time_left_s is not None:
            budget = max(0.0, self.time_left_s - elapsed)
            eta = budget if math.isnan(eta) else min(eta, budget)
        pct = 100.0 * self.step / self.total
        parts = [f"[{self.desc}] step {self.step}/{self.total} ({pct:.0f}%)"]
        parts += [postfix] if postfix else []
        parts.append(f"elapsed {format_duration(elapsed)} eta {format_duration(eta)}")
        return " | ".join(parts)

    def write(self, message: str) -> None:
        """Print a message without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
