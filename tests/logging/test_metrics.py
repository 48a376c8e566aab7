"""MetricLogger: TensorBoard events read back with tensorboard's own reader, names, docs."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlinf_isaac.logging.metrics import (
    METRICS,
    NAMESPACES,
    MetricLogger,
    MetricNameError,
    check_metric_name,
    metrics_markdown,
    tile_videos,
    wandb_mode,
)

REPO = Path(__file__).resolve().parents[2]


def _read(tb_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(tb_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_read_back_with_names_values_steps(tmp_path):
    with MetricLogger(tmp_path, "proj", "exp", config={"algorithm": {"gamma": 0.99}}) as log:
        log.log({"actor/policy_loss": 0.25, "env/success_once": torch.tensor(0.5)}, step=1)
        log.log({"actor/policy_loss": np.float32(-1.5), "time/rollout": 2}, step=3)
        log.log({"time/my_new_phase": 0.125}, step=3)  # documented by the time/* family
    acc = _read(tmp_path / "tensorboard")
    loss = [(e.step, e.value) for e in acc.Scalars("actor/policy_loss")]
    assert loss == [(1, 0.25), (3, -1.5)]  # values exact in float32
    assert [(e.step, e.value) for e in acc.Scalars("env/success_once")] == [(1, 0.5)]
    assert [(e.step, e.value) for e in acc.Scalars("time/rollout")] == [(3, 2.0)]
    assert [(e.step, e.value) for e in acc.Scalars("time/my_new_phase")] == [(3, 0.125)]
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"gamma": 0.99' in text


def test_video_logged_as_gif_with_all_frames(tmp_path):
    # 2 videos x 3 frames of 4x5 pixels; frame t of video n has the flat colour (40t, 100n, 7).
    frames = np.zeros((2, 3, 4, 5, 3), dtype=np.uint8)
    for n in range(2):
        for t in range(3):
            frames[n, t] = (40 * t, 100 * n, 7)
    with MetricLogger(tmp_path, "proj", "exp") as log:
        log.log_video("video/train", frames, step=5, fps=10)
    (event,) = _read(tmp_path / "tensorboard").Images("video/train")
    # grid: cols = ceil(sqrt(2)) = 2, rows = 1 -> 4 x 10 pixels
    assert (event.step, event.height, event.width) == (5, 4, 10)
    gif = Image.open(io.BytesIO(event.encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames == 3
    for t in range(3):
        gif.seek(t)
        rgb = np.asarray(gif.convert("RGB"))
        assert tuple(rgb[0, 0]) == (40 * t, 0, 7)  # video 0, left cell
        assert tuple(rgb[3, 9]) == (40 * t, 100, 7)  # video 1, right cell
        assert gif.info["duration"] == 100  # 1000 / fps ms


def test_tile_videos_pads_with_black():
    frames = np.stack([np.full((1, 1, 1, 3), v, np.uint8) for v in (10, 20, 30)])  # [3,1,1,1,3]
    grid = tile_videos(frames)  # cols = ceil(sqrt(3)) = 2, rows = 2
    assert grid.shape == (1, 2, 2, 3)
    assert grid[0, :, :, 0].tolist() == [[10, 20], [30, 0]]


def test_video_bad_input_names_shape(tmp_path):
    with MetricLogger(tmp_path, "p", "e") as log:
        msg = r"uint8 \[T, H, W, 3\].*float32, shape \(2, 4, 4, 3\)"
        with pytest.raises(ValueError, match=msg):
            log.log_video("video/x", np.zeros((2, 4, 4, 3), np.float32), step=0)


def test_resume_keeps_the_resumed_step_and_purges_later_events(tmp_path):
    with MetricLogger(tmp_path, "p", "e") as log:  # the interrupted run got to step 4
        for s in range(5):
            log.log({"actor/lr": float(s)}, step=s)
    # TensorBoard reads event files in name order; names start with the creation second and end
    # with a per-process counter compared as text ("10" < "9"), so two writers of one second are
    # ordered by chance once a long test session has made 10+ writers. A resumed run is never
    # started within a second of the run it resumes: wait for the next second.
    time.sleep(1.05)
    with MetricLogger(tmp_path, "p", "e", resume_step=2) as log:  # resumed from its step-2 checkpoint
        log.log({"actor/lr": 30.0}, step=3)
    acc = _read(tmp_path / "tensorboard")
    # steps 0..2 were complete and stay; 3 and 4 of the interrupted run are replaced
    assert [(e.step, e.value) for e in acc.Scalars("actor/lr")] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]


def test_bad_names_rejected_listing_namespaces(tmp_path):
    with MetricLogger(tmp_path, "p", "e") as log:
        with pytest.raises(MetricNameError) as err:
            log.log({"policy_loss": 1.0}, step=0)
        for ns in NAMESPACES:
            assert ns in str(err.value)
        with pytest.raises(MetricNameError, match="'actors/policy_loss' is not namespaced"):
            log.log({"actors/policy_loss": 1.0}, step=0)
        with pytest.warns(UserWarning, match="closest: \\['actor/policy_loss'"):
            log.log({"actor/polcy_loss": 1.0}, step=0)
        with pytest.raises(ValueError, match="expected a scalar.*shape \\(2,\\)"):
            log.log({"actor/lr": torch.zeros(2)}, step=0)
    with pytest.raises(MetricNameError, match="not documented"):
        check_metric_name("actor/polcy_loss", strict=True)
    assert check_metric_name("time/anything") and check_metric_name("eval/success_rate")


def test_required_names_documented():
    required = """actor/policy_loss actor/value_loss actor/grad_norm actor/approx_kl
    actor/pg_clipfrac actor/value_clip_ratio actor/entropy actor/lr actor/ratio_mean
    actor/explained_variance rollout/returns_mean rollout/advantages_mean rollout/values_mean
    rollout/logprobs_mean env/success_once env/episode_len env/return env/num_episodes
    env/steps_per_s eval/success_rate eval/success_ci_low eval/success_ci_high eval/episode_len
    eval/return time/rollout time/sync time/advantages time/update time/eval time/checkpoint
    time/step time/env time/inference""".split()
    assert set(required) <= set(METRICS)
    for name in METRICS:
        check_metric_name(name, strict=True)  # every documented name is itself valid


def test_docs_metrics_md_in_sync():
    doc = (REPO / "docs" / "metrics.md").read_text()
    regenerate = "python -m rlinf_isaac.logging.metrics --markdown > docs/metrics.md"
    assert doc == metrics_markdown(), f"docs/metrics.md is stale; run: {regenerate}"
    assert "| `actor/grad_norm` | sqrt(sum_p \\|\\|grad p\\|\\|^2)" in doc  # pipes escaped


def test_unknown_backend_lists_valid(tmp_path):
    msg = r"unknown backend\(s\) \['swanlab'\]; valid: \['tensorboard', 'wandb'\]"
    with pytest.raises(ValueError, match=msg):
        MetricLogger(tmp_path, "p", "e", backends=("tensorboard", "swanlab"))


def test_wandb_missing_fails_at_construction(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    with pytest.raises(ImportError, match=r"pip install rlinf_isaac\[wandb\]"):
        MetricLogger(tmp_path, "p", "e", backends=("tensorboard", "wandb"))
    assert not (tmp_path / "tensorboard").exists()  # failed before writing anything


def test_wandb_mode_offline_without_login(tmp_path):
    no_netrc = tmp_path / "missing"
    assert wandb_mode({}, no_netrc) == "offline"
    assert wandb_mode({"WANDB_MODE": "disabled"}, no_netrc) == "disabled"  # user's choice wins
    assert wandb_mode({"WANDB_API_KEY": "k"}, no_netrc) == "online"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password k\n")
    assert wandb_mode({}, netrc) == "online"


def test_wandb_offline_run_when_installed(tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # optional extra: pip install rlinf_isaac[wandb]
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    frames = np.zeros((3, 4, 4, 3), np.uint8)
    frames[1], frames[2] = 120, 240  # three distinct frames
    log = MetricLogger(tmp_path, "proj", "exp", backends=["wandb"], config={"a": 1})
    assert log._wandb_run.settings.mode == "offline"
    log.log({"actor/lr": 0.5}, step=1)
    log.log_video("video/train", frames, step=1, fps=5)
    log.close()
    (gif_path,) = (tmp_path / "wandb").glob("offline-run-*/files/media/videos/video/train_1_*.gif")
    assert Image.open(gif_path).n_frames == 3
    assert (tmp_path / "tensorboard").is_dir()  # TensorBoard is on whatever the list says
