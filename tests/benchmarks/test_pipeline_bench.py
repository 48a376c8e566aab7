"""benchmarks/pipeline.py's FLOP-bound limit: the formula by hand, the tiny policy's counts."""

import dataclasses
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


def test_an_overlapped_variant_runs_one_more_step_and_measures_the_same_steady_ones():
    # --steps 3: steps 1 and 2 are measured; overlapped, step 3 (the update alone) runs and is dropped
    assert pipeline.runner_steps(3, overlap=False) == 3 and pipeline.runner_steps(3, overlap=True) == 4
    rows = [{"step": i} for i in range(4)]
    assert pipeline.steady_rows(rows[:3], 3) == rows[1:3]
    assert pipeline.steady_rows(rows, 3) == rows[1:3]
    assert pipeline.steady_rows(rows[:1], 1) == rows[:1]  # a single step is all there is
    assert pipeline.steady_rows(rows[:2], 1) == rows[:1]  # --steps 1 overlapped: its dropped step aside


def test_eager_model_config_turns_off_only_the_execution_levers():
    from rlinf_isaac.config import load_config

    model = load_config("cpu_quickstart", ["cluster=cpu", "actor.model.cuda_graph=true"]).actor.model
    eager = pipeline.eager_model_config(model)
    assert model.cuda_graph and not eager.cuda_graph
    assert not (eager.compile_backbone or eager.compile_action_head or eager.backbone_fp8)
    assert dataclasses.replace(eager, cuda_graph=True) == model  # nothing else changed


def test_flops_do_not_depend_on_how_the_policy_runs():
    # FP8 products are invisible to the FLOP counter and a CUDA graph's warm-up and capture would
    # be counted as extra calls: the count is the eager policy's whatever the levers say
    plain = pipeline.policy_flops("cpu_quickstart", ["cluster=cpu", "actor.model.cuda_graph=false"])
    fp8 = pipeline.policy_flops("cpu_quickstart", ["cluster=cpu", "actor.model.cuda_graph=false",
                                                   "actor.model.backbone_fp8=true"])
    assert fp8 == plain
