"""run_embodiment.sh / eval_embodiment.sh: config listing, errors before any worker starts."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHON": sys.executable}


def _run(script, *args, tmp_path):
    return subprocess.run(["bash", str(ROOT / script), *args, f"runner.logger.log_path={tmp_path}"]
                          if args and args[0] != "--list" else ["bash", str(ROOT / script), *args],
                          capture_output=True, text=True, env=ENV, timeout=120)


def test_list_prints_configs(tmp_path):
    for script in ("run_embodiment.sh", "eval_embodiment.sh"):
        out = _run(script, "--list", tmp_path=tmp_path)
        assert out.returncode == 0
        assert {"cpu_quickstart", "mujoco_stack2_ppo_gr00t_tiny", "isaaclab_ppo_gr00t"} <= set(out.stdout.split())


def test_bad_input_fails_before_workers_start(tmp_path):
    out = _run("run_embodiment.sh", "no_such_config", tmp_path=tmp_path)
    assert out.returncode == 2 and "available configs" in out.stderr + out.stdout
    out = _run("run_embodiment.sh", "cpu_quickstart", "algorithm.gama=0.9", tmp_path=tmp_path)
    assert out.returncode == 2 and "did you mean 'gamma'" in out.stdout + out.stderr
    assert "placement on" not in out.stdout  # nothing was started
    out = _run("eval_embodiment.sh", "rollout.pipeline_stage_num=0", tmp_path=tmp_path)  # quickstart config
    assert out.returncode == 2 and "rollout.pipeline_stage_num = 0" in out.stdout + out.stderr
    assert (tmp_path / "console.log").exists()  # the run's console output is kept with its logs
    out = _run("run_embodiment.sh", "actor.model.checkpoint_path=/nonexistent/ckpt", tmp_path=tmp_path)
    assert out.returncode == 2 and "make_tiny_sft.sh" in out.stdout + out.stderr
    assert "placement on" not in out.stdout



def test_a_checkpoint_that_would_not_load_stops_the_run_with_the_checkers_report(tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    ckpt = tmp_path / "ckpt"
    shutil.copytree(ROOT / "checkpoints" / "gr00t_tiny_sft_stack2", ckpt)
    sd = load_file(str(ckpt / "model.safetensors"))
    del sd["action_head.vlln.weight"]
    save_file(sd, str(ckpt / "model.safetensors"))
    out = _run("run_embodiment.sh", "cpu_quickstart", f"actor.model.checkpoint_path={ckpt}", tmp_path=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "would not load" in text, text[-2000:]
    assert "missing from the checkpoint (1):\n    action_head.vlln.weight" in text and f"FAIL: {ckpt}: 1 missing" in text
    assert "placement on" not in out.stdout  # stopped before any worker


def test_bad_task_and_resume_dir_fail_before_workers_start(tmp_path):
    out = _run("run_embodiment.sh", "cpu_quickstart", "env.train.task_id=NoSuchTask", tmp_path=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "env.train.task_id = 'NoSuchTask': no such task" in text, text[-1500:]
    assert "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0" in text and "env.train.task_modules" in text
    for resume in (tmp_path / "nowhere", tmp_path):  # nonexistent; a folder without checkpoints
        out = _run("run_embodiment.sh", "cpu_quickstart", f"runner.resume_dir={resume}", tmp_path=tmp_path / "log")
        text = out.stdout + out.stderr
        assert out.returncode == 2 and f"runner.resume_dir = '{resume}'" in text, text[-1500:]
        assert "global_step_N" in text and "placement on" not in out.stdout
