"""Environment variables that override schema keys: applied at load, validated, reported."""

import pytest

from rlinf_isaac.config import ConfigError, load_config
from rlinf_isaac.config.environment import ENV_OVERRIDES, apply_env_overrides, describe_switches


def test_each_documented_variable_sets_its_key(monkeypatch):
    monkeypatch.setenv("RLINF_TENSOR_TRANSPORT", "pickle")
    monkeypatch.setenv("RLINF_ISAACLAB_PYTHON", "/opt/isaaclab/python.sh")
    monkeypatch.setenv("RLINF_TASK_MODULES", "rlinf_isaac.tasks.stack_cube, rlinf_isaac.tasks")
    cfg = load_config("cpu_quickstart", ["env.train.task_modules=[rlinf_isaac.tasks]"])
    assert cfg.cluster.tensor_transport == "pickle"
    assert cfg.env.train.isaaclab.python == cfg.env.eval.isaaclab.python == "/opt/isaaclab/python.sh"
    # appended, without repeating what the config lists
    assert cfg.env.train.task_modules == ["rlinf_isaac.tasks", "rlinf_isaac.tasks.stack_cube"]
    assert "cluster.tensor_transport=pickle (from RLINF_TENSOR_TRANSPORT)" in describe_switches(cfg)
    assert "cluster.cuda_ipc=true," in describe_switches(cfg)


def test_bad_values_name_the_variable_and_the_key(monkeypatch):
    monkeypatch.setenv("RLINF_TENSOR_TRANSPORT", "zerocopy")
    with pytest.raises(ConfigError, match=r"RLINF_TENSOR_TRANSPORT='zerocopy' \(sets cluster.tensor_transport\): "
                                          r"expected one of bytes, pickle"):
        load_config("cpu_quickstart")


def test_unset_or_empty_variables_change_nothing():
    data = {"cluster": {"cuda_ipc": True}, "env": {"train": {"task_modules": ["a"]}, "eval": None}}
    assert apply_env_overrides(dict(data), environ={"RLINF_CUDA_IPC": ""}) == data
    out = apply_env_overrides({"env": {"train": {}, "eval": None}}, environ={"RLINF_ISAACLAB_PYTHON": "py"})
    assert out == {"env": {"train": {"isaaclab": {"python": "py"}}, "eval": None}}
    assert {o.var for o in ENV_OVERRIDES} == {"RLINF_CUDA_IPC", "RLINF_TENSOR_TRANSPORT", "RLINF_ISAACLAB_PYTHON",
                                              "RLINF_TASK_MODULES"}
