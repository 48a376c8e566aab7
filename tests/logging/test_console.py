"""Console progress: plain lines off a TTY (exact text), tqdm bar on a TTY."""

from __future__ import annotations

import io

import pytest

from rlinf_isaac.logging.console import ProgressBar, format_duration, format_fields


class _Clock:
    """Deterministic clock: returns the next of the given times on each call."""

    def __init__(self, *times: float):
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_duration():
    assert format_duration(0) == "0:00"
    assert format_duration(62.4) == "1:02"
    assert format_duration(3723) == "1:02:03"  # 1 h 2 min 3 s
    assert format_duration(float("nan")) == "?"


def test_plain_lines_when_not_a_tty():
    out = io.StringIO()
    clock = _Clock(100.0, 110.0, 130.0)  # start, after step 1, after step 2
    bar = ProgressBar(4, stream=out, clock=clock)
    first = {"env/steps_per_s": 412.34, "env/success_once": 0.25, "actor/policy_loss": 0.0123}
    bar.update(1, first)
    bar.update(2, {"env/steps_per_s": 400.0, "actor/value_loss": 1.5, "time/step": 9.0})
    lines = out.getvalue().splitlines()
    # step 1: elapsed 10 s, eta 10 s/step * 3 steps = 30 s
    assert lines[0] == (
        "[train] step 1/4 (25%) | env-steps/s 412.3 | success 0.250 | pg_loss 0.0123"
        " | elapsed 0:10 eta 0:30"
    )
    # step 2: success keeps its last value (no episode ended); elapsed 30 s, eta 15 * 2 = 30 s
    assert lines[1] == (
        "[train] step 2/4 (50%) | env-steps/s 400.0 | success 0.250 | pg_loss 0.0123"
        " | v_loss 1.5 | elapsed 0:30 eta 0:30"
    )
    assert "\r" not in out.getvalue()  # no carriage-return redraws in CI logs


def test_time_budget_caps_the_eta():
    out = io.StringIO()
    bar = ProgressBar(100_000, stream=out, clock=_Clock(0.0, 10.0, 20.0), time_left_s=60.0)
    bar.update(1, {})  # 10 s/step would mean ~11.6 days; the budget leaves 50 s
    bar.update(2, {})
    assert out.getvalue().splitlines()[0].endswith("elapsed 0:10 eta 0:50")
    assert out.getvalue().splitlines()[1].endswith("elapsed 0:20 eta 0:40")


def test_resume_and_line_every():
    out = io.StringIO()
    clock = _Clock(0.0, 5.0, 10.0)
    bar = ProgressBar(10, initial_step=6, stream=out, line_every=2, clock=clock, desc="eval")
    bar.update(7, {})  # odd step: no line
    bar.update(8, {"eval/success_rate": 0.5})
    bar.update(9, {})
    bar.update(10, {})  # the last step always prints
    lines = out.getvalue().splitlines()
    # after resume at 6: 2 steps in 5 s -> 2.5 s/step, 2 steps left -> eta 5 s
    assert lines == [
        "[eval] step 8/10 (80%) | eval 0.500 | elapsed 0:05 eta 0:05",
        "[eval] step 10/10 (100%) | eval 0.500 | elapsed 0:10 eta 0:00",
    ]


def test_tqdm_bar_on_tty():
    out = _TTY()
    with ProgressBar(10, stream=out) as bar:
        bar.update(3, {"env/steps_per_s": 1234.5, "env/success_once": 0.75})
        bar.write("checkpoint saved")
    text = out.getvalue()
    assert "3/10" in text and "env-steps/s 1234.5 | success 0.750" in text
    assert "checkpoint saved" in text and "\r" in text  # redrawn in place


def test_bad_arguments_named():
    with pytest.raises(ValueError, match="total_steps=0, initial_step=0"):
        ProgressBar(0)
    with pytest.raises(ValueError, match=r"line_every=...\): expected an int >= 1, got 0"):
        ProgressBar(5, line_every=0, stream=io.StringIO())
    assert format_fields({"actor/lr": 1.0}, [("actor/lr", "lr", ".1e")]) == "lr 1.0e+00"
