"""Tests of the env contract helpers in rlinf_isaac.envs.base."""

import math

import pytest
import torch

from rlinf_isaac.envs.base import (
    Obs,
    as_env_ids,
    as_reset_state_ids,
    upscaled_video_frames,
    validate_actions,
    wilson_interval,
)


def test_validate_actions_accepts_and_converts():
    a = torch.zeros(2, 3, 7, dtype=torch.float64)
    out = validate_actions(a, num_envs=2)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 7)


@pytest.mark.parametrize(
    "actions, match",
    [
        (torch.zeros(2, 3, 6), r"shape \[B=2, C, A=7\]"),
        (torch.zeros(3, 3, 7), r"got \(3, 3, 7\)"),
        (torch.zeros(2, 7), r"got \(2, 7\)"),
        (torch.zeros(2, 0, 7), "C >= 1"),
    ],
)
def test_validate_actions_shape_errors(actions, match):
    with pytest.raises(ValueError, match=match):
        validate_actions(actions, num_envs=2)


def test_validate_actions_dtype_and_nonfinite():
    with pytest.raises(TypeError, match="floating-point"):
        validate_actions(torch.zeros(2, 1, 7, dtype=torch.int64), num_envs=2)
    with pytest.raises(TypeError, match="torch.Tensor"):
        validate_actions([[0.0] * 7], num_envs=1)
    a = torch.zeros(2, 2, 7)
    a[1, 1, 3] = math.nan
    with pytest.raises(ValueError, match="env 1, chunk step 1, dim 3"):
        validate_actions(a, num_envs=2)


def test_env_ids_and_reset_state_ids():
    assert as_env_ids(None, 3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="in \\[0, 2\\]"):
        as_env_ids([3], 3)
    with pytest.raises(ValueError, match="unique"):
        as_env_ids([1, 1], 3)
    assert as_reset_state_ids(None, 2) is None
    with pytest.raises(ValueError, match="one id per reset env"):
        as_reset_state_ids([1, 2, 3], 2)


def test_wilson_interval_contains_rate():
    lo, hi = wilson_interval(50, 100)
    # p = 0.5, n = 100: Wilson 95% interval is about [0.404, 0.596]
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_upscaled_video_frames_fallback():
    """A backend that renders only at the policy's size: its observations, resized, one frame per chunk."""
    main = torch.zeros(3, 8, 16, 3, dtype=torch.uint8)
    main[:, :, 8:] = 200  # right half bright
    obs = Obs(main_images=main, wrist_images=main.clone(), states=torch.zeros(3, 8), task_descriptions=["t"] * 3)
    v = upscaled_video_frames(obs, 32, num_envs=2)
    assert set(v) == {"main_images", "wrist_images"}
    assert v["main_images"].shape == (2, 1, 32, 64, 3) and v["main_images"].dtype == torch.uint8  # aspect kept
    assert (v["main_images"][:, 0, :, :28] == 0).all() and (v["main_images"][:, 0, :, 36:] == 200).all()
