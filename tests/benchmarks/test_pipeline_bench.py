"""benchmarks/pipeline.py's FLOP-bound limit: the formula by hand, the tiny policy's counts."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import pipeline  # noqa: E402


def test_flop_limit_counts_one_inference_and_every_epoch_of_training():
    # full-size GR00T N1.5 on one H200: 1,708 GFLOP per decision, 1,097 per trained sample, ~790 TFLOP/s
    assert pipeline.flop_limit(1708e9, 1097e9, 1, 790.0) == pytest.approx(790e12 / 2805e9)  # ~281.6 samples/s
    assert pipeline.flop_limit(1.0, 1.0, 3, 4e-12) == pytest.approx(1.0)  # 4 FLOP per sample at 4 FLOP/s


def test_policy_flops_of_the_tiny_policy():
    f = pipeline.policy_flops("cpu_quickstart", ["cluster=cpu"])
    assert f["update_epochs"] == 2
    # a decision runs the backbone and 4 denoising steps; a trained sample reuses the stored
    # backbone features but adds the backward pass: both ~0.1 GFLOP for the tiny policy
    assert 5e7 < f["decision_flops"] < 5e8 and 5e7 < f["sample_flops"] < 5e8
    assert f == pipeline.policy_flops("cpu_quickstart", ["cluster=cpu"])  # counted, not timed: repeatable
