"""The parameter-summary CLI."""

import json

import torch

from rlinf_isaac.models.gr00t import GR00TN15, load_config
from rlinf_isaac.models.gr00t.summary import count_parts, main, part_of


def test_part_of_public_names():
    assert part_of("backbone.eagle_model.vision_model.vision_model.post_layernorm.weight") == "vision"
    assert part_of("backbone.eagle_model.mlp1.0.weight") == "projector"
    assert part_of("backbone.eagle_model.language_model.model.layers.0.self_attn.q_proj.weight") == "llm"
    assert part_of("action_head.vl_self_attention.transformer_blocks.0.attn1.to_q.weight") == "vlln+vl_self_attention"
    assert part_of("action_head.model.transformer_blocks.0.attn1.to_q.weight") == "dit"
    assert part_of("action_head.state_encoder.layer1.W") == "state/action encoders"
    assert part_of("action_head.action_decoder.layer2.b") == "action decoder"
    assert part_of("action_head.future_tokens.weight") == "other"


def test_cli_keys_and_json_line(capsys):
    assert main(["--config", "gr00t_tiny", "--device", "meta", "--keys"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    with torch.device("meta"):
        model = GR00TN15(load_config("gr00t_tiny"))
    names = [n for n, _ in model.named_parameters()]
    assert lines[: len(names)] == [f"{n} {tuple(p.shape)}" for n, p in model.named_parameters()]
    last = json.loads(lines[-1])
    assert last["params"] == model.num_parameters()
    assert last["trainable"] == model.num_parameters(trainable_only=True)
    parts = count_parts(model)
    assert sum(n for n, _ in parts.values()) == last["params"]
    # backbone frozen by default: vision, projector, llm have no trainable parameters
    assert parts["vision"][1] == parts["projector"][1] == parts["llm"][1] == 0
