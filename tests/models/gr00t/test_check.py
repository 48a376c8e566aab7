"""The checkpoint checker against GR00T N1.5's published layout (full size, header only) and
strict loading of the same layout at small widths."""

import json

import pytest
import torch

from rlinf_isaac.config.structured import ConfigError
from rlinf_isaac.models.gr00t.check import check_checkpoint, main
from rlinf_isaac.models.gr00t.checkpoint import (
    EMBED_NAME,
    LM_HEAD_NAME,
    CheckpointFileError,
    load_pretrained,
    read_checkpoint_config,
    read_tensor_index,
)
from tests.models.gr00t.published_layout import (
    PUBLIC_N15_CONFIG,
    published_shapes,
    sparse_files_supported,
    write_small_published_checkpoint,
    write_sparse_published_checkpoint,
)

FULL_PARAMS = 2_398_284_528


@pytest.fixture(scope="module")
def shapes():
    return published_shapes()


@pytest.fixture(scope="module")
def full(tmp_path_factory, shapes):
    """The full-size published layout as sparse files (~6.4 GB on paper)."""
    root = tmp_path_factory.mktemp("published")
    if not sparse_files_supported(root):
        pytest.skip("this filesystem has no sparse files (the full-size layout would take 6.4 GB)")
    return write_sparse_published_checkpoint(root / "GR00T-N1.5-3B", shapes)


def test_published_layout_has_the_full_lm_and_two_shards(full, shapes):
    index = json.loads((full / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == ["model-00001-of-00002.safetensors",
                                                         "model-00002-of-00002.safetensors"]
    assert "backbone.eagle_model.language_model.model.layers.27.mlp.down_proj.weight" in index["weight_map"]
    assert shapes[EMBED_NAME] == (151680, 2048) and LM_HEAD_NAME not in shapes
    stored = read_tensor_index(full)
    assert len(stored) == len(shapes) == 887 + 16 * 11  # the model's tensors + LM layers 12..27
    assert stored[EMBED_NAME].dtype == "BF16" and stored[EMBED_NAME].shape == (151680, 2048)


def test_published_checkpoint_checks_ok(full, capsys):
    report = check_checkpoint(full)
    assert report.ok, report.format()
    assert report.num_params == FULL_PARAMS and report.num_tensors == 887
    assert any("LM layers 12..27" in n for n in report.notes)
    assert report.config_diffs == []  # the published config is gr00t_n1_5, value for value
    assert main([str(full)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("OK: ") and "2,398,284,528 parameters" in out[-1]


def test_the_old_vocabulary_is_a_wrong_shape(tmp_path, shapes):
    if not sparse_files_supported(tmp_path):
        pytest.skip("no sparse files here")
    ckpt = write_sparse_published_checkpoint(tmp_path / "c", {**shapes, EMBED_NAME: (151936, 2048)})
    report = check_checkpoint(ckpt)
    assert not report.ok and report.wrong_shape == [
        f"{EMBED_NAME}: model [151680, 2048], checkpoint [151936, 2048] (model-00001-of-00002.safetensors)"]
    assert main([str(ckpt)]) == 1


def test_tied_embedding_stored_as_lm_head_only_checks_ok(tmp_path, shapes):
    if not sparse_files_supported(tmp_path):
        pytest.skip("no sparse files here")
    moved = {(LM_HEAD_NAME if k == EMBED_NAME else k): v for k, v in shapes.items()}
    report = check_checkpoint(write_sparse_published_checkpoint(tmp_path / "c", moved))
    assert report.ok and any("it becomes the embedding" in n for n in report.notes)


def test_bad_files_are_named(tmp_path, shapes):
    if not sparse_files_supported(tmp_path):
        pytest.skip("no sparse files here")
    ckpt = write_sparse_published_checkpoint(tmp_path / "c", shapes, dtypes={"action_head.vlln.weight": "I8"})
    report = check_checkpoint(ckpt)
    assert report.wrong_dtype == ["action_head.vlln.weight: I8 in model-00002-of-00002.safetensors; "
                                  "the model takes F32, BF16, F16, F64"]
    shard = ckpt / "model-00002-of-00002.safetensors"
    with open(shard, "r+b") as f:  # a download cut short by one byte
        f.truncate(shard.stat().st_size - 1)
    report = check_checkpoint(ckpt)
    assert not report.ok and "truncated" in report.errors[0] and "model-00002-of-00002.safetensors" in report.errors[0]
    shard.unlink()
    report = check_checkpoint(ckpt)
    assert "model-00002-of-00002.safetensors not found" in report.errors[0]


def test_not_a_gr00t_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen3", "vocab_size": 151936}))
    report = check_checkpoint(tmp_path)
    assert not report.ok and "is not a GR00T N1.5 config (model_type 'qwen3'" in report.errors[0]
    assert "not a directory" in check_checkpoint(tmp_path / "nope").errors[0]
    (tmp_path / "config.json").write_text("{oops")
    assert "config.json: not JSON" in check_checkpoint(tmp_path).errors[0]


@pytest.mark.parametrize("store_head", [False, True])
def test_small_published_layout_loads_strictly(tmp_path, store_head):
    ckpt, stored = write_small_published_checkpoint(tmp_path / "c", store_head=store_head)
    assert len(list(ckpt.glob("model-*.safetensors"))) > 1  # sharded, with an index
    assert check_checkpoint(ckpt, reference="gr00t_tiny").ok
    with pytest.warns(UserWarning, match=r"LM layers 12\.\.27 beyond backbone_cfg\.select_layer=12"):
        model, _ = load_pretrained(ckpt, require_metadata=False)
    sd = model.state_dict()
    embed = stored[LM_HEAD_NAME if store_head else EMBED_NAME]
    assert torch.equal(sd[EMBED_NAME], embed) and sd[LM_HEAD_NAME] is not None
    layer11 = "backbone.eagle_model.language_model.model.layers.11.mlp.up_proj.weight"
    assert torch.equal(sd[layer11], stored[layer11]) and "layers.12." not in " ".join(sd)


def test_truncated_shard_fails_before_loading(tmp_path):
    ckpt, _ = write_small_published_checkpoint(tmp_path / "c")
    shard = sorted(ckpt.glob("model-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(CheckpointFileError, match=f"{shard.name}: truncated: the file holds"):
        load_pretrained(ckpt, require_metadata=False)


def _eagle_tokenizer_files(ckpt, image_id=151669, pad="<|endoftext|>"):
    (ckpt / "added_tokens.json").write_text(json.dumps({"<|endoftext|>": 151643, "<|im_end|>": 151645,
                                                        "<img>": 151665, "</img>": 151666,
                                                        "<IMG_CONTEXT>": image_id}))
    (ckpt / "tokenizer_config.json").write_text(json.dumps({"pad_token": pad, "eos_token": "<|im_end|>"}))


def test_token_ids_come_from_the_checkpoints_tokenizer_files(tmp_path):
    ckpt = tmp_path / "c"
    ckpt.mkdir()
    public = json.loads(json.dumps(PUBLIC_N15_CONFIG))
    (ckpt / "config.json").write_text(json.dumps(public))
    _eagle_tokenizer_files(ckpt, image_id=151667)  # a processor whose <IMG_CONTEXT> sits elsewhere
    config, notes = read_checkpoint_config(ckpt)
    assert (config.backbone_cfg.image_token_index, config.backbone_cfg.pad_token_id) == (151667, 151643)
    assert notes == ["backbone_cfg.image_token_index = 151667, from added_tokens.json",
                     "backbone_cfg.pad_token_id = 151643, from added_tokens.json"]
    public["backbone_cfg"]["image_token_index"] = 151669  # the config says otherwise: an error naming both
    (ckpt / "config.json").write_text(json.dumps(public))
    with pytest.raises(ConfigError, match=r"image_token_index = 151669 in .*config.json, but .*added_tokens.json "
                                          r"gives 151667"):
        read_checkpoint_config(ckpt)
    assert "151667" in check_checkpoint(ckpt).errors[0]
