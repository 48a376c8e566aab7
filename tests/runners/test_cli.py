"""The command line: which quickstart runs without a config, --config-dir, the closing line."""

from pathlib import Path

import pytest

from rlinf_isaac.config import load_config
from rlinf_isaac.runners import cli


def test_no_config_picks_the_gpu_quickstart_only_with_a_cuda_gpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.default_config() == ("cpu_quickstart", "no CUDA GPU found")
    name, overrides, _ = cli.parse_args(["runner.max_steps=3"])
    assert (name, overrides) == ("cpu_quickstart", ["runner.max_steps=3"])
    assert "config: cpu_quickstart (no config given; no CUDA GPU found)" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "NVIDIA H200")
    assert cli.default_config() == ("gpu_quickstart", "a CUDA GPU is present (NVIDIA H200)")
    with pytest.raises(SystemExit):
        cli.parse_args(["--default-config"])
    assert capsys.readouterr().out == "gpu_quickstart\ta CUDA GPU is present (NVIDIA H200)\n"
    # both quickstarts start from the shipped SFT checkpoint, on one GPU or on the CPU
    gpu, cpu = load_config("gpu_quickstart"), load_config("cpu_quickstart")
    assert gpu.actor.model.checkpoint_path == cpu.actor.model.checkpoint_path == "checkpoints/gr00t_tiny_sft_stack2"
    assert gpu.cluster.gpus_per_node == 1 and cpu.cluster.gpus_per_node is None


def test_config_dir_is_read(tmp_path):
    (tmp_path / "mine.yaml").write_text((Path(cli.CONFIG_DIR) / "cpu_quickstart.yaml").read_text())
    name, overrides, config_dir = cli.parse_args(["--config-dir", str(tmp_path), "mine", "a.b=1"])
    assert (name, overrides, config_dir) == ("mine", ["a.b=1"], str(tmp_path))


def test_closing_line_names_only_what_the_run_wrote(tmp_path):
    cfg = load_config("cpu_quickstart", [f"runner.logger.log_path={tmp_path}"])
    assert cli.written(cfg) == f"nothing under {tmp_path}"
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "video" / "eval").mkdir(parents=True)  # an empty video folder is not a video
    assert cli.written(cfg) == f"tensorboard --logdir {tmp_path / 'tensorboard'}"
    (tmp_path / "video" / "eval" / "global_step_0.mp4").write_bytes(b"")
    (tmp_path / "checkpoints").mkdir()
    assert cli.written(cfg).endswith(f"checkpoints in {tmp_path / 'checkpoints'}; videos in {tmp_path / 'video' / 'eval'}")
