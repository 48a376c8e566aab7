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


def test_a_dead_worker_ends_the_run_with_a_report_not_a_traceback(tmp_path, capsys, monkeypatch):
    from rlinf_isaac.cluster.worker_group import WorkerError

    class DyingRunner:
        def __init__(self, cfg):
            pass

        def run(self):
            raise WorkerError("worker env rank 0 died during 'chunk_step' (ActorDiedError: ...)\n"
                              "--- last lines of env-0.log ---\nSegmentation fault")

        def close(self):
            pass

    import rlinf_isaac.runners.train_runner as train_runner

    monkeypatch.setattr(train_runner, "TrainRunner", DyingRunner)
    assert cli.main_train(["cpu_quickstart", f"runner.logger.log_path={tmp_path}"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: the run stopped: worker env rank 0 died during 'chunk_step'")
    assert "Segmentation fault" in err and "Traceback" not in err
    assert f"driver traceback: {tmp_path / 'driver_traceback.log'}" in err
    assert "Traceback" in (tmp_path / "driver_traceback.log").read_text()


def test_worker_error_says_whether_its_log_is_missing_or_empty(tmp_path):
    from types import SimpleNamespace

    from rlinf_isaac.cluster.worker_group import WorkerGroup

    group = WorkerGroup.__new__(WorkerGroup)
    group.name = "env"
    group.members = [SimpleNamespace(rank=0, log_file=tmp_path / "env-0.log")]
    assert "no log at" in str(group._error(0, "died"))
    (tmp_path / "env-0.log").write_text("")
    assert f"its log {tmp_path / 'env-0.log'} is empty" in str(group._error(0, "died"))
    (tmp_path / "env-0.log").write_text("boom\n")
    assert str(group._error(0, "died")).endswith("--- last lines of " + str(tmp_path / "env-0.log") + " ---\nboom")
