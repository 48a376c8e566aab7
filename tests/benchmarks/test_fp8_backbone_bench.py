"""benchmarks/fp8_backbone.py on the tiny policy (CPU): its comparison of the same policy before
and after the backbone's conversion, on the same inputs and noise."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import fp8_backbone  # noqa: E402


def test_fp8_backbone_compares_the_same_policy_on_the_same_inputs(tmp_path):
    out = tmp_path / "fp8.json"
    r = fp8_backbone.main(["--config", "gr00t_tiny", "--device", "cpu", "--dtype", "fp32", "--batch-sizes", "2", "3",
                           "--image-size", "56", "--steps", "1", "--warmup", "0", "--json", str(out)])
    assert out.is_file() and r["linear_layers_fp8"] == 26 and r["linear_layers_kept"] == 0
    for row in r["rows"].values():
        assert row["speedup"] == pytest.approx(row["decisions_per_s_fp8"] / row["decisions_per_s"])
        assert 1e-3 < row["features_rel_err"] < 0.15  # FP8 moved the features, within its step
        assert 0 < row["arm_mean_abs_diff"] <= row["arm_max_abs_diff"] < 0.02 < row["arm_mean_abs"]
        assert row["gripper_flip_share"] == 0.0


def test_compare_by_hand():
    import torch

    # [B=1, C=1, A=3], the last dim a +-1 gripper command, which FP8 flipped
    ref = {"decisions_per_s": 10.0, "actions": torch.tensor([[[1.0, -2.0, -1.0]]]), "features": torch.tensor([3.0, 4.0]),
           "logprobs": torch.tensor([-1.0])}
    fp8 = {"decisions_per_s": 15.0, "actions": torch.tensor([[[1.5, -2.0, 1.0]]]), "features": torch.tensor([3.0, 4.5]),
           "logprobs": torch.tensor([-1.25])}
    c = fp8_backbone.compare(ref, fp8, gripper_dims=(2,))
    assert c["speedup"] == 1.5 and c["features_rel_err"] == pytest.approx(0.1)  # |(0, 0.5)| / |(3, 4)|
    assert c["arm_max_abs_diff"] == 0.5 and c["arm_mean_abs_diff"] == 0.25 and c["arm_mean_abs"] == 1.5
    assert c["gripper_flip_share"] == 1.0 and c["logprobs_max_abs_diff"] == 0.25
    no_gripper = fp8_backbone.compare(ref, fp8, gripper_dims=())  # every dim continuous: the flip is a 2.0 move
    assert no_gripper["arm_max_abs_diff"] == 2.0 and no_gripper["gripper_flip_share"] == 0.0
