"""Policy registry: the registered checkpoint checker runs on actor.model.checkpoint_path."""

import pytest

from rlinf_isaac.config.structured import ConfigError
from rlinf_isaac.models.gr00t.policy_config import GR00TPolicyConfig
from rlinf_isaac.models.registry import check_policy_checkpoint, get_policy


def test_gr00t_registers_its_checkpoint_checker():
    from rlinf_isaac.models.gr00t.check import check_checkpoint

    assert get_policy("gr00t").checker() is check_checkpoint


def test_check_returns_the_verdict_or_raises_with_the_report(tmp_path):
    assert check_policy_checkpoint(GR00TPolicyConfig()) is None  # random init: nothing to check
    verdict = check_policy_checkpoint(GR00TPolicyConfig(checkpoint_path="checkpoints/gr00t_tiny_sft_stack2"))
    assert verdict.startswith("OK: ") and "loads strictly: 161 tensors, 1,563,456 parameters" in verdict
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"(?s)checkpoint_path = .* would not load:.*not a GR00T N1\.5 config.*FAIL"):
        check_policy_checkpoint(GR00TPolicyConfig(checkpoint_path=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="no such directory"):
        check_policy_checkpoint(GR00TPolicyConfig(checkpoint_path=str(tmp_path / "missing")))


@pytest.mark.parametrize("config_name", ["cpu_quickstart", "mujoco_stack2_ppo_gr00t_tiny", "mujoco_stack3_ppo_gr00t_tiny",
                                         "isaaclab_stack_ppo_gr00t_tiny", "isaaclab_stack_grpo_gr00t_tiny"])
def test_shipped_configs_start_from_shipped_checkpoints_that_load(config_name):
    """Each tiny config's checkpoint_path is a checkpoint in the repository that loads strictly
    and normalises the env contract's 8-D state and 7-D action."""
    import json
    from pathlib import Path

    from rlinf_isaac.config import load_config

    model_cfg = load_config(config_name).actor.model
    path = Path(__file__).resolve().parents[2] / model_cfg.checkpoint_path
    assert model_cfg.checkpoint_path.startswith("checkpoints/") and path.is_dir()
    assert check_policy_checkpoint(GR00TPolicyConfig(checkpoint_path=str(path))).startswith("OK: ")
    stats = json.loads((path / "experiment_cfg" / "metadata.json").read_text())["new_embodiment"]["statistics"]
    assert sum(len(s["mean"]) for s in stats["state"].values()) == 8
    assert sum(len(s["mean"]) for s in stats["action"].values()) == 7
