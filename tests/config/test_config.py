"""Config composition and strict validation: every shipped config loads, bad input names its key."""

from pathlib import Path

import pytest

from rlinf_isaac.cluster.placement import parse_placement
from rlinf_isaac.config import ConfigError, from_dict, list_configs, load_config, validate
from rlinf_isaac.config.schema import AlgorithmConfig, ClusterConfig, Config

FULL_MODEL_CONFIGS = {"isaaclab_ppo_gr00t", "isaaclab_grpo_gr00t"}


@pytest.mark.parametrize("name", [n for n in list_configs() if n not in FULL_MODEL_CONFIGS])
def test_shipped_configs_load_and_validate(name):
    cfg = load_config(name)
    assert isinstance(cfg, Config)
    validate(cfg, env_ranks=1, actor_ranks=1)


@pytest.mark.parametrize("name", sorted(FULL_MODEL_CONFIGS))
def test_full_model_configs_need_a_checkpoint(name):
    with pytest.raises(ConfigError, match="checkpoint_path"):
        load_config(name)
    cfg = load_config(name, ["actor.model.checkpoint_path=/ckpt/gr00t_n1_5"])
    validate(cfg, env_ranks=4, actor_ranks=8)
    # policy calls replayed from CUDA graphs, the trainable path eager (the PPO ratio stays exactly 1)
    assert cfg.actor.model.cuda_graph and not cfg.actor.model.compile_action_head


@pytest.mark.parametrize("layout", sorted(p.stem for p in (Path(__file__).parents[2] / "config" / "cluster").glob("*.yaml")))
def test_every_cluster_layout_composes_and_parses(layout):
    """YAML reads `env: 0` as an int: the schema must take ints for the hybrid and separated
    layouts as the parser does, not refuse them ("expected a string")."""
    cfg = load_config("mujoco_stack2_ppo_gr00t_tiny", [f"cluster={layout}"])
    c = cfg.cluster
    assert all(isinstance(v, str) for v in c.component_placement.values())
    placement = parse_placement(c.component_placement, gpus_per_node=c.gpus_per_node or 1, num_nodes=c.num_nodes)
    assert {"env", "rollout", "actor"} <= set(placement.components)


def test_integer_placement_values_are_taken_as_ranks():
    cfg = from_dict(ClusterConfig, {"component_placement": {"env": 0, "rollout": 1, "actor": "0-1"}})
    assert cfg.component_placement == {"env": "0", "rollout": "1", "actor": "0-1"}
    with pytest.raises(ConfigError, match="cluster.component_placement.env"):
        from_dict(ClusterConfig, {"component_placement": {"env": [0, 1]}}, "cluster")


def test_expected_defaults_of_quickstart():
    cfg = load_config("cpu_quickstart")
    assert cfg.cluster.component_placement == {"env,rollout,actor": "all"}
    assert cfg.algorithm.adv_type == "gae" and cfg.rollout.pipeline_stage_num == 2
    assert cfg.env.train.video_cfg.video_base_dir == "logs/cpu_quickstart/video/train"
    assert cfg.env.eval.seed != cfg.env.train.seed  # evaluation on fresh seeds


def test_unknown_key_is_an_error_with_suggestion():
    with pytest.raises(ConfigError, match=r"algorithm.gama: unknown key \(did you mean 'gamma'\?\)"):
        load_config("cpu_quickstart", ["algorithm.gama=0.9"])


def test_wrong_type_and_range_name_the_key():
    with pytest.raises(ConfigError, match=r"algorithm.gamma = 1.5: expected a number in \[0, 1\]"):
        load_config("cpu_quickstart", ["algorithm.gamma=1.5"])
    with pytest.raises(ConfigError, match=r"algorithm.adv_type: unknown advantage estimator 'ppo'; registered .*: gae, grpo"):
        load_config("cpu_quickstart", ["algorithm.adv_type=ppo"])
    with pytest.raises(ConfigError, match=r"env.train.total_num_envs = 'many': expected an integer"):
        load_config("cpu_quickstart", ["env.train.total_num_envs=many"])
    with pytest.raises(ConfigError, match=r"env.train.image_size = 8"):
        load_config("cpu_quickstart", ["env.train.image_size=8"])


def test_unknown_config_name_lists_available():
    with pytest.raises(ConfigError, match="available configs: .*cpu_quickstart"):
        load_config("no_such_config")


def test_grpo_group_must_divide_stage_envs():
    cfg = load_config("mujoco_stack2_grpo_gr00t_tiny", ["algorithm.group_size=3"])
    with pytest.raises(ConfigError, match="algorithm.group_size = 3: expected a divisor of the envs per pipeline stage"):
        validate(cfg, env_ranks=1, actor_ranks=1)


def test_batch_divisibility_errors():
    cfg = load_config("cpu_quickstart")
    with pytest.raises(ConfigError, match="env.train.total_num_envs = 32: expected a multiple of the number of env workers \\(3"):
        validate(cfg, env_ranks=3, actor_ranks=1)
    cfg = load_config("cpu_quickstart", ["rollout.pipeline_stage_num=3"])
    with pytest.raises(ConfigError, match="rollout.pipeline_stage_num = 3"):
        validate(cfg, env_ranks=1, actor_ranks=1)
    cfg = load_config("cpu_quickstart", ["actor.global_batch_size=720"])
    with pytest.raises(ConfigError, match="actor.global_batch_size = 720: expected a multiple of actor.micro_batch_size"):
        validate(cfg, env_ranks=1, actor_ranks=1)
    cfg = load_config("cpu_quickstart", ["env.train.max_episode_steps=102"])
    with pytest.raises(ConfigError,
                       match="env.train.max_episode_steps = 102: expected a multiple of actor.model.num_action_chunks \\(4\\)"):
        validate(cfg, env_ranks=1, actor_ranks=1)


def test_grpo_requires_no_auto_reset():
    cfg = load_config("mujoco_stack2_grpo_gr00t_tiny", ["env.train.auto_reset=true"])
    with pytest.raises(ConfigError, match="env.train.auto_reset = True: expected false for adv_type=grpo"):
        validate(cfg, env_ranks=1, actor_ranks=1)


def test_from_dict_missing_required_key():
    with pytest.raises(ConfigError, match="runner: required key is missing"):
        from_dict(Config, {"cluster": {"component_placement": {"env": "0"}}})
    assert from_dict(AlgorithmConfig, {"grpo_success_filter": [0.1, 0.9]}).grpo_success_filter == (0.1, 0.9)


def test_fsdp_with_actor_offload_is_refused_before_workers_start():
    assert load_config("cpu_quickstart", ["actor.training_backend=fsdp"]).actor.training_backend == "fsdp"
    with pytest.raises(ConfigError, match="actor.enable_offload = True: expected false with actor.training_backend=fsdp"):
        load_config("cpu_quickstart", ["actor.training_backend=fsdp", "actor.enable_offload=true"])


def test_critic_warmup_needs_a_critic():
    cfg = load_config("cpu_quickstart", ["algorithm.critic_warmup_steps=2"])
    validate(cfg, env_ranks=1, actor_ranks=1)
    for off in ("actor.model.add_value_head=false", "algorithm.value_loss_coef=0"):
        cfg = load_config("cpu_quickstart", ["algorithm.critic_warmup_steps=2", off])
        with pytest.raises(ConfigError, match=r"algorithm.critic_warmup_steps = 2: expected 0 unless a critic trains"):
            validate(cfg, env_ranks=1, actor_ranks=1)
    with pytest.raises(ConfigError, match="adv_type=grpo"):
        load_config("mujoco_stack2_grpo_gr00t_tiny", ["algorithm.critic_warmup_steps=2"])


def test_a_group_choice_and_its_keys_combine():
    # gpus_per_node is set by cluster/2gpu_hybrid, not by the quickstart's cluster/cpu
    cfg = load_config("cpu_quickstart", ["cluster=2gpu_hybrid", "cluster.gpus_per_node=4"])
    assert cfg.cluster.gpus_per_node == 4 and cfg.cluster.component_placement["rollout"] == "1"
    cfg = load_config("cpu_quickstart", ["cluster.gpus_per_node=3", "cluster=2gpu_hybrid"])  # either order
    assert cfg.cluster.gpus_per_node == 3
    assert load_config("cpu_quickstart", ["runner.resume_dir=/r"]).runner.resume_dir == "/r"  # schema-only key


def test_compiled_action_head_is_refused_with_sharded_training():
    cfg = load_config("cpu_quickstart", ["actor.model.compile_action_head=true", "actor.model.cuda_graph=false",
                                           "actor.training_backend=fsdp"])
    validate(cfg, env_ranks=1, actor_ranks=1)  # one rank: plain training
    with pytest.raises(ConfigError, match="actor.model.compile_action_head = True: expected false with "
                                          "actor.training_backend=fsdp over 2 actor workers"):
        validate(cfg, env_ranks=1, actor_ranks=2)
