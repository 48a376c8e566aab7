"""Config loading, round trips and validation errors of the GR00T config dataclasses."""

import dataclasses
import json

import pytest

from rlinf_isaac.config.structured import ConfigError
from rlinf_isaac.models.gr00t.config import GR00TConfig, list_configs, load_config
from tests.models.gr00t.published_layout import PUBLIC_N15_CONFIG


def test_shipped_configs_load_by_name():
    assert {"gr00t_n1_5", "gr00t_tiny"} <= set(list_configs())
    full, tiny = load_config("gr00t_n1_5"), load_config("gr00t_tiny")
    assert full.name == "gr00t_n1_5" and tiny.name == "gr00t_tiny"
    # 224 px / patch 14 = 16 -> 16^2 = 256 tokens per view (no pixel shuffle in N1.5)
    assert full.backbone_cfg.image_tokens_per_view == 256
    # tiny: 56 / 14 = 4 -> 16 tokens per view
    assert tiny.backbone_cfg.image_tokens_per_view == 16
    assert full.action_head_cfg.diffusion_model_cfg.inner_dim == 32 * 48 == 1536
    assert tiny.backbone_cfg.image_token_index == 6 and tiny.backbone_cfg.pad_token_id == 0
    assert tiny.backbone_cfg.llm.vocab_size == 1024 and tiny.backbone_cfg.select_layer == 2


def test_round_trip_through_json(tmp_path):
    cfg = load_config("gr00t_tiny")
    cfg.to_json(tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == load_config(tmp_path) == cfg


def test_public_checkpoint_config_loads_with_eagle_defaults():
    cfg = GR00TConfig.from_dict(PUBLIC_N15_CONFIG)
    assert cfg.backbone_cfg.select_layer == 12 and cfg.backbone_cfg.tune_visual is True
    assert cfg.backbone_cfg.vision.num_hidden_layers == 27 and cfg.backbone_cfg.vision.hidden_size == 1152
    assert cfg.backbone_cfg.llm.hidden_size == 2048 and cfg.backbone_cfg.llm.num_hidden_layers == 28
    assert cfg.action_head_cfg.mask_vl_tokens is False  # public N1.5 attends to padded VL tokens
    # the shipped full config is the public one (everything but the name and the eagle_path note)
    shipped = load_config("gr00t_n1_5")
    assert cfg.action_head_cfg == shipped.action_head_cfg
    assert cfg.backbone_cfg.vision == shipped.backbone_cfg.vision and cfg.backbone_cfg.llm == shipped.backbone_cfg.llm
    assert dataclasses.replace(cfg.backbone_cfg, eagle_path=None) == shipped.backbone_cfg


def test_full_config_holds_the_published_values():
    """GR00T N1.5's config.json and its Eagle 2.5 processor config.json, value by value."""
    cfg = load_config("gr00t_n1_5")
    bb, llm, vit, ah = cfg.backbone_cfg, cfg.backbone_cfg.llm, cfg.backbone_cfg.vision, cfg.action_head_cfg
    dit = ah.diffusion_model_cfg
    assert (bb.select_layer, bb.tune_llm, bb.tune_visual, bb.project_to_dim, bb.reproject_vision,
            bb.use_flash_attention) == (12, False, True, None, False, True)
    assert (bb.image_token_index, bb.use_pixel_shuffle, bb.mlp_connector_layers, bb.downsample_ratio) == (
        151669, False, 1, 0.5)
    assert (llm.hidden_size, llm.intermediate_size, llm.num_attention_heads, llm.num_key_value_heads,
            llm.head_dim) == (2048, 6144, 16, 8, 128)
    assert (llm.rms_norm_eps, llm.rope_theta, llm.max_position_embeddings, llm.tie_word_embeddings) == (
        1e-6, 1_000_000.0, 40960, True)
    assert (llm.bos_token_id, llm.eos_token_id, llm.vocab_size, llm.num_hidden_layers) == (151643, 151645, 151680, 28)
    assert (vit.hidden_size, vit.intermediate_size, vit.num_hidden_layers, vit.num_attention_heads,
            vit.patch_size, vit.image_size, vit.layer_norm_eps, vit.hidden_act) == (
        1152, 4304, 27, 16, 14, 224, 1e-6, "gelu_pytorch_tanh")
    assert (ah.action_dim, ah.action_horizon, ah.add_pos_embed, ah.backbone_embedding_dim) == (32, 16, True, 2048)
    assert (dit.attention_head_dim, dit.cross_attention_dim, dit.dropout, dit.final_dropout,
            dit.interleave_self_attention, dit.norm_type, dit.num_attention_heads, dit.num_layers,
            dit.output_dim) == (48, 2048, 0.2, True, True, "ada_norm", 32, 16, 1024)
    # a published config.json has no llm block: Eagle 2.5's language model applies, with its token ids
    public = GR00TConfig.from_dict(PUBLIC_N15_CONFIG).backbone_cfg.llm
    assert public == llm and (public.bos_token_id, public.eos_token_id) == (151643, 151645)


@pytest.mark.parametrize("section,patch,needle", [
    ("backbone_cfg", {"select_layer": 29}, "backbone_cfg.select_layer"),
    ("backbone_cfg", {"attn_implementation": "magic"}, "backbone_cfg.attn_implementation"),
    ("backbone_cfg", {"bogus": 1}, "backbone_cfg.bogus"),
    ("action_head_cfg", {"backbone_embedding_dim": 1024}, "backbone_embedding_dim"),
    ("action_head_cfg", {"noise_s": 1.5}, "action_head_cfg.noise_s"),
    ("action_head_cfg", {"action_dim": 7}, "action_head_cfg.action_dim"),
])
def test_errors_name_the_key(section, patch, needle):
    data = json.loads(json.dumps(PUBLIC_N15_CONFIG))
    data[section].update(patch)
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")) as err:
        GR00TConfig.from_dict(data)
    if "bogus" not in patch:  # a known key's message also names the value received
        assert str(next(iter(patch.values()))) in str(err.value)


def test_nested_errors_name_the_dotted_key():
    data = json.loads(json.dumps(PUBLIC_N15_CONFIG))
    data["action_head_cfg"]["diffusion_model_cfg"]["num_layers"] = 0
    with pytest.raises(ValueError, match=r"action_head_cfg\.diffusion_model_cfg\.num_layers.*0"):
        GR00TConfig.from_dict(data)


def test_unknown_name_lists_shipped_configs():
    with pytest.raises(ConfigError, match="gr00t_tiny"):
        load_config("gr00t_huge")
