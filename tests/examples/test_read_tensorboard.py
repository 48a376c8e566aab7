"""A real 1-step run of the example task through Ray, then examples/read_tensorboard.py on its logs.

The run (``python examples/custom_task.py train ...``: cpu_quickstart on the green-on-red
task, 4 envs, 32-step episodes) also proves that the task reaches the Ray env workers:
an unregistered task id would fail the env worker's make_env with a KeyError.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]
SMALL = ["actor.model.checkpoint_path=null", "env.train.total_num_envs=4", "env.eval.total_num_envs=4",
         "env.train.max_episode_steps=32", "env.eval.max_episode_steps=32", "actor.global_batch_size=8",
         "actor.micro_batch_size=4", "algorithm.update_epochs=1", "runner.eval_episodes=4",
         "runner.max_steps=1", "runner.save_interval=-1", "runner.val_check_interval=1",
         "env.train.video_cfg.save_video=true", "env.train.video_cfg.interval=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    log = tmp_path_factory.mktemp("run")
    cmd = [sys.executable, "examples/custom_task.py", "train", "cpu_quickstart", *SMALL,
           f"runner.logger.log_path={log}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return log


def test_table_videos_and_env_steps(example, run_dir, capsys):
    mod = example("read_tensorboard.py")
    scalars = mod.load_scalars(run_dir)
    # 4 envs x 2 chunk steps (32 / 16) x 16 actions = 128 env steps in global step 1; the
    # quickstart evaluates the starting policy first (runner.val_before_train), at 0 env steps
    assert mod.env_steps_by_step(scalars) == {0: 0.0, 1: 128.0}
    assert [s for s, _, _ in scalars["actor/policy_loss"]] == [1]
    assert mod.main([str(run_dir), "--png", str(run_dir / "plots")]) == 0
    out = capsys.readouterr().out.splitlines()
    head = out[1].split()
    assert head[:4] == ["step", "env_steps", "env/success_once", "eval/success_rate"]
    step0, row = dict(zip(head, out[2].split())), dict(zip(head, out[3].split()))
    assert step0["step"] == "0" and step0["env_steps"] == "0" and step0["eval/success_rate"] == "0"
    assert row["step"] == "1" and row["env_steps"] == "128"
    assert row["env/success_once"] == "0"  # random-init policy: no stack in 32 steps
    assert float(row["actor/policy_loss"]) == pytest.approx(scalars["actor/policy_loss"][0][2], rel=1e-3)
    videos = mod.list_videos(run_dir)
    assert videos and all(v.parts[:2] == ("video", "train") and v.suffix == ".mp4" for v in videos)
    assert f"videos ({len(videos)}):" in out


def test_png_curves(example, run_dir):
    from PIL import Image

    mod = example("read_tensorboard.py")
    paths = mod.write_curves(mod.load_scalars(run_dir), run_dir / "png")
    names = sorted(p.name for p in paths)
    assert names == ["returns_vs_env_steps.png", "returns_vs_wall_time.png",
                     "success_vs_env_steps.png", "success_vs_wall_time.png"]
    img = Image.open(run_dir / "png" / "success_vs_env_steps.png").convert("RGB")
    assert img.size in ((640, 420), (600, 400))  # pillow renderer / matplotlib 6x4 in at 100 dpi
    assert len(img.getcolors(1 << 16)) > 2  # more than background + black: series were drawn


def test_env_steps_rebuilt_from_rate_and_rollout_time(example):
    mod = example("read_tensorboard.py")
    scalars = {"env/steps_per_s": [(1, 0.0, 100.0), (2, 1.0, 50.0)],
               "time/rollout": [(1, 0.0, 1.28), (2, 1.0, 2.56)]}
    # step 1: 100 * 1.28 = 128; step 2: 128 + 50 * 2.56 = 256
    assert mod.env_steps_by_step(scalars) == {1: 128.0, 2: 256.0}
    scalars["train/env_steps"] = [(1, 0.0, 7.0)]  # a logged counter wins
    assert mod.env_steps_by_step(scalars) == {1: 7.0}


def test_comparison_labels_each_run_and_keeps_its_points(example, tmp_path):
    from PIL import Image

    mod = example("read_tensorboard.py")
    assert mod.run_labels(["logs/a/sync", "logs/b/overlap"]) == ["sync", "overlap"]
    assert mod.run_labels(["x/run", "y/run"]) == ["x/run", "y/run"]  # clashing names: whole paths
    sync = {"eval/success_rate": [(20, 0.0, 0.4), (40, 0.0, 0.6)],
            "train/wall_time_s": [(20, 0.0, 160.0), (40, 0.0, 330.0)],
            "train/env_steps": [(20, 0.0, 4e5), (40, 0.0, 8e5)]}
    overlap = {"eval/success_rate": [(40, 0.0, 0.5)], "env/success_once": [(40, 0.0, 0.55)],
               "train/wall_time_s": [(40, 0.0, 300.0)], "train/env_steps": [(40, 0.0, 8e5)]}
    runs = {"sync": sync, "overlap": overlap}
    by_wall = mod.comparison_series(runs, mod.CURVES["success"], "wall_time")
    assert by_wall == {"sync: eval/success_rate": ([160.0, 330.0], [0.4, 0.6]),
                       "overlap: env/success_once": ([300.0], [0.55]),
                       "overlap: eval/success_rate": ([300.0], [0.5])}
    by_steps = mod.comparison_series(runs, mod.CURVES["success"], "env_steps")
    assert by_steps["sync: eval/success_rate"] == ([4e5, 8e5], [0.4, 0.6])
    paths = mod.write_comparison(runs, tmp_path)
    assert sorted(p.name for p in paths) == ["compare_success_vs_env_steps.png", "compare_success_vs_wall_time.png"]
    assert len(Image.open(paths[0]).convert("RGB").getcolors(1 << 16)) > 2
