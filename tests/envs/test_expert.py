"""Scripted expert: succeeds on seeded episodes of both tasks; CLI lists tasks and prints JSON."""

import json

import pytest

from rlinf_isaac.envs.expert import main, run_expert
from rlinf_isaac.envs.registry import list_tasks


@pytest.mark.parametrize(
    "task_id, episodes",
    [("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", 2), ("MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0", 1)],
)
def test_expert_succeeds(task_id, episodes):
    out = run_expert(task_id, episodes, num_envs=episodes, seed=0, image_size=16)
    assert out == {"task": task_id, "episodes": episodes, "success_rate": 1.0}


def test_cli_list_and_unknown(capsys):
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list_tasks()
    with pytest.raises(KeyError, match="registered task ids"):
        main(["--task", "Nope-v0", "--episodes", "1"])


def test_cli_prints_json_last(capsys):
    main(["--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", "--episodes", "1", "--num-envs", "1",
          "--image-size", "16"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["episodes"] == 1


def test_cli_record_and_video(tmp_path, capsys):
    main(["--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", "--episodes", "1", "--num-envs", "1",
          "--image-size", "16", "--record", str(tmp_path / "ds"), "--video", str(tmp_path / "v.mp4")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["success_rate"] == 1.0
    assert len(list((tmp_path / "ds").rglob("episode_000000*"))) >= 1
    assert (tmp_path / "v.mp4").stat().st_size > 0
