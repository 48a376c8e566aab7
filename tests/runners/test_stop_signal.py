"""Stopping a training run by SIGTERM / SIGINT: the step in progress finishes and checkpoints."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlinf_isaac.config import load_config
from rlinf_isaac.data.episodes import EpisodeLog
from rlinf_isaac.runners.checkpoint import load_checkpoint
from rlinf_isaac.runners.controller import RolloutOutput
from rlinf_isaac.runners.stop_signal import restore_interrupt, stop_on_signals
from rlinf_isaac.runners.train_runner import TrainRunner

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_signal_asks_a_repeat_soon_after_is_the_same_request_a_later_one_stops_at_once():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(repeat_after_s=60.0) as request:
        assert not request and request.exit_code == 0
        os.kill(os.getpid(), signal.SIGTERM)
        assert request and request.name == "SIGTERM" and request.exit_code == 128 + 15
        os.kill(os.getpid(), signal.SIGINT)  # within 60 s: the same request (e.g. a group signal forwarded)
        assert request.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    with pytest.raises(KeyboardInterrupt, match="SIGINT after SIGTERM"):
        with stop_on_signals(repeat_after_s=0.0):
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)


def test_restore_interrupt_undoes_an_inherited_ignored_sigint():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore_interrupt()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


class _SignallingController:
    """A cluster stand-in whose rollout of ``signal_at_step`` sends SIGTERM to this process."""

    def __init__(self, signal_at_step):
        self.signal_at_step, self.steps, self.evals, self.weight = signal_at_step, [], [], torch.zeros(2)

    def sync_weights(self, version):
        pass

    def rollout(self, step, record_video=False):
        self.steps.append(step)
        if step == self.signal_at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return RolloutOutput(pieces=[], metrics={"env/success_once": 0.5}, env_steps=10, video=None, seconds=1.0)

    def compute_advantages(self, pieces):
        return {}

    def update(self, step):
        self.weight += 1.0  # one update per step
        return {"actor/policy_loss": 0.0}

    def evaluate(self, episodes, seed, record_video=False):
        self.evals.append(seed)
        return EpisodeLog(success_once=[1.0], returns=[1.0], episode_len=[5.0]), None

    def actor_state(self):
        return {"model": {"w": self.weight.clone()}, "optimizer": {}, "scheduler": {}}


def test_sigterm_ends_the_run_after_the_step_in_progress_with_a_checkpoint_and_no_evaluation(tmp_path):
    cfg = load_config("cpu_quickstart", [f"runner.logger.log_path={tmp_path}", "runner.max_steps=50",
                                         "runner.val_check_interval=1", "runner.save_interval=100",
                                         "runner.val_before_train=false"])
    cluster = _SignallingController(signal_at_step=2)  # the third step (0-based)
    runner = TrainRunner(cfg, controller=cluster)
    try:
        runner.run()
    finally:
        runner.progress.close()
        runner.logger.close()
    assert cluster.steps == [0, 1, 2]  # the step in progress finished, no later one started
    assert len(cluster.evals) == 2  # after steps 1 and 2, not after the interrupted third
    assert runner.stop_request.name == "SIGTERM" and runner.stop_request.exit_code == 143
    ckpt = load_checkpoint(tmp_path / "checkpoints")
    assert ckpt.step == 3 and torch.equal(ckpt.model_state["w"], torch.full((2,), 3.0))  # all three updates


def test_run_embodiment_passes_sigterm_on_to_the_run_which_checkpoints_and_exits_143(tmp_path):
    """The launcher under `timeout`: SIGTERM to the script alone reaches the training run
    through Ray, which checkpoints the step in progress and exits 143."""
    pytest.importorskip("ray")
    small = ["actor.model.checkpoint_path=null", "env.train.total_num_envs=4", "env.eval.total_num_envs=4",
             "env.train.max_episode_steps=32", "env.eval.max_episode_steps=32", "actor.global_batch_size=8",
             "actor.micro_batch_size=4", "algorithm.update_epochs=1", "runner.val_before_train=false",
             "runner.val_check_interval=-1", "runner.save_interval=100", "runner.max_steps=1000"]
    log = tmp_path / "run"
    proc = subprocess.Popen(["bash", str(ROOT / "run_embodiment.sh"), "cpu_quickstart", *small,
                             f"runner.logger.log_path={log}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHON": sys.executable})
    lines = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:  # wait for the first finished step
        lines.append(line)
        if "[train] step 1/" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=240)
    text = "".join(lines) + out
    assert proc.returncode == 143, text[-3000:]
    assert "SIGTERM received" in text and "[run_embodiment.sh] exit code 143" in text
    step = load_checkpoint(log / "checkpoints").step
    assert 1 <= step < 1000 and f"stopped after global step {step}; resume with runner.resume_dir=" in text
