"""Algorithm registries: built-in names, look-up, unknown-name and duplicate errors."""

import pytest

from rlinf_isaac.algorithms import advantages, losses
from rlinf_isaac.algorithms.registry import (
    UnknownAlgorithmError,
    get_advantage,
    get_policy_loss,
    get_value_loss,
    list_advantages,
    list_policy_losses,
    list_value_losses,
    register_advantage,
)


def test_builtin_names_resolve_to_their_functions():
    assert {"gae", "grpo"} <= set(list_advantages())
    assert get_advantage("gae") is advantages.gae
    assert get_advantage("grpo") is advantages.grpo
    assert "ppo" in list_policy_losses() and get_policy_loss("ppo") is losses.ppo_policy_loss
    assert "clipped" in list_value_losses() and get_value_loss("clipped") is losses.clipped_value_loss


@pytest.mark.parametrize(
    "getter, key, listed",
    [
        (get_advantage, "algorithm.adv_type", "gae, grpo"),
        (get_policy_loss, "algorithm.loss_type", "ppo"),
        (get_value_loss, "algorithm.value_loss_type", "clipped"),
    ],
)
def test_unknown_name_lists_registered_ones(getter, key, listed):
    with pytest.raises(UnknownAlgorithmError, match=f"{key}: unknown .* 'gea'.*: {listed}"):
        getter("gea")
    assert issubclass(UnknownAlgorithmError, ValueError)


def test_duplicate_registration_is_an_error():
    def gae(*args):  # a different function claiming the built-in name
        return args

    with pytest.raises(ValueError, match="'gae' is registered twice"):
        register_advantage("gae", algorithm="ppo")(gae)
    assert get_advantage("gae") is advantages.gae
    with pytest.raises(ValueError, match="non-empty strings"):
        register_advantage("", algorithm="ppo")
