"""benchmarks/attention_backends.py on the tiny policy (CPU): every backend order runs the same
policy on the same inputs and noise, and an order that cannot run is reported, not fatal."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import attention_backends  # noqa: E402


def test_orders_compare_the_same_policy_and_report_the_ones_that_cannot_run(tmp_path, monkeypatch):
    monkeypatch.setitem(attention_backends.ORDERS, "cudnn_only", ["CUDNN_ATTENTION"])  # no CPU kernel
    out = tmp_path / "attn.json"
    r = attention_backends.main(["--config", "gr00t_tiny", "--device", "cpu", "--dtype", "fp32", "--batch-sizes", "2",
                                 "--image-size", "56", "--steps", "1", "--warmup", "0", "--orders", "math", "cudnn_only",
                                 "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == r["rows"] and saved["cpus"] >= 1  # with the host facts
    rows = r["rows"]["2"]
    assert list(rows) == ["default", "math", "cudnn_only"]  # default added first: the baseline
    assert rows["default"]["rollout_ratio"] == 1.0 and rows["default"]["train_ratio"] == 1.0
    assert rows["default"]["arm_max_abs_diff"] == 0.0 and rows["default"]["gripper_flip_share"] == 0.0
    assert rows["default"]["loss_abs_diff"] == 0.0
    math = rows["math"]
    assert math["rollout_ratio"] > 0 and math["train_ratio"] > 0
    assert math["arm_max_abs_diff"] < 1e-4 and math["loss_abs_diff"] < 1e-4  # same attention, another kernel
    assert "error" in rows["cudnn_only"] and "kernel" in rows["cudnn_only"]["error"].lower()


def test_compare_by_hand():
    import torch

    # [B=1, C=2, A=3], the last dim a +-1 gripper command: flash moves one arm value by 0.5 and
    # flips one of the two gripper commands
    ref = torch.tensor([[[1.0, -2.0, 1.0], [0.5, 0.0, -1.0]]])
    rollout = {"default": {"per_s": 10.0, "actions": ref},
               "flash": {"per_s": 15.0, "actions": torch.tensor([[[1.0, -2.5, 1.0], [0.5, 0.0, 1.0]]])},
               "cudnn": {"error": "RuntimeError: no kernel"}}
    train = {"default": {"per_s": 4.0, "loss": 0.5}, "flash": {"per_s": 5.0, "loss": 0.25},
             "cudnn": {"error": "RuntimeError: no kernel"}}
    rows = attention_backends.compare(rollout, train, gripper_dims=(2,))
    assert rows["flash"] == {"rollout_per_s": 15.0, "rollout_ratio": 1.5, "arm_max_abs_diff": 0.5,
                             "arm_mean_abs_diff": 0.125, "arm_mean_abs": 0.875, "gripper_flip_share": 0.5,
                             "train_per_s": 5.0, "train_ratio": 1.25, "loss_abs_diff": 0.25}
    assert rows["cudnn"] == {"error": "RuntimeError: no kernel"}


def test_unknown_order_is_refused_and_default_always_runs(capsys):
    assert attention_backends.parse_args(["--orders", "flash"]).orders == ["default", "flash"]
    with pytest.raises(SystemExit):
        attention_backends.parse_args(["--orders", "flash2"])
    assert "unknown ['flash2']" in capsys.readouterr().err
