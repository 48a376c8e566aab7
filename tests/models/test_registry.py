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
