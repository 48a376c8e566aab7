"""Checkpoint I/O: GR00T N1.5 layout, sharding, tied embeddings, strict keys, no network."""

import json
import socket

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlinf_isaac.models.gr00t import build_model, load_pretrained, save_pretrained
from rlinf_isaac.models.gr00t.checkpoint import (
    METADATA_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    load_state_dict_files,
    parse_size,
)

METADATA = {"franka_stack": {"statistics": {"state": {"mean": [0.0] * 8}}, "embodiment_tag": "new_embodiment"}}
LM_HEAD = "backbone.eagle_model.language_model.lm_head.weight"
EMBED = "backbone.eagle_model.language_model.model.embed_tokens.weight"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("gr00t_tiny")


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory, tiny):
    return save_pretrained(tiny, tmp_path_factory.mktemp("ckpt") / "single", metadata=METADATA)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_parse_size():
    assert parse_size("5GB") == 5 * 10**9 and parse_size("200KB") == 200_000 and parse_size(123) == 123
    with pytest.raises(ValueError, match="max_shard_size"):
        parse_size("lots")


def test_sharded_round_trip_bit_identical(tmp_path, tiny):
    out = save_pretrained(tiny, tmp_path / "ckpt", max_shard_size="300KB", metadata=METADATA)
    index = json.loads((out / WEIGHTS_INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    # tiny model: ~1.56 M float32 params = ~6.25 MB -> at least 20 shards of <= 300 KB (+ oversize singles)
    assert len(shards) >= 20 and not (out / WEIGHTS_NAME).exists()
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert LM_HEAD not in index["weight_map"] and EMBED in index["weight_map"]  # tied: stored once
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in load_state_dict_files(out).values())
    model, metadata = load_pretrained(out)
    assert metadata == METADATA
    assert_same_weights(tiny, model)
    lm = model.backbone.eagle_model.language_model
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temp dirs left behind


def test_single_file_and_overwrite_atomically(tmp_path, tiny):
    out = save_pretrained(tiny, tmp_path / "ckpt")
    assert (out / WEIGHTS_NAME).exists() and not (out / WEIGHTS_INDEX_NAME).exists()
    other = build_model("gr00t_tiny")
    save_pretrained(other, out, metadata=METADATA)  # replaces the previous checkpoint
    model, _ = load_pretrained(out)
    assert_same_weights(other, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_tied_lm_head_stored_explicitly_loads(tmp_path, tiny, single_dir):
    sd = load_file(str(single_dir / WEIGHTS_NAME))
    sd[LM_HEAD] = sd[EMBED].clone()
    ckpt = tmp_path / "with_head"
    ckpt.mkdir()
    (ckpt / "config.json").write_text((single_dir / "config.json").read_text())
    save_file(sd, str(ckpt / WEIGHTS_NAME))
    model, _ = load_pretrained(ckpt, require_metadata=False)
    assert_same_weights(tiny, model)


def test_extra_lm_layers_are_skipped_with_a_note(tmp_path, tiny, single_dir):
    sd = load_file(str(single_dir / WEIGHTS_NAME))
    prefix = "backbone.eagle_model.language_model.model.layers."
    for k in [k for k in sd if k.startswith(prefix + "1.")]:  # fake layers 2 and 3 of a deeper LM
        sd[k.replace(prefix + "1.", prefix + "2.")] = sd[k].clone()
        sd[k.replace(prefix + "1.", prefix + "3.")] = sd[k].clone()
    ckpt = tmp_path / "deeper"
    ckpt.mkdir()
    (ckpt / "config.json").write_text((single_dir / "config.json").read_text())
    save_file(sd, str(ckpt / WEIGHTS_NAME))
    with pytest.warns(UserWarning, match=r"LM layers 2\.\.3 beyond backbone_cfg\.select_layer=2"):
        model, _ = load_pretrained(ckpt, require_metadata=False)
    assert_same_weights(tiny, model)


def test_strict_key_check_reports_a_readable_diff(tmp_path, single_dir):
    sd = load_file(str(single_dir / WEIGHTS_NAME))
    del sd["action_head.state_encoder.layer1.W"]
    sd["action_head.bogus.weight"] = torch.zeros(1)
    ckpt = tmp_path / "broken"
    ckpt.mkdir()
    (ckpt / "config.json").write_text((single_dir / "config.json").read_text())
    save_file(sd, str(ckpt / WEIGHTS_NAME))
    with pytest.raises(KeyError) as err:
        load_pretrained(ckpt, require_metadata=False)
    msg = str(err.value)
    assert "missing from checkpoint (1)" in msg and "action_head.state_encoder.layer1.W" in msg
    assert "unexpected in checkpoint (1)" in msg and "action_head.bogus.weight" in msg


@pytest.mark.parametrize("remove,needle", [
    ("config.json", "config.json"),
    (WEIGHTS_NAME, "model.safetensors"),
    (METADATA_NAME, "metadata.json"),
])
def test_missing_files_are_named(tmp_path, tiny, remove, needle):
    out = save_pretrained(tiny, tmp_path / "ckpt", metadata=METADATA)
    (out / remove).unlink()
    with pytest.raises(FileNotFoundError, match=needle) as err:
        load_pretrained(out)
    assert "save_pretrained" in str(err.value)  # says what provides the file


def test_missing_shard_is_named(tmp_path, tiny):
    out = save_pretrained(tiny, tmp_path / "ckpt", max_shard_size="2MB", metadata=METADATA)
    (out / "model-00002-of-00004.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model-00002-of-00004.safetensors"):
        load_pretrained(out)


def test_loading_works_with_the_network_blocked(monkeypatch, tiny, single_dir):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted during checkpoint loading")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    model, metadata = load_pretrained(single_dir, dtype=torch.bfloat16)
    assert metadata == METADATA
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    emb = tiny.state_dict()[EMBED].to(torch.bfloat16)
    assert torch.equal(model.state_dict()[EMBED], emb)
