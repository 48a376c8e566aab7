"""Tiny tokenizer: fixed special ids, byte-identical rebuilds, local-only loading."""

import os
import socket
import subprocess
import sys

import pytest

from rlinf_isaac.models.gr00t.tokenizer import (
    SPECIAL_TOKENS,
    build_tiny_tokenizer,
    load_tokenizer,
    stand_in_tokenizer,
)


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


def test_special_token_ids_and_vocab_size(tok):
    assert SPECIAL_TOKENS == ("<|pad|>", "<|unk|>", "<|im_start|>", "<|im_end|>", "<img>",
                              "</img>", "<IMG_CONTEXT>")
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4, 5, 6]
    assert tok.pad_token_id == 0 and tok.eos_token_id == 3
    assert len(tok) == 1024  # 7 special + 256 byte symbols + 761 merges
    # ids 7..262 are the byte alphabet: every byte string encodes without <|unk|>
    ids = tok("ünïcode ✓ 0.25", add_special_tokens=False)["input_ids"]
    assert 1 not in ids and max(ids) < 1024


def test_image_tokens_stay_single_ids_and_text_round_trips(tok):
    text = "<|im_start|>user\n<img>" + "<IMG_CONTEXT>" * 5 + "</img>Stack the red cube.<|im_end|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[:1] == [2] and ids.count(6) == 5 and ids.count(4) == 1 and ids.count(5) == 1
    assert ids[ids.index(4) + 1: ids.index(5)] == [6] * 5  # context tokens sit between <img> and </img>
    assert tok.decode(ids) == text
    # the training corpus makes the instruction words single tokens
    assert len(tok(" the red cube", add_special_tokens=False)["input_ids"]) == 3


def test_rebuild_is_byte_identical_across_processes(tmp_path, tok):
    tok.save_pretrained(str(tmp_path / "a"))
    build_tiny_tokenizer().save_pretrained(str(tmp_path / "b"))
    a = (tmp_path / "a" / "tokenizer.json").read_bytes()
    assert a == (tmp_path / "b" / "tokenizer.json").read_bytes()
    code = ("from rlinf_isaac.models.gr00t.tokenizer import build_tiny_tokenizer as b;"
            f"b().save_pretrained({str(tmp_path / 'c')!r})")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different hash seed in a fresh process
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert (tmp_path / "c" / "tokenizer.json").read_bytes() == a


def test_load_tokenizer_local_only(tmp_path, tok, monkeypatch):
    with pytest.raises(FileNotFoundError, match="tokenizer folder not found.*Qwen3"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="tokenizer.json.*merges.txt"):
        load_tokenizer(tmp_path / "empty")
    tok.save_pretrained(str(tmp_path / "saved"))

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    loaded = load_tokenizer(tmp_path / "saved")
    text = "Stack the red cube on the blue cube."
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.convert_tokens_to_ids("<IMG_CONTEXT>") == 6 and loaded.pad_token_id == 0


def test_stand_in_tokenizer_puts_the_special_tokens_at_the_models_ids(tok):
    from types import SimpleNamespace

    from rlinf_isaac.models.gr00t.config import load_config

    full = load_config("gr00t_n1_5").backbone_cfg  # pad 151643, image_token_index 151669
    stand_in = stand_in_tokenizer(load_config("gr00t_n1_5"))
    want = [full.pad_token_id, 151668, 151667, 151666, 151665, 151664, full.image_token_index]
    assert stand_in.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == want
    text = "<img>" + "<IMG_CONTEXT>" * 3 + "</img>stack the red cube"
    ids, tiny_ids = stand_in(text, add_special_tokens=False)["input_ids"], tok(text, add_special_tokens=False)["input_ids"]
    assert ids[:5] == [151665, 151669, 151669, 151669, 151664] and ids[5:] == tiny_ids[5:]  # plain text unchanged
    assert stand_in_tokenizer(load_config("gr00t_tiny")).convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(7))
    clash = SimpleNamespace(backbone_cfg=SimpleNamespace(llm=SimpleNamespace(vocab_size=4096), pad_token_id=5,
                                                         image_token_index=2000))
    with pytest.raises(ValueError, match="above the tiny vocabulary"):
        stand_in_tokenizer(clash)
