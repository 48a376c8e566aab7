"""Atomic checkpoints: bitwise round trip, RNG continuation, crash mid-write, retention."""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rlinf_isaac.runners.checkpoint import (
    CheckpointError,
    capture_rng_states,
    list_checkpoints,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)


def _model_and_optim(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model[0].to(torch.bfloat16)  # a second dtype in the same file
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):  # non-trivial optimizer moments and scheduler position
        x = torch.randn(5, 4)
        loss = model[2](model[1](model[0](x.bfloat16()).float())).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model, opt, sched


def _save(run_dir, step, model, opt=None, sched=None, **kw):
    return save_checkpoint(
        run_dir,
        step=step,
        model_state=model.state_dict(),
        optimizer_state=opt.state_dict() if opt else None,
        scheduler_state=sched.state_dict() if sched else None,
        rng_states=capture_rng_states(),
        config={"runner": {"max_steps": 10}, "algorithm": {"adv_type": "gae"}},
        **kw,
    )


def _draws():
    return (random.random(), float(np.random.rand()), np.random.randn(3).tolist(), torch.rand(4))


def test_round_trip_bit_identical(tmp_path):
    model, opt, sched = _model_and_optim()
    path = _save(tmp_path, 3, model, opt, sched, extra={"env_steps": 480, "gen": torch.arange(3)})
    assert path == tmp_path / "global_step_3"
    ck = load_checkpoint(tmp_path)  # run dir -> latest
    assert ck.step == 3 and ck.path == path
    assert ck.config == {"runner": {"max_steps": 10}, "algorithm": {"adv_type": "gae"}}
    assert ck.extra["env_steps"] == 480 and torch.equal(ck.extra["gen"], torch.arange(3))
    for key, t in model.state_dict().items():
        assert ck.model_state[key].dtype == t.dtype
        assert torch.equal(ck.model_state[key].view(torch.uint8), t.view(torch.uint8))  # bitwise
    model2, opt2, sched2 = _model_and_optim(seed=1)  # different weights, then restored
    model2.load_state_dict(ck.model_state)
    opt2.load_state_dict(ck.optimizer_state)
    sched2.load_state_dict(ck.scheduler_state)
    assert sched2.get_last_lr() == sched.get_last_lr() == [5e-4]  # 1e-3 * 0.5^(3 // 2)
    for s1, s2 in zip(opt.state.values(), opt2.state.values()):
        assert torch.equal(s1["exp_avg"], s2["exp_avg"])
        assert torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"])
    # one more identical step from both -> identical weights
    for m, o in ((model, opt), (model2, opt2)):
        torch.manual_seed(7)
        loss = m[2](m[1](m[0](torch.randn(5, 4).bfloat16()).float())).square().mean()
        o.zero_grad()
        loss.backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_tied_weights_saved(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight  # tied: one storage under two keys
    state = {"emb.weight": emb.weight, "head.weight": head.weight}
    save_checkpoint(tmp_path, step=0, model_state=state)
    ck = load_checkpoint(tmp_path / "global_step_0")
    assert torch.equal(ck.model_state["emb.weight"], emb.weight.detach())
    assert torch.equal(ck.model_state["head.weight"], emb.weight.detach())


def test_rng_continuation(tmp_path):
    model, _, _ = _model_and_optim()
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    _draws()  # advance past the seeds
    np.random.randn()  # an odd draw leaves a cached gaussian in numpy's legacy state
    _save(tmp_path, 1, model)  # captures RNG here
    expected = _draws()
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng_states(load_checkpoint(tmp_path).rng_states)
    got = _draws()
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])


def test_crash_mid_write_keeps_previous(tmp_path, monkeypatch):
    model, opt, sched = _model_and_optim()
    _save(tmp_path, 1, model, opt, sched)
    latest_before = (tmp_path / "latest").read_text()

    def crash(*args, **kwargs):  # the process dies while writing the optimizer file
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2, model, opt, sched)
    monkeypatch.undo()
    assert (tmp_path / ".tmp-global_step_2").is_dir()  # half-written dir left behind
    assert not (tmp_path / "global_step_2").exists()
    assert (tmp_path / "latest").read_text() == latest_before == "global_step_1\n"
    msg = r"ignoring incomplete checkpoint dir\(s\) \['.tmp-global_step_2'\]"
    with pytest.warns(UserWarning, match=msg):
        ck = load_checkpoint(tmp_path)
    assert ck.step == 1
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        load_checkpoint(tmp_path / ".tmp-global_step_2")
    _save(tmp_path, 2, model, opt, sched)  # the next save at that step cleans the leftover
    assert not (tmp_path / ".tmp-global_step_2").exists()
    assert load_checkpoint(tmp_path).step == 2


def test_retention_keeps_last_n(tmp_path):
    model, _, _ = _model_and_optim()
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, model, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert sorted(os.listdir(tmp_path)) == ["global_step_30", "global_step_40", "latest"]
    assert load_checkpoint(tmp_path).step == 40
    with pytest.raises(ValueError, match=r"keep_last=...\): expected None or an int >= 1, got 0"):
        _save(tmp_path, 50, model, keep_last=0)


def test_resave_same_step_replaces(tmp_path):
    model, _, _ = _model_and_optim()
    _save(tmp_path, 5, model, extra={"v": 1})
    _save(tmp_path, 5, model, extra={"v": 2})
    assert load_checkpoint(tmp_path).extra == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["global_step_5", "latest"]


def test_missing_and_corrupt_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        load_checkpoint(tmp_path)
    model, _, _ = _model_and_optim()
    _save(tmp_path, 1, model)
    _save(tmp_path, 2, model)
    model_file = tmp_path / "global_step_2" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-8])  # truncated
    msg = r"model.safetensors: expected \d+ bytes, found \d+ bytes"
    with pytest.raises(CheckpointError, match=msg):
        load_checkpoint(tmp_path)
    shutil.rmtree(tmp_path / "global_step_2")
    with pytest.raises(CheckpointError, match=r"points to 'global_step_2'.*\['global_step_1'\]"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "global_step_1").step == 1


def test_bad_config_and_extra_named(tmp_path):
    state = _model_and_optim()[0].state_dict()
    with pytest.raises(TypeError, match=r"config\.env\.obj: cannot store object"):
        save_checkpoint(tmp_path, step=0, model_state=state, config={"env": {"obj": object()}})
    with pytest.raises(TypeError, match=r"extra\.gen: cannot store Generator"):
        save_checkpoint(tmp_path, step=0, model_state=state, extra={"gen": torch.Generator()})
    assert list_checkpoints(tmp_path) == []  # rejected before anything was written


def test_run_dir_without_latest_uses_newest(tmp_path):
    model, _, _ = _model_and_optim()
    _save(tmp_path, 4, model)
    _save(tmp_path, 12, model)  # numeric order, not string order ("12" < "4")
    (tmp_path / "latest").unlink()
    with pytest.warns(UserWarning, match="no 'latest' file; using the newest checkpoint global_step_12"):
        assert load_checkpoint(tmp_path).step == 12


_SAVER = """
import sys, torch
from rlinf_isaac.runners.checkpoint import list_checkpoints, save_checkpoint
run = sys.argv[1]
done = list_checkpoints(run)
step = done[-1][0] if done else 0  # re-save the newest step first (as a resumed run may), then go on
print("ready", flush=True)
while True:
    w = torch.full((512, 1024), float(step))  # 2 MB: saves and deletions take a while
    save_checkpoint(run, step=step, model_state={"w": w}, optimizer_state={"n": step}, extra={"s": step},
                    keep_last=2)
    step += 1
"""


def test_no_kill_leaves_a_listed_checkpoint_that_does_not_load(tmp_path):
    """SIGKILL a process that saves every step with keep_last=2 at many moments: after each kill,
    every listed checkpoint loads, and so does the run dir (its ``latest``, one of them)."""
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        listed = list_checkpoints(run)
        for step, path in listed:
            ck = load_checkpoint(path)
            assert ck.step == step and torch.equal(ck.model_state["w"], torch.full((512, 1024), float(step)))
        # latest, the commit point, names a listed checkpoint: the newest, or the one before when
        # the kill fell between a save's rename and its update of latest
        if (run / "latest").exists():
            assert load_checkpoint(run).step in {s for s, _ in listed}
    assert len(listed) >= 1 and listed[-1][0] >= 2
